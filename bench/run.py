"""The benchmark: seeds PostgreSQL, runs the scenarios of bench/scenarios/, reports.

    python -m bench.run --quick      # make bench-quick: small N, one server, about a minute
    python -m bench.run --full       # make bench: every server and layer, about 12 minutes
    python -m bench.run --full --only reconnect-storm --only slow-reader

This process is the load client (one asyncio loop), pinned to the second core; each server
runs pinned to the first (``taskset -c 0``). Redis and PostgreSQL are the local ones
(REDIS_URL, BENCH_DATABASE_URL). The results are written to bench/results/<profile>.json (with
--only, to the run's log directory unless --output says where) and printed as a table;
docs/benchmarks.md explains each scenario.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import resource
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench import harness, report
from bench.harness.machine import machine
from bench.scenarios import (
    Scenario,
    broadcast,
    churn,
    connect,
    history,
    queries,
    scale,
    slow_reader,
    storm,
    throughput,
)

#: In the order they run within each server and layer.
SCENARIOS: tuple[Scenario, ...] = (
    queries,
    connect,
    history,
    broadcast,
    throughput,
    slow_reader,
    scale,
    churn,
    storm,
)


def plan(
    scenarios: Sequence[Scenario], profile: str, only: Sequence[str] = ()
) -> list[tuple[harness.Config, Scenario]]:
    """(config, scenario) pairs to run: grouped by config, configs in the order the scenarios
    first name them, scenarios in their listed order within a config."""
    chosen = [s for s in scenarios if profile in s.CONFIGS and (not only or s.NAME in only)]
    configs = list(dict.fromkeys(c for s in chosen for c in s.CONFIGS[profile]))
    return [(c, s) for c in configs for s in chosen if c in s.CONFIGS[profile]]


async def run_all(
    profile: harness.Profile, steps: list[tuple[harness.Config, Scenario]]
) -> tuple[dict[str, Any], list[str], Path]:
    """Run the steps; the results document, the scenarios that failed and the log directory."""
    started_at = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    started = time.monotonic()
    await asyncio.to_thread(harness.ensure_database)
    seed = await asyncio.to_thread(harness.seed, profile.history_rows)
    from django.db import connections

    await asyncio.to_thread(connections.close_all)
    logs = Path(tempfile.mkdtemp(prefix=f"vn-bench-{profile.name}-"))
    (logs / "bare-frame.json").write_text(seed.bare_frame, encoding="utf-8")
    run = harness.Run(profile, seed, logs)
    failed: list[str] = []
    try:
        for index, (config, scenario) in enumerate(steps):
            if index and steps[index - 1][0] != config:
                await run.stop_shared()
            try:
                await scenario.run(run, config)
            except Exception as error:
                # One scenario's failure must not cost the rest of a long run.
                harness.log(f"{scenario.NAME} on {config} failed:\n{traceback.format_exc()}")
                failed.append(f"{scenario.NAME} on {config}: {error!r}")
                run.add(report.error_row(scenario.NAME, str(config), error))
    finally:
        await run.close()
    info = await asyncio.to_thread(machine)
    harness.log(f"server logs: {logs}")
    scenarios = list(dict.fromkeys(scenario for _, scenario in steps))
    document = report.results_document(
        name=profile.name,
        started_at=started_at,
        duration_s=time.monotonic() - started,
        machine=info,
        params={
            "name": profile.name,
            "history_rows": profile.history_rows,
            "configs": [asdict(config) for config in dict.fromkeys(c for c, _ in steps)],
            "scenarios": {s.NAME: asdict(s.SIZES[profile.name]) for s in scenarios},
            "connect_concurrency": harness.CONNECT_CONCURRENCY,
            **run.params,
            "raw": run.raw,
        },
        rows=run.rows,
        series=run.series,
    )
    return document, failed, logs


def main(argv: Sequence[str] | None = None) -> int:
    names = [scenario.NAME for scenario in SCENARIOS]
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--quick", action="store_const", dest="profile", const="quick")
    which.add_argument("--full", action="store_const", dest="profile", const="full")
    parser.add_argument(
        "--charts", type=Path, default=None, help="draw the PNG charts into this directory"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=names,
        metavar="SCENARIO",
        help=f"run only this scenario (repeatable): {', '.join(names)}",
    )
    parser.add_argument("--output", type=Path, default=None, help="write the results here instead")
    args = parser.parse_args(argv)
    harness.configure_django()
    profile = harness.PROFILES[args.profile]
    steps = plan(SCENARIOS, profile.name, args.only)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Servers inherit this: each socket is a descriptor on both sides.
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {harness.CLIENT_CORE})
    document, failed, logs = asyncio.run(run_all(profile, steps))
    # A partial run must not replace the committed results of the whole profile.
    default = (logs if args.only else harness.RESULTS) / f"{profile.name}.json"
    path = args.output or default
    report.write(document, path)
    if args.charts:
        for chart in report.charts(document, args.charts):
            harness.log(f"chart: {chart}")
    print()
    print(report.markdown_table([report.Row(**row) for row in document["rows"]]))
    shown = path.relative_to(harness.ROOT) if path.is_relative_to(harness.ROOT) else path
    print(f"\n{profile.name}: {document['duration_s']:.0f} s; results in {shown}")
    for failure in failed:
        print(f"failed: {failure}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
