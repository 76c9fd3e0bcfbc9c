"""Reconnect storm: N sockets connected, the server process killed and started again on the
same port, and every client reconnecting at once, as docs/protocol.md's recovery rules say a
client should: after a random jitter, retrying a failed handshake with exponential back-off,
with ``?since=<newest id it saw>``.

Measured: the time from the new process listening until every client has its first frame,
against the same storm of bare Channels clients (goal ≤ 2×). And nothing lost: notifications
published before the kill, created while the server was down and published once all are back
must each reach every app client exactly once (from pushes and sync replies).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from bench.harness import (
    BOTH_SERVERS,
    DAPHNE_REDIS,
    AppServer,
    Config,
    Run,
    clear_notifications,
    log,
)
from bench.harness.reconnecting import Client, audit, close_all, open_all, wait_for
from bench.report import percentile, ratio_row

NAME = "reconnect-storm"


@dataclass(frozen=True)
class Sizes:
    sockets: int
    #: Notifications published before the kill, created while down, published after.
    before: int
    while_down: int
    after: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": BOTH_SERVERS}
SIZES = {
    "quick": Sizes(sockets=100, before=5, while_down=5, after=3),
    "full": Sizes(sockets=2000, before=20, while_down=20, after=5),
}
LIMIT = 2.0
#: Seconds the server stays down before the new process starts.
DOWN_S = 1.0
#: How long the clients may take to come back before the storm counts as failed.
DEADLINE_S = 120.0


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    vendor_id = run.seed.vendor_ids["storm"]
    await sync_to_async(clear_notifications)(vendor_id)
    async with run.own_app_server(config) as server:
        app = await storm(server, sizes, vendor_id, app=True)
        bare = await storm(server, sizes, vendor_id, app=False)
    run.record(config, "reconnect_storm", {"app": app, "bare": bare})
    lost, duplicated = app["lost"], app["duplicated"]
    row = ratio_row(
        f"reconnect storm, {sizes.sockets:,} sockets: restart → all first frames",
        str(config),
        app["all_first_frames_s"],
        bare["all_first_frames_s"],
        LIMIT,
        unit="s",
        baseline_name="bare",
        values={"app": app, "bare": bare},
    )
    run.add(
        dataclasses.replace(
            row,
            measured=f"{row.measured}; {lost} lost, {duplicated} duplicated",
            goal=f"{row.goal}, none lost or twice",
            passed=bool(row.passed) and lost == 0 and duplicated == 0,
        )
    )


async def storm(server: AppServer, sizes: Sizes, vendor_id: int, *, app: bool) -> dict[str, Any]:
    from django_vendor_notifications import services

    notify = sync_to_async(services.notify)
    kind = "app" if app else "bare"
    rng = random.Random(sizes.sockets)

    def url(since: int | None) -> str:
        return server.app_url("storm", since=since) if app else server.bare_url()

    clients = [Client(url, rng, track_ids=app) for _ in range(sizes.sockets)]
    log(f"storm {kind}: {sizes.sockets} sockets")
    await open_all(clients)
    ids: list[int] = []

    async def publish(count: int, when: str) -> None:
        for number in range(count):
            created = await notify(
                vendor_id, f"Storm {when} {number}", category="Order Notifications"
            )
            ids.append(created.pk)

    if app:
        await publish(sizes.before, "before")
        await wait_for(lambda: all(client.has(ids) for client in clients), 10)
    for client in clients:
        client.reconnecting = True
    killed = time.perf_counter()
    await asyncio.to_thread(server.server.kill)
    # The same outage for app and bare, whatever creating the notifications takes: the
    # clients' back-off, and so the storm, depends on it.
    outage = asyncio.create_task(asyncio.sleep(DOWN_S))
    if app:
        await publish(sizes.while_down, "while down")
    await outage
    server.server = await server.start_again()
    listening = time.perf_counter()
    log(f"storm {kind}: restarted in {listening - killed:.1f}s; clients reconnecting")
    back = await wait_for(lambda: all(c.first_frame_at for c in clients), DEADLINE_S)
    firsts = [c.first_frame_at for c in clients if c.first_frame_at]
    result: dict[str, Any] = {
        "sockets": sizes.sockets,
        "reconnected": len(firsts),
        "restart_s": listening - killed,
        "all_first_frames_s": (max(firsts) - listening) if back else DEADLINE_S,
        "from_kill_s": (max(firsts) - killed) if back else DEADLINE_S,
        "failed_attempts": sum(client.failures for client in clients),
    }
    if firsts:
        # How the clients spread: the goal is about the last one, the back-off sets the tail.
        after_listening = [at - listening for at in firsts]
        result["first_frame_p50_s"] = percentile(after_listening, 50)
        result["first_frame_p90_s"] = percentile(after_listening, 90)
    if app:
        caught_up = await wait_for(lambda: all(c.has(ids) for c in clients), DEADLINE_S / 4)
        result["caught_up_s"] = time.perf_counter() - listening if caught_up else None
        await publish(sizes.after, "after")
        await wait_for(lambda: all(client.has(ids) for client in clients), 10)
        result.update(audit(ids, [client.received for client in clients]))
        result["notifications"] = len(ids)
    log(
        f"storm {kind}: all back {result['all_first_frames_s']:.1f}s after listening, "
        f"{result['failed_attempts']} failed attempts"
        + (f", {result['lost']} lost, {result['duplicated']} duplicated" if app else "")
    )
    await close_all(clients)
    return result
