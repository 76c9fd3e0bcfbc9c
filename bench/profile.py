"""Profile one benchmark scenario's server with py-spy and list where its time goes.

    python -m bench.profile broadcast          # make bench-profile SCENARIO=broadcast
    python -m bench.profile connect --server uvicorn --layer redis-pubsub

Starts the server pinned to core 0 as ``make bench`` does, records it with
``py-spy record --native --format raw`` while this process drives the scenario's load, and
prints the frames with the most samples, by themselves (self) and with what they call
(inclusive). The raw stacks stay in bench/results/profile-<scenario>-<server>-<layer>.txt, for
flamegraph.pl or speedscope.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench import run as harness

SCENARIOS = ("broadcast", "connect")


def summarize(raw: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares of samples per frame from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        if not frames:
            continue
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return {"self": [], "inclusive": []}
    return {
        "self": [(frame, count / total) for frame, count in own.most_common(top)],
        "inclusive": [(frame, count / total) for frame, count in inclusive.most_common(top)],
        "samples": [("total", float(total))],
    }


async def drive(run: harness.Run, server: harness.Server, scenario: str, seconds: float) -> int:
    """The scenario's load for ``seconds``; how many operations it completed."""
    from django_vendor_notifications import delivery

    done = 0
    deadline = time.perf_counter() + seconds
    if scenario == "connect":
        url = run.app_url(server, "connect-100")
        while time.perf_counter() < deadline:
            await harness.connect_first_frame(url)
            done += 1
        return done
    sockets = harness.Sockets()
    await sockets.open(run.app_url(server, "fanout"), run.profile.fanout_sockets)

    async def publish(text: str) -> None:
        await delivery.asend_event(delivery.broadcast_group(), delivery.push_event(text))

    while time.perf_counter() < deadline:
        await harness.fanout_rounds(sockets, publish, run.seed.fanout_template, 5)
        done += 5
    await sockets.close()
    return done


async def main_async(args: argparse.Namespace) -> Path:
    profile = harness.PROFILES["full"]
    config = harness.Config(args.server, args.layer)
    await asyncio.to_thread(harness.ensure_database)
    seed = await asyncio.to_thread(harness.seed, profile.history_rows)
    from django.db import connections

    await asyncio.to_thread(connections.close_all)
    logs = Path(tempfile.mkdtemp(prefix="vn-bench-profile-"))
    (logs / "bare-frame.json").write_text(seed.bare_frame, encoding="utf-8")
    prefix = f"{harness.PREFIX}-{uuid.uuid4().hex[:8]}"
    layer = harness.use_layer(config, prefix)
    run = harness.Run(profile, seed, logs, floor=None, floor_channel="")  # type: ignore[arg-type]
    server = await asyncio.to_thread(
        harness.start_asgi, config, run.server_env(config, prefix), logs
    )
    name = f"profile-{args.scenario}-{args.server}-{args.layer}"
    raw = harness.RESULTS / f"{name}.txt"
    try:
        await harness.interleaved_connects({"app": run.app_url(server, "connect-100")}, 5)
        command = [
            shutil.which("py-spy") or "py-spy",
            "record",
            "--native",
            "--format",
            "raw",
            "--rate",
            "250",
            "--pid",
            str(server.pid),
            "--output",
            str(raw),
            "--duration",
            str(int(args.seconds) + 2),
        ]
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(1.0)  # py-spy attaches
        done = await drive(run, server, args.scenario, args.seconds)
        _, errors = await asyncio.to_thread(spy.communicate, timeout=60)
        if spy.returncode:
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
    finally:
        server.stop()
        await layer.flush()
    harness.log(f"{done} operations profiled; stacks in {raw.relative_to(harness.ROOT)}")
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--layer", choices=("redis", "redis-pubsub"), default="redis")
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {harness.CLIENT_CORE})
    raw = asyncio.run(main_async(args))
    shares = summarize(raw)
    for kind in ("self", "inclusive"):
        print(f"\n{kind} (share of samples):")
        for frame, share in shares[kind]:
            print(f"  {share:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
