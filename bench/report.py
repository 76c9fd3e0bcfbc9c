"""Results of a benchmark run: the goal rows, the table, the JSON file and the charts.

Kept apart from the load generator so it can be tested without servers
(tests/test_bench_harness.py).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
RESULT_KEYS = {"schema", "name", "started_at", "duration_s", "machine", "params", "rows", "series"}
ROW_KEYS = {"scenario", "config", "measured", "baseline", "ratio", "goal", "passed", "values"}
#: The goal of a row that only records a figure.
INFO_GOAL = "info"


@dataclass
class Row:
    """One line of the table: a scenario on one server and layer, against its goal."""

    scenario: str
    config: str
    measured: str
    baseline: str
    #: measured / baseline (or / the goal's limit for absolute goals); None when not a ratio.
    ratio: float | None
    goal: str
    #: None when the run could not decide (e.g. a scenario that failed).
    passed: bool | None
    values: dict[str, Any] = field(default_factory=dict)


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    rank = (len(ordered) - 1) * q / 100
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of durations in seconds, in milliseconds."""
    return {
        "n": len(samples_s),
        "p50_ms": percentile(samples_s, 50) * 1000,
        "p99_ms": percentile(samples_s, 99) * 1000,
        "mean_ms": statistics.fmean(samples_s) * 1000,
        "max_ms": max(samples_s) * 1000,
    }


def slope(points: Iterable[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    xs, ys = zip(*points, strict=True)
    mean_x, mean_y = statistics.fmean(xs), statistics.fmean(ys)
    denominator = sum((x - mean_x) ** 2 for x in xs)
    if denominator == 0:
        raise ValueError("slope needs two distinct x values")
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / denominator


def ratio_row(
    scenario: str,
    config: str,
    measured: float,
    baseline: float,
    limit: float,
    *,
    unit: str = "ms",
    baseline_name: str = "baseline",
    goal: str | None = None,
    values: dict[str, Any] | None = None,
) -> Row:
    """A row whose goal is measured / baseline ≤ limit."""
    ratio = measured / baseline if baseline > 0 else float("inf")
    return Row(
        scenario=scenario,
        config=config,
        measured=f"{measured:.2f} {unit}",
        baseline=f"{baseline:.2f} {unit} ({baseline_name})",
        ratio=ratio,
        goal=goal or f"≤ {limit:g}× {baseline_name}",
        passed=ratio <= limit,
        values={"measured": measured, "baseline": baseline, "limit": limit, **(values or {})},
    )


def limit_row(
    scenario: str,
    config: str,
    measured: float,
    limit: float,
    *,
    unit: str,
    at_least: bool = False,
    baseline: str = "",
    values: dict[str, Any] | None = None,
) -> Row:
    """A row whose goal is an absolute limit: measured ≤ limit (≥ with at_least). The ratio
    is measured / limit."""
    ratio = measured / limit
    return Row(
        scenario=scenario,
        config=config,
        measured=f"{measured:,.2f} {unit}",
        baseline=baseline,
        ratio=ratio,
        goal=f"{'≥' if at_least else '≤'} {limit:,g} {unit}",
        passed=measured >= limit if at_least else measured <= limit,
        values={"measured": measured, "limit": limit, **(values or {})},
    )


def info_row(
    scenario: str,
    config: str,
    measured: str,
    *,
    baseline: str = "",
    values: dict[str, Any] | None = None,
) -> Row:
    """A row without a goal: a figure recorded beside the goals (the table says "info")."""
    return Row(
        scenario=scenario,
        config=config,
        measured=measured,
        baseline=baseline,
        ratio=None,
        goal=INFO_GOAL,
        passed=None,
        values=values or {},
    )


def error_row(scenario: str, config: str, error: BaseException) -> Row:
    """The row of a scenario that failed before it could measure (the table says "n/a")."""
    message = f"{type(error).__name__}: {error}".splitlines()[0][:120]
    return Row(
        scenario=f"{scenario} (failed)",
        config=config,
        measured=message,
        baseline="",
        ratio=None,
        goal="",
        passed=None,
        values={"error": f"{type(error).__name__}: {error}"},
    )


def verdict(row: Row) -> str:
    if row.passed is None:
        return "info" if row.goal == INFO_GOAL else "n/a"
    return "pass" if row.passed else "MISS"


def markdown_table(rows: Sequence[Row]) -> str:
    """The table as Markdown (the terminal prints the same)."""
    lines = [
        "| scenario | server / layer | measured | baseline | ratio | goal | result |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ratio = "" if row.ratio is None else f"{row.ratio:.2f}×"
        lines.append(
            f"| {row.scenario} | {row.config} | {row.measured} | {row.baseline} | {ratio} "
            f"| {row.goal} | {verdict(row)} |"
        )
    return "\n".join(lines)


def results_document(
    *,
    name: str,
    started_at: str,
    duration_s: float,
    machine: dict[str, Any],
    params: dict[str, Any],
    rows: Sequence[Row],
    series: dict[str, Any],
) -> dict[str, Any]:
    return {
        "schema": SCHEMA_VERSION,
        "name": name,
        "started_at": started_at,
        "duration_s": round(duration_s, 1),
        "machine": machine,
        "params": params,
        "rows": [asdict(row) for row in rows],
        "series": series,
    }


def validate(document: dict[str, Any]) -> list[str]:
    """What is wrong with a results document (empty when it matches the schema)."""
    problems = []
    missing = RESULT_KEYS - document.keys()
    if missing:
        problems.append(f"missing keys {sorted(missing)}")
    if document.get("schema") != SCHEMA_VERSION:
        problems.append(f"schema is {document.get('schema')!r}, not {SCHEMA_VERSION}")
    for index, row in enumerate(document.get("rows", [])):
        if set(row) != ROW_KEYS:
            problems.append(f"row {index} has keys {sorted(row)}")
            continue
        if row["passed"] not in (True, False, None):
            problems.append(f"row {index}: passed is {row['passed']!r}")
        if row["ratio"] is not None and not isinstance(row["ratio"], (int, float)):
            problems.append(f"row {index}: ratio is {row['ratio']!r}")
    for name, per_kind in document.get("series", {}).items():
        for kind, points in per_kind.items():
            if not all(isinstance(point, list) and len(point) >= 2 for point in points):
                problems.append(f"series {name}/{kind}: points must be [x, y, ...] lists")
    return problems


def write(document: dict[str, Any], path: Path) -> None:
    problems = validate(document)
    if problems:
        raise ValueError(f"results do not match the schema: {problems}")
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    temporary.replace(path)


def charts(document: dict[str, Any], directory: Path) -> list[Path]:
    """The two charts of docs/benchmarks.md, drawn from the document's series."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory.mkdir(parents=True, exist_ok=True)
    config = document["params"].get("scale_config", "")
    styles = {"app": "o-", "bare": "s--", "floor": "^:"}
    colours = {"app": "C0", "bare": "C2", "floor": "C3"}
    plots = (
        # file, series, title, y label, which columns of a point to draw and their labels
        (
            "fanout-latency.png",
            "fanout_vs_sockets",
            "Fan-out latency",
            "publish → last socket received (ms)",
            ((1, "p50", 1.0), (2, "p99", 0.35)),
        ),
        ("memory-rss.png", "rss_vs_sockets", "Server memory", "server RSS (MiB)", ((1, "", 1.0),)),
    )
    written = []
    for filename, key, title, ylabel, columns in plots:
        series = document["series"].get(key)
        if not series:
            continue
        figure, axes = plt.subplots(figsize=(7, 4.2))
        for kind, points in series.items():
            for column, label, alpha in columns:
                axes.plot(
                    [point[0] for point in points],
                    [point[column] for point in points],
                    styles.get(kind, "o-"),
                    color=colours.get(kind),
                    alpha=alpha,
                    label=f"{kind} {label}".strip(),
                )
        axes.set_xlabel("open sockets")
        axes.set_ylabel(ylabel)
        axes.set_title(f"{title} ({config}, {document['name']} run)")
        axes.grid(True, alpha=0.3)
        axes.legend(fontsize=8)
        figure.tight_layout()
        path = directory / filename
        figure.savefig(path, dpi=110)
        plt.close(figure)
        written.append(path)
    return written


def machine_markdown(machine: dict[str, Any]) -> str:
    """The machine block of docs/benchmarks.md."""
    lines = [f"- {key}: {value}" for key, value in machine.get("lscpu", {}).items()]
    lines.append(f"- memory: {machine.get('memory_gib')} GiB; kernel {machine.get('kernel')}")
    lines.append(
        f"- Python {machine.get('python')}; Redis {machine.get('redis_server')}; "
        f"PostgreSQL {machine.get('postgresql')}"
    )
    versions = ", ".join(f"{name} {v}" for name, v in machine.get("versions", {}).items())
    lines.append(f"- {versions}")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    document = json.loads(Path(sys.argv[1]).read_text())
    print(machine_markdown(document["machine"]))
    print()
    print(markdown_table([Row(**row) for row in document["rows"]]))
