"""Broadcast: one push to the all_notifications group reaches N open sockets; and one vendor's
push while those N sockets stay open and idle.

Publish → the last socket's frame, per round; the floor's is one Redis PUBLISH to the raw
websockets server, bare Channels' one group_send to the bare consumers (in the values). Then
``services.notify()`` (INSERT, previous id, on_commit publish) → that vendor's one socket.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from asgiref.sync import sync_to_async

from bench.harness import (
    ALL_CONFIGS,
    DAPHNE_REDIS,
    AppServer,
    Config,
    Publish,
    Run,
    Sockets,
    fanout_rounds,
    log,
)
from bench.report import limit_row, ratio_row, summary_ms

NAME = "broadcast"


@dataclass(frozen=True)
class Sizes:
    sockets: int
    rounds: int
    push_rounds: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": ALL_CONFIGS}
SIZES = {
    "quick": Sizes(sockets=200, rounds=20, push_rounds=20),
    "full": Sizes(sockets=1000, rounds=20, push_rounds=50),
}
#: Goal: app / floor at each percentile.
LIMITS = {"p50": 2.0, "p99": 3.0}
PUSH_P99_LIMIT_MS = 50
#: Seconds the server gets to clean up after the bare baseline before the push rounds.
BARE_CLEANUP_S = 2.0


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    server = await run.app_server(config)
    floor = await run.floor()
    template = run.seed.fanout_template
    log(f"{config}: broadcast to {sizes.sockets} sockets")
    app_sockets = Sockets()
    await app_sockets.open(server.app_url("fanout"), sizes.sockets)
    try:
        app = summary_ms(await fanout_rounds(app_sockets, server.broadcast, template, sizes.rounds))
        floor_lat = await baseline(floor.url, floor.publish, template, sizes)
        bare = await baseline(server.bare_url(), server.bare_broadcast, template, sizes)
        run.record(config, "fanout", {"app": app, "bare": bare, "floor": floor_lat})
        for q, limit in LIMITS.items():
            run.add(
                ratio_row(
                    f"broadcast to {sizes.sockets:,} sockets ({q})",
                    str(config),
                    app[f"{q}_ms"],
                    floor_lat[f"{q}_ms"],
                    limit,
                    baseline_name="floor",
                    values={"app": app, "bare": bare, "floor": floor_lat},
                )
            )
        # The bare baseline's sockets just closed: on RedisChannelLayer the server spends a few
        # hundred ms discarding their group memberships, which would land in a push round.
        await asyncio.sleep(BARE_CLEANUP_S)
        await push_with_idle_sockets(run, config, server, len(app_sockets), sizes.push_rounds)
    finally:
        await app_sockets.close()


async def baseline(url: str, publish: Publish, template: str, sizes: Sizes) -> dict[str, float]:
    sockets = Sockets()
    await sockets.open(url, sizes.sockets)
    try:
        return summary_ms(await fanout_rounds(sockets, publish, template, sizes.rounds))
    finally:
        await sockets.close()


async def push_with_idle_sockets(
    run: Run, config: Config, server: AppServer, idle: int, rounds: int
) -> None:
    from django_vendor_notifications import services

    log(f"{config}: per-vendor push with {idle} idle sockets")
    push_sockets = Sockets()
    await push_sockets.open(server.app_url("push"), 1)
    vendor_id = run.seed.vendor_ids["push"]
    notify = sync_to_async(services.notify)

    async def publish(text: str) -> None:
        await notify(vendor_id, text, category="Order Notifications")

    try:
        push = summary_ms(
            await fanout_rounds(push_sockets, publish, "Order @@ROUND@@ placed.", rounds)
        )
    finally:
        await push_sockets.close()
    run.record(config, "push", push)
    run.add(
        limit_row(
            f"notify() → vendor's socket, {idle:,} idle open (p99)",
            str(config),
            push["p99_ms"],
            PUSH_P99_LIMIT_MS,
            unit="ms",
            baseline=f"p50 {push['p50_ms']:.2f} ms",
            values=push,
        )
    )
