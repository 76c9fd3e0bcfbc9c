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
from pathlib import Path

from bench import harness
from bench.scenarios import broadcast

SCENARIOS = ("broadcast", "connect")


#: Stacks that end waiting for work: idle worker threads and an event loop with nothing to do.
IDLE = ("_queue_SimpleQueue_get", "epoll_wait", "PyThread_acquire_lock_timed (")


def summarize(raw: Path, top: int = 25) -> dict[str, list[tuple[str, float]]]:
    """Self and inclusive shares of the busy samples per frame, from py-spy's collapsed
    stacks. A native frame's self time is charged to it and to the nearest Python frame above
    it ("gc_collect_main < Handle._run"), which says who paid for it."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    busy = idle = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [frame for frame in stack.split(";") if frame]
        if not frames:
            continue
        if any(marker in frames[-1] or marker in stack for marker in IDLE[:1]) or any(
            frames[-1].startswith(marker) for marker in IDLE[1:]
        ):
            idle += count
            continue
        busy += count
        python = next((f for f in reversed(frames) if ".py:" in f or ".py)" in f), "?")
        leaf = frames[-1]
        own[leaf if leaf == python else f"{leaf} < {python}"] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not busy:
        return {"self": [], "inclusive": [], "samples": [("busy", 0.0), ("idle", float(idle))]}
    return {
        "self": [(frame, count / busy) for frame, count in own.most_common(top)],
        "inclusive": [(frame, count / busy) for frame, count in inclusive.most_common(top)],
        "samples": [("busy", float(busy)), ("idle", float(idle))],
    }


def py_spy() -> str:
    """py-spy from this virtualenv (the bench extra), else from PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy") or "py-spy"


async def prepare(server: harness.AppServer, scenario: str) -> harness.Sockets:
    """What the scenario needs open before recording starts (the broadcast's sockets)."""
    sockets = harness.Sockets()
    if scenario == "broadcast":
        await sockets.open(server.app_url("fanout"), broadcast.SIZES["full"].sockets)
    return sockets


async def drive(
    run: harness.Run,
    server: harness.AppServer,
    sockets: harness.Sockets,
    scenario: str,
    seconds: float,
) -> int:
    """The scenario's load for ``seconds``; how many operations it completed."""
    done = 0
    deadline = time.perf_counter() + seconds
    if scenario == "connect":
        url = server.app_url("connect-100")
        while time.perf_counter() < deadline:
            await harness.connect_first_frame(url)
            done += 1
        return done
    while time.perf_counter() < deadline:
        await harness.fanout_rounds(sockets, server.broadcast, run.seed.fanout_template, 5)
        done += 5
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
    run = harness.Run(profile, seed, logs)
    name = f"profile-{args.scenario}-{args.server}-{args.layer}"
    raw = harness.RESULTS / f"{name}.txt"
    try:
        server = await run.app_server(config)
        await harness.interleaved_connects({"app": server.app_url("connect-100")}, 5)
        command = [
            py_spy(),
            "record",
            "--native",
            "--format",
            "raw",
            "--rate",
            "250",
            "--pid",
            str(server.server.pid),
            "--output",
            str(raw),
            "--duration",
            str(int(args.seconds) + 2),
        ]
        sockets = await prepare(server, args.scenario)
        spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(1.0)  # py-spy attaches
        done = await drive(run, server, sockets, args.scenario, args.seconds)
        await sockets.close()
        _, errors = await asyncio.to_thread(spy.communicate, timeout=60)
        if spy.returncode:
            raise RuntimeError(f"py-spy failed: {errors.decode(errors='replace')}")
    finally:
        await run.close()
    harness.log(f"{done} operations profiled; stacks in {raw.relative_to(harness.ROOT)}")
    return raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenario", choices=SCENARIOS)
    parser.add_argument("--server", choices=("daphne", "uvicorn"), default="daphne")
    parser.add_argument("--layer", choices=("redis", "redis-pubsub"), default="redis")
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument(
        "--summarize", type=Path, default=None, help="only summarize these recorded stacks"
    )
    args = parser.parse_args()
    harness.configure_django()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {harness.CLIENT_CORE})
    raw = args.summarize or asyncio.run(main_async(args))
    shares = summarize(raw)
    print(dict(shares["samples"]))
    for kind in ("self", "inclusive"):
        print(f"\n{kind} (share of samples):")
        for frame, share in shares[kind]:
            print(f"  {share:6.1%}  {frame}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
