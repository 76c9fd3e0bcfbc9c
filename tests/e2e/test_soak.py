"""Soak: many clients coming and going under a steady publisher; nothing lost, memory flat.

200 sockets of 10 vendors on one daphne process (RedisChannelLayer), a worker publishing 50
notifications a second across the vendors, and every half second a random client dropping
its connection and coming back the way docs/protocol.md says (reconnect, sync from the
newest id held, de-duplicate by id). At the end every client must hold every notification of
its vendor exactly once, the server's log must hold no error, and its RSS must stay within
10 % of its size after the warm-up (the slope is reported). The server returns freed memory
to the system every 30 s as docs/deployment.md recommends (memory.trim_freed_memory);
SOAK_MALLOC_TRIM_INTERVAL=0 runs it without.

Not part of ``make test`` (the ``soak`` marker is deselected): ``make soak`` runs it for
15 minutes (SOAK_SECONDS=900), and CI for 60 seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from rest_framework_simplejwt.tokens import AccessToken
from websockets.asyncio.client import ClientConnection

from tests.conftest import make_user
from tests.testapp.models import Vendor

from .conftest import AsgiServer, ServerKind, launch_server, rss_kib, server_env
from .test_faults import FollowingClient, report, until_caught_up

pytestmark = [pytest.mark.e2e, pytest.mark.soak, pytest.mark.django_db(transaction=True)]

SECONDS = float(os.environ.get("SOAK_SECONDS", "60"))
VENDORS = 10
SOCKETS_PER_VENDOR = 20
RATE = 50.0
#: Seconds between two random drops.
CHURN_EVERY = 0.5
#: The share of the run after which memory must be flat.
WARM_UP = 0.3

PUBLISH = """
import sys, time
from django_vendor_notifications import services
vendors = {vendors}
started = time.monotonic()
index = 0
while time.monotonic() - started < {seconds}:
    vendor = vendors[index % len(vendors)]
    notification = services.notify(vendor, f"Soak {{index}}")
    print(vendor, notification.pk, flush=True)
    index += 1
    time.sleep(max(0.0, started + index / {rate} - time.monotonic()))
"""


class ChurningClient(FollowingClient):
    """A FollowingClient whose current connection can be dropped from outside."""

    ws: ClientConnection | None = None

    async def follow(self, ws: ClientConnection, stop: asyncio.Event) -> bool:
        self.ws = ws
        try:
            return await super().follow(ws, stop)
        finally:
            self.ws = None

    async def drop(self) -> None:
        if self.ws is not None:
            await self.ws.close()


def slope_kib_per_minute(samples: list[tuple[float, int]]) -> float:
    """Least-squares slope of (seconds, KiB), per minute."""
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_r = sum(r for _, r in samples) / n
    covariance = sum((t - mean_t) * (r - mean_r) for t, r in samples)
    variance = sum((t - mean_t) ** 2 for t, _ in samples) or 1.0
    return covariance / variance * 60


@pytest.fixture
def soak_server(tmp_path: Path, django_db_setup: None) -> Iterator[AsgiServer]:
    if not Path("/proc/self/status").exists():
        pytest.skip("the soak reads the server's RSS from /proc")
    env = {
        **server_env("redis", vendor_settings={"MAX_SOCKETS_PER_USER": SOCKETS_PER_VENDOR}),
        # As docs/deployment.md recommends: without it glibc keeps the pages the churn frees,
        # and RSS rose about 1.5 MiB a minute while the memory in use stayed flat.
        "TEST_MALLOC_TRIM_INTERVAL": os.environ.get("SOAK_MALLOC_TRIM_INTERVAL", "30"),
    }
    if env["TEST_MALLOC_TRIM_INTERVAL"] == "0":
        del env["TEST_MALLOC_TRIM_INTERVAL"]
    server = launch_server(ServerKind("daphne", "redis"), env, tmp_path)
    try:
        yield server
    finally:
        server.stop()


def long_lived_token(user: Any) -> str:
    """An access token that outlives the run: these clients do not refresh tokens (client.js
    does), and an expired one is closed with 4001 on its next reconnect."""
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=SECONDS + 600))
    return str(token)


@database_sync_to_async
def make_vendors() -> list[Vendor]:
    return [
        Vendor.objects.create(user=make_user(f"soak-{index}"), name=f"Soak {index}")
        for index in range(VENDORS)
    ]


async def test_soak_nothing_lost_nothing_twice_memory_flat(soak_server: AsgiServer) -> None:
    server = soak_server
    vendors = await make_vendors()
    clients = [
        ChurningClient(server, long_lived_token(vendor.user), vendor.pk)
        for vendor in vendors
        for _ in range(SOCKETS_PER_VENDOR)
    ]
    stop = asyncio.Event()
    running = [asyncio.ensure_future(client.run(stop)) for client in clients]
    published: dict[int, set[int]] = {vendor.pk: set() for vendor in vendors}
    rss: list[tuple[float, int]] = []
    drops = 0
    try:
        deadline = time.monotonic() + 30
        while not all(client.connections for client in clients):
            assert time.monotonic() < deadline, "clients did not connect"
            await asyncio.sleep(0.1)
        code = PUBLISH.format(vendors=[v.pk for v in vendors], seconds=SECONDS, rate=RATE)
        publisher = await server.start_python(code)
        assert publisher.stdout is not None and publisher.stderr is not None

        async def read_ids() -> None:
            assert publisher.stdout is not None
            async for line in publisher.stdout:
                vendor_id, notification_id = map(int, line.split())
                published[vendor_id].add(notification_id)

        reader = asyncio.ensure_future(read_ids())
        started = time.monotonic()
        next_drop = started
        while publisher.returncode is None and time.monotonic() - started < SECONDS + 30:
            now = time.monotonic()
            if now >= next_drop:
                await random.choice(clients).drop()
                drops += 1
                next_drop = now + CHURN_EVERY
            rss.append((now - started, rss_kib(server.process.pid)))
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(publisher.wait(), CHURN_EVERY)
        await reader
        stderr = (await publisher.stderr.read()).decode(errors="replace")
        assert publisher.returncode == 0, stderr
        caught_up_after = 0.0
        for vendor_id, ids in published.items():
            vendor_clients = [c for c in clients if c.vendor_id == vendor_id]
            caught_up_after = max(caught_up_after, await until_caught_up(vendor_clients, ids))
    finally:
        stop.set()
        await asyncio.gather(*running)

    total = sum(len(ids) for ids in published.values())
    assert total >= RATE * SECONDS * 0.8, f"the publisher fell behind: {total}"
    for client in clients:
        ids = published[client.vendor_id]
        missing, extra = ids - client.ids, client.ids - ids
        # Each client joined before the first notification: it must hold every one of its
        # vendor's, and none of another's (FollowingClient checks the vendor of each item).
        assert not missing and not extra, (client.vendor_id, sorted(missing)[:10])
        assert client.live_repeats == 0
    log = server.log()
    levels = Counter(word for line in log.splitlines() for word in line.split()[2:3])
    assert "Traceback" not in log and not levels["ERROR"], log[-3000:]
    after_warm_up = [(t, r) for t, r in rss if t >= WARM_UP * SECONDS]
    slope = slope_kib_per_minute(after_warm_up)
    first, last = after_warm_up[0][1], after_warm_up[-1][1]
    # Flat: what remains of growth after the warm-up stays within 10 % of the process's size.
    assert last <= first * 1.10, (first, last, slope)
    report(
        "soak",
        seconds=SECONDS,
        notifications=total,
        drops=drops,
        reconnects=sum(client.connections for client in clients) - len(clients),
        caught_up_after_seconds=round(caught_up_after, 2),
        rss_mib=f"{first / 1024:.1f} -> {last / 1024:.1f}",
        rss_slope_kib_per_minute=round(slope, 1),
        warnings=levels["WARNING"],
    )
