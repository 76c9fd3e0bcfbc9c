"""Sustained pushes: one vendor's sockets receive pushes at a rising rate, 1 s or so per step,
until p99 publish → receive exceeds 100 ms or delivery falls behind. The result is the highest
delivered rate (frames/s over all sockets) that held p99 ≤ 100 ms.

Pushes go to the vendor group straight through the channel layer (no INSERT), so the ladder
measures delivery, not PostgreSQL. The sockets are ``WireSockets`` (a few µs of client CPU
per frame), so the client is not what gives out first; each step records both CPUs.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from bench.harness import (
    ALL_CONFIGS,
    DAPHNE_REDIS,
    AppServer,
    Config,
    Run,
    WireSockets,
    log,
    sent_at,
    stamp,
)
from bench.report import limit_row, summary_ms

NAME = "throughput"


@dataclass(frozen=True)
class Sizes:
    sockets: int
    #: Offered frames/s over all sockets (publishes/s × sockets), step by step.
    rates: tuple[int, ...]
    step_s: float


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": ALL_CONFIGS}
SIZES = {
    "quick": Sizes(sockets=100, rates=(5_000, 10_000, 20_000, 22_500, 25_000, 30_000), step_s=1.0),
    "full": Sizes(
        sockets=200,
        rates=(
            2_500,
            5_000,
            10_000,
            15_000,
            20_000,
            22_500,
            25_000,
            30_000,
            35_000,
            40_000,
            50_000,
            60_000,
        ),
        step_s=1.5,
    ),
}
GOAL_PER_S = 20_000
P99_LIMIT_MS = 100.0


def sustained(step: dict[str, Any], p99_limit_ms: float = P99_LIMIT_MS) -> bool:
    """Whether a step held: p99 within the limit, ≥ 98 % delivered within 2 s of the last
    publish, and the client really offered ≥ 90 % of the rate."""
    return (
        step["delivered"] > 0
        and step["p99_ms"] is not None
        and step["p99_ms"] <= p99_limit_ms
        and step["delivered"] >= 0.98 * step["expected"]
        and step["sent_per_s"] >= 0.9 * step["offered_per_s"]
    )


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    server = await run.app_server(config)
    log(f"{config}: sustained throughput, {sizes.sockets} sockets of one vendor")
    sockets = WireSockets()
    await sockets.open(server.app_url("throughput"), sizes.sockets)
    steps: list[dict[str, Any]] = []
    best = None
    try:
        for rate in sizes.rates:
            step = await ladder_step(run, server, sockets, rate, sizes.step_s)
            steps.append(step)
            if not sustained(step):
                break
            best = step
            await asyncio.sleep(0.3)
    finally:
        await sockets.close()
    result = {"steps": steps, "best": best}
    run.record(config, "throughput", result)
    run.add(
        limit_row(
            f"sustained delivered msgs/s, p99 ≤ {P99_LIMIT_MS:g} ms ({sizes.sockets} sockets)",
            str(config),
            best["delivered_per_s"] if best else 0,
            GOAL_PER_S,
            unit="msgs/s",
            at_least=True,
            baseline=(
                f"{best['server_cpu_us_per_msg']:.1f} µs server CPU/msg" if best else "none held"
            ),
            values=result,
        )
    )


async def ladder_step(
    run: Run, server: AppServer, sockets: WireSockets, rate: int, duration: float
) -> dict[str, Any]:
    import psutil  # type: ignore[import-untyped]

    from django_vendor_notifications import delivery

    group = delivery.vendor_group(run.seed.vendor_ids["throughput"])
    template = run.seed.fanout_template
    latencies: list[float] = []
    last_at = 0.0

    def on_frame(payload: bytes, at: float) -> None:
        nonlocal last_at
        sent = sent_at(payload)
        if sent is not None:
            latencies.append(at - sent)
            last_at = at

    sockets.on_frame = on_frame
    publishes_per_s = rate / len(sockets)
    me = psutil.Process()
    cpu_before, mine_before = server.server.cpu_seconds(), me.cpu_times()
    started = time.perf_counter()
    sent = 0
    while (elapsed := time.perf_counter() - started) < duration:
        for _ in range(int(elapsed * publishes_per_s) + 1 - sent):
            text = template.replace("@@ROUND@@", stamp(time.perf_counter()))
            await delivery.asend_event(group, delivery.push_event(text))
            sent += 1
        await asyncio.sleep(0.002)
    expected = sent * len(sockets)
    deadline = time.perf_counter() + 2
    while len(latencies) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    sockets.on_frame = lambda payload, at: None
    cpu = server.server.cpu_seconds() - cpu_before
    mine = me.cpu_times()
    client_cpu = mine.user + mine.system - mine_before.user - mine_before.system
    # From the first publish to the last frame received (at least the sending window).
    wall = max(duration, last_at - started)
    step: dict[str, Any] = {
        "offered_per_s": rate,
        "sent_per_s": expected / duration,
        "delivered": len(latencies),
        "expected": expected,
        "delivered_per_s": len(latencies) / wall,
        "server_cpu_us_per_msg": cpu / max(len(latencies), 1) * 1e6,
        "server_cpu_share": cpu / wall,
        "client_cpu_share": client_cpu / wall,
        # None, not infinity, when nothing arrived: the results must stay plain JSON.
        **(summary_ms(latencies) if latencies else {"p99_ms": None}),
    }
    log(
        f"  {rate:>6}/s offered: {step['delivered_per_s']:,.0f}/s delivered, "
        f"p99 {step['p99_ms'] or float('nan'):.1f} ms, server CPU {step['server_cpu_share']:.0%}, "
        f"client CPU {step['client_cpu_share']:.0%}"
    )
    return step
