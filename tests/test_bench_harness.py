"""The benchmark's report code: goal rows, the table and the results schema (no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report

RESULTS = Path(__file__).resolve().parent.parent / "bench" / "results"


def test_percentiles_interpolate_between_ranks() -> None:
    samples = [0.001 * n for n in range(1, 101)]
    assert report.percentile(samples, 50) == pytest.approx(0.0505)
    assert report.percentile(samples, 99) == pytest.approx(0.09901)
    assert report.summary_ms([0.002])["p99_ms"] == pytest.approx(2.0)


def test_slope_is_least_squares() -> None:
    assert report.slope([(1000, 100.0), (2000, 150.0), (3000, 200.0)]) == pytest.approx(0.05)
    with pytest.raises(ValueError):
        report.slope([(1, 1.0), (1, 2.0)])


def test_ratio_and_limit_rows_decide_pass_or_miss() -> None:
    within = report.ratio_row("s", "c", 3.0, 2.0, 1.5, baseline_name="bare")
    assert (within.ratio, within.passed, within.goal) == (1.5, True, "≤ 1.5× bare")
    over = report.ratio_row("s", "c", 3.1, 2.0, 1.5)
    assert over.passed is False
    throughput = report.limit_row("s", "c", 4000, 5000, unit="msgs/s", at_least=True)
    assert (throughput.passed, throughput.ratio, throughput.goal) == (False, 0.8, "≥ 5,000 msgs/s")


def test_table_has_one_line_per_row_with_the_verdict() -> None:
    rows = [
        report.ratio_row("connect", "daphne / Redis", 3.0, 2.0, 1.5),
        report.limit_row("RSS", "daphne / Redis", 70, 60, unit="KiB/socket"),
    ]
    lines = report.markdown_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2].endswith("| 1.50× | ≤ 1.5× baseline | pass |")
    assert lines[3].endswith("| MISS |")


def document(**overrides: object) -> dict[str, object]:
    rows = [report.ratio_row("connect", "daphne / Redis", 3.0, 2.0, 1.5)]
    base = report.results_document(
        name="quick",
        started_at="2026-01-01T00:00:00+00:00",
        duration_s=1.0,
        machine={},
        params={},
        rows=rows,
        series={"rss_vs_sockets": {"app": [[0, 90.0], [100, 95.0]]}},
    )
    return {**base, **overrides}


def test_schema_accepts_a_document_and_names_what_is_wrong(tmp_path: Path) -> None:
    assert report.validate(document()) == []
    assert report.validate(document(schema=0))
    assert report.validate(document(rows=[{"scenario": "x"}]))
    assert report.validate(document(series={"x": {"app": [1, 2]}}))
    path = tmp_path / "quick.json"
    report.write(document(), path)
    assert json.loads(path.read_text())["rows"][0]["passed"] is True
    with pytest.raises(ValueError):
        report.write(document(schema=0), tmp_path / "bad.json")


@pytest.mark.parametrize("name", ["quick", "full"])
def test_committed_results_match_the_schema(name: str) -> None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        pytest.skip(f"no {path.name} yet")
    assert report.validate(json.loads(path.read_text())) == []
