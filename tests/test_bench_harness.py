"""The benchmark's code that needs no server: goal rows, the table, the results schema, the load
client's frame parsing, the reconnect storm's audit and the runner's plan."""

from __future__ import annotations

import inspect
import json
import random
from dataclasses import asdict, is_dataclass
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench import report
from bench import run as bench_run
from bench.harness import IN_PROCESS, Config, reconnecting, wire
from bench.scenarios import queries, throughput

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


def test_info_and_error_rows_have_no_verdict_but_say_why() -> None:
    info = report.info_row("cold connect", "in-process", "4 / 4 / 4")
    failed = report.error_row("slow-reader", "daphne / Redis", RuntimeError("only 3 of 5\nmore"))
    assert (info.passed, report.verdict(info)) == (None, "info")
    assert (failed.passed, report.verdict(failed)) == (None, "n/a")
    assert failed.measured == "RuntimeError: only 3 of 5"
    assert report.validate(document(rows=[asdict(info), asdict(failed)])) == []


# --- the load client's pure parts ----------------------------------------------------------


def server_frame(opcode: int, payload: bytes, *, fin: bool = True) -> bytes:
    """A frame as a server sends it: unmasked."""
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return bytes((first, len(payload))) + payload
    if len(payload) < 2**16:
        return bytes((first, 126)) + len(payload).to_bytes(2, "big") + payload
    return bytes((first, 127)) + len(payload).to_bytes(8, "big") + payload


@pytest.mark.parametrize("size", [0, 125, 126, 65_535, 65_536])
def test_wire_parses_every_length_encoding(size: int) -> None:
    payload = b"x" * size
    data = server_frame(wire.TEXT, payload) + server_frame(wire.PING, b"hi")
    frames, used = wire.parse_frames(data)
    assert frames == [(wire.TEXT, True, payload), (wire.PING, True, b"hi")]
    assert used == len(data)


def test_wire_leaves_a_partial_frame_in_the_buffer() -> None:
    whole = server_frame(wire.TEXT, b"a") + server_frame(wire.TEXT, b"b" * 300)
    for cut in range(2, len(whole)):
        frames, used = wire.parse_frames(whole[:cut])
        assert used == (3 if cut >= 3 else 0)
        assert [payload for _, _, payload in frames] == ([b"a"] if cut >= 3 else [])
    frames, _ = wire.parse_frames(server_frame(wire.TEXT, b"c", fin=False))
    assert frames == [(wire.TEXT, False, b"c")]


def test_wire_client_frames_are_masked_and_read_back() -> None:
    frame = wire.client_frame(wire.PONG, b"payload", mask=b"\x01\x02\x03\x04")
    assert frame[1] & 0x80  # the mask bit
    assert b"payload" not in frame
    assert wire.parse_frames(frame) == ([(wire.PONG, True, b"payload")], len(frame))
    long = wire.client_frame(wire.TEXT, b"y" * 70_000)
    assert wire.parse_frames(long)[0] == [(wire.TEXT, True, b"y" * 70_000)]


def test_publish_time_survives_the_frame() -> None:
    sent = 12345.678901234
    payload = f'{{"message":"Order {wire.stamp(sent)} placed"}}'.encode()
    assert wire.sent_at(payload) == sent
    assert wire.sent_at(b'{"message":"no stamp"}') is None
    host, port, request = wire.handshake("ws://127.0.0.1:8123/v1/ws/?token=abc")
    assert (host, port) == ("127.0.0.1", 8123)
    assert request.startswith(b"GET /v1/ws/?token=abc HTTP/1.1\r\n")
    assert request.endswith(b"\r\n\r\n")


# --- scenarios' pure parts -----------------------------------------------------------------


def test_backoff_doubles_up_to_the_cap_with_full_jitter() -> None:
    rng = random.Random(1)
    for attempt in range(12):
        ceiling = min(reconnecting.BACKOFF_CAP_S, reconnecting.BACKOFF_BASE_S * 2**attempt)
        delays = [reconnecting.backoff_delay(attempt, rng) for _ in range(200)]
        assert min(delays) >= 0 and max(delays) <= ceiling
        assert max(delays) > ceiling / 2  # spread over the whole range, not a fixed wait


def test_audit_counts_lost_duplicated_and_unexpected_ids_per_client() -> None:
    assert reconnecting.audit([1, 2, 3], [[1, 2, 3], [3, 1, 2]]) == {
        "lost": 0,
        "duplicated": 0,
        "unexpected": 0,
    }
    assert reconnecting.audit([1, 2, 3], [[1, 2], [1, 1, 2, 3, 9]]) == {
        "lost": 1,
        "duplicated": 1,
        "unexpected": 1,
    }


def test_ids_come_from_pushes_and_sync_replies_not_the_snapshot() -> None:
    push = json.dumps({"action": "new_notification", "notification": {"id": 7}}, separators=",:")
    sync = json.dumps(
        {
            "action": "sync",
            "since_id": 3,
            "notifications": [{"id": 4}, {"id": 5}],
            "has_more": True,
        },
        separators=",:",
    )
    snapshot = json.dumps(
        {"action": "unread_notifications", "notifications": {"A": [{"id": 9}]}}, separators=",:"
    )
    assert reconnecting.notification_ids(push) == ([7], None)
    assert reconnecting.notification_ids(sync) == ([4, 5], True)
    assert reconnecting.notification_ids(snapshot) == ([], None)


def step(**overrides: object) -> dict[str, object]:
    base = {"offered_per_s": 20_000, "sent_per_s": 19_900, "delivered": 9_900, "expected": 10_000}
    return {**base, "p99_ms": 40.0, **overrides}


def test_a_ladder_step_holds_only_within_p99_and_delivered() -> None:
    assert throughput.sustained(step())
    assert not throughput.sustained(step(p99_ms=100.5))
    assert not throughput.sustained(step(p99_ms=None, delivered=0))
    assert not throughput.sustained(step(delivered=9_700))
    assert not throughput.sustained(step(sent_per_s=17_000))


def test_query_rows_want_the_same_count_for_every_vendor() -> None:
    row = queries.queries_row("connect", {"a": 3, "b": 3}, "10 / 100", 3)
    assert (row.scenario, row.passed, row.ratio, row.goal) == (
        "DB queries per connect (warm)",
        True,
        1.0,
        "constant, ≤ 3",
    )
    assert queries.queries_row("connect", {"a": 3, "b": 4}, "", 3).passed is False
    assert queries.queries_row("load_more", {"a": 2, "b": 2}, "", None).ratio is None


# --- the runner ----------------------------------------------------------------------------


def scenario(name: str, **configs: tuple[Config, ...]) -> SimpleNamespace:
    return SimpleNamespace(NAME=name, CONFIGS=configs, SIZES={})


def test_plan_groups_by_config_in_first_named_order() -> None:
    a, b = Config("daphne", "redis"), Config("uvicorn", "redis")
    listed = [
        scenario("queries", quick=(IN_PROCESS,), full=(IN_PROCESS,)),
        scenario("connect", quick=(a,), full=(a, b)),
        scenario("storm", full=(b, a)),
    ]
    names = [(str(config), s.NAME) for config, s in bench_run.plan(listed, "full")]  # type: ignore[arg-type]
    assert names == [
        ("in-process", "queries"),
        ("daphne / Redis", "connect"),
        ("daphne / Redis", "storm"),
        ("uvicorn / Redis", "connect"),
        ("uvicorn / Redis", "storm"),
    ]
    quick = bench_run.plan(listed, "quick", ["connect", "storm"])  # type: ignore[arg-type]
    assert [(str(config), s.NAME) for config, s in quick] == [("daphne / Redis", "connect")]


def test_every_scenario_module_has_the_interface_and_unique_name() -> None:
    names = [module.NAME for module in bench_run.SCENARIOS]
    assert len(set(names)) == len(names)
    for module in bench_run.SCENARIOS:
        assert set(module.CONFIGS) <= {"quick", "full"}
        assert set(module.CONFIGS) <= set(module.SIZES)
        assert inspect.iscoroutinefunction(module.run)
        for sizes in module.SIZES.values():
            assert is_dataclass(sizes)
