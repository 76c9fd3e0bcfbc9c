"""Idle sockets and broadcast at scale: server RSS and broadcast latency while sockets open in
steps, for the app, bare Channels and the floor, each in a fresh process (so one's memory does
not carry over to the next).

Goals: the RSS slope over the steps (least squares, KiB per socket) ≤ 30 and below bare
Channels'; broadcast to the last step's sockets p50 ≤ 3× the floor's. The first config's
points are the charts' series (docs/img/).
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass

from bench.harness import (
    BOTH_SERVERS,
    DAPHNE_REDIS,
    Config,
    Publish,
    Run,
    Server,
    Sockets,
    fanout_rounds,
    log,
)
from bench.report import limit_row, ratio_row, slope, summary_ms

NAME = "scale"


@dataclass(frozen=True)
class Sizes:
    steps: tuple[int, ...]
    rounds: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": BOTH_SERVERS}
SIZES = {
    "quick": Sizes(steps=(100, 200, 300, 400, 500), rounds=3),
    "full": Sizes(steps=(1000, 2000, 3000, 4000, 5000), rounds=3),
}
#: The config whose series docs/img's charts draw.
CHART_CONFIG = DAPHNE_REDIS
RSS_LIMIT_KIB = 30.0
BROADCAST_P50_LIMIT = 3.0
KINDS = ("app", "bare", "floor")


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    latency: dict[str, list[list[float]]] = {}
    memory: dict[str, list[list[float]]] = {}
    for kind in KINDS:
        latency[kind], memory[kind] = await measure_kind(run, config, kind, sizes)
    slopes = {
        kind: slope((n, mib * 1024) for n, mib in points if n >= sizes.steps[0])
        for kind, points in memory.items()
    }
    suffix = "" if config == CHART_CONFIG else f" ({config})"
    run.series[f"fanout_vs_sockets{suffix}"] = latency
    run.series[f"rss_vs_sockets{suffix}"] = memory
    if config == CHART_CONFIG:
        run.params["scale_config"] = str(config)
    run.record(config, "scale", {"slopes_kib_per_socket": slopes})
    first, last = sizes.steps[0], sizes.steps[-1]
    rss = limit_row(
        f"idle sockets: RSS slope {first:,}→{last:,}",
        str(config),
        slopes["app"],
        RSS_LIMIT_KIB,
        unit="KiB/socket",
        baseline=f"bare {slopes['bare']:.1f}, floor {slopes['floor']:.1f} KiB/socket",
        values={"slopes_kib_per_socket": slopes},
    )
    below_bare = slopes["app"] < slopes["bare"]
    run.add(
        dataclasses.replace(rss, goal=f"{rss.goal}, < bare", passed=bool(rss.passed) and below_bare)
    )
    at = {kind: points[-1] for kind, points in latency.items()}
    run.add(
        ratio_row(
            f"broadcast to {last:,} sockets (p50)",
            str(config),
            at["app"][1],
            at["floor"][1],
            BROADCAST_P50_LIMIT,
            baseline_name="floor",
            values={"at_max": at},
        )
    )


async def measure_kind(
    run: Run, config: Config, kind: str, sizes: Sizes
) -> tuple[list[list[float]], list[list[float]]]:
    """[sockets, p50, p99] and [sockets, RSS MiB] points for one kind of server."""
    if kind == "floor":
        async with run.own_floor() as floor:
            return await measure_steps(run, kind, floor.url, floor.publish, floor.server, sizes)
    async with run.own_app_server(config) as server:
        if kind == "app":
            url, publish = server.app_url("fanout"), server.broadcast
        else:
            url, publish = server.bare_url(), server.bare_broadcast
        return await measure_steps(run, kind, url, publish, server.server, sizes)


async def measure_steps(
    run: Run, kind: str, url: str, publish: Publish, process: Server, sizes: Sizes
) -> tuple[list[list[float]], list[list[float]]]:
    template = run.seed.fanout_template
    sockets = Sockets()
    try:
        # A few sockets first, so imports and pools are not counted as per-socket memory.
        await sockets.open(url, 10)
        await fanout_rounds(sockets, publish, template, 2)
        await sockets.close()
        await asyncio.sleep(0.5)
        memory: list[list[float]] = [[0, process.rss_mib()]]
        latency: list[list[float]] = []
        for target in sizes.steps:
            log(f"scale {kind}: {target} sockets")
            await sockets.open(url, target - len(sockets))
            await asyncio.sleep(0.5)
            memory.append([target, process.rss_mib()])
            lat = summary_ms(await fanout_rounds(sockets, publish, template, sizes.rounds))
            latency.append([target, lat["p50_ms"], lat["p99_ms"]])
        return latency, memory
    finally:
        await sockets.close()
