"""Nothing lost when Redis goes away, when a client stops reading, or when a channel overflows.

The Redis outage tests run on a ``redis-server`` this module owns (``own_redis``), never on the
shared one. Clients follow docs/protocol.md as a real client should: on any close they reconnect
with exponential backoff and sync from the newest id they hold, and they de-duplicate by id.
Each test prints what it measured (run with ``-s`` to see it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.test import override_settings
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from django_vendor_notifications import services
from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for
from tests.settings import channel_layer_config
from tests.testapp.models import Vendor

from .conftest import (
    AsgiServer,
    RedisServer,
    ServerKind,
    launch_server,
    receive_json,
    rss_kib,
    server_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

COUNT = 200
#: A reconnecting client's first and longest pause.
BACKOFF_START, BACKOFF_MAX = 0.1, 2.0
#: How long a test waits for clients to catch up once the publisher is done.
CATCH_UP = 30.0


@dataclass
class FollowingClient:
    """A client that follows the protocol: de-dup by id; on any close, reconnect with backoff
    and sync from the newest id held (again while has_more); keep applying live pushes."""

    server: AsgiServer
    token: str
    vendor_id: int
    ids: set[int] = field(default_factory=set)
    #: The newest id received live or through sync: where the next sync starts.
    cursor: int = 0
    #: How many frames carried each id: live pushes and sync replies (the unread snapshot of
    #: each connect repeats unread ids by design and is not counted).
    frames: Counter[int] = field(default_factory=Counter)
    #: new_notification frames repeating an id already pushed live on the same socket.
    live_repeats: int = 0
    connections: int = 0
    #: (close code or None, seconds from starting to connect until the close) per connection.
    closes: list[tuple[int | None, float]] = field(default_factory=list)
    #: The event-loop time of each of those closes.
    closed_at: list[float] = field(default_factory=list)
    #: The same for connections closed before their first frame: refused, not dropped.
    refusals: list[tuple[int | None, float]] = field(default_factory=list)
    served: bool = False
    #: Cleared: the client stops reading (its socket buffers fill, the server blocks).
    reading: asyncio.Event = field(default_factory=asyncio.Event)
    connect_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.reading.set()

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        delay = BACKOFF_START
        while not stop.is_set():
            started = loop.time()
            code: int | None = None
            self.served = False
            try:
                async with self.server.connect(self.token, **self.connect_options) as ws:
                    self.connections += 1
                    if await self.follow(ws, stop):
                        delay = BACKOFF_START
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else None
            except (OSError, TimeoutError, InvalidHandshake):
                code = None
            if stop.is_set():
                break
            self.closes.append((code, loop.time() - started))
            self.closed_at.append(loop.time())
            if not self.served:
                self.refusals.append(self.closes[-1])
            await asyncio.sleep(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    async def follow(self, ws: ClientConnection, stop: asyncio.Event) -> bool:
        """Read one connection until it closes or ``stop``; whether a sync was answered."""
        synced = False
        pushed_here: set[int] = set()
        first = await receive_json(ws, timeout=10)
        assert first["action"] == "unread_notifications", first
        self.served = True
        for items in first["notifications"].values():
            # The unread snapshot is capped (UNREAD_LIMIT): it never moves the cursor.
            self.take(items, snapshot=True)
        await self.send_sync(ws, self.cursor)
        while not stop.is_set():
            await self.reading.wait()
            try:
                frame = await receive_json(ws, timeout=0.5)
            except asyncio.TimeoutError:
                continue
            if frame["action"] == "new_notification":
                notification_id = frame["notification"]["id"]
                self.live_repeats += notification_id in pushed_here
                pushed_here.add(notification_id)
                self.take([frame["notification"]])
            elif frame["action"] == "sync":
                self.take(frame["notifications"])
                if frame["has_more"]:
                    await self.send_sync(ws, frame["notifications"][-1]["id"])
                synced = True
            else:
                assert frame["action"] == "unread_notifications", frame
        return synced

    def take(self, items: list[dict[str, Any]], snapshot: bool = False) -> None:
        for item in items:
            assert item["vendor"] == self.vendor_id, item
            self.ids.add(item["id"])
            if not snapshot:
                self.frames[item["id"]] += 1
                self.cursor = max(self.cursor, item["id"])

    async def send_sync(self, ws: ClientConnection, since_id: int) -> None:
        await ws.send(json.dumps({"action": "sync", "since_id": since_id}))

    @property
    def duplicate_frames(self) -> int:
        """Frames carrying an id the client already had (it drops them by id)."""
        return sum(count - 1 for count in self.frames.values())


PUBLISH = """
import sys, time
from django_vendor_notifications import services
message = "x" * {size}
for index in range({count}):
    started = time.monotonic()
    notification = services.notify({vendor}, message, context={{"index": index}})
    print(notification.pk, round(time.monotonic() - started, 3), flush=True)
    time.sleep({pause})
"""


@dataclass
class Publisher:
    """A worker process that creates COUNT notifications one by one, printing each id and how
    long its notify() took; read as it goes."""

    process: asyncio.subprocess.Process
    ids: list[int] = field(default_factory=list)
    #: Seconds each notify() took, in order.
    latencies: list[float] = field(default_factory=list)
    reader: asyncio.Future[None] | None = None
    count: int = COUNT

    @classmethod
    async def start(cls, server: AsgiServer, vendor: Vendor, *, size: int = 20,
                    pause: float = 0.02, count: int = COUNT) -> Publisher:
        code = PUBLISH.format(size=size, count=count, vendor=vendor.pk, pause=pause)
        publisher = cls(await server.start_python(code), count=count)
        publisher.reader = asyncio.ensure_future(publisher.read())
        return publisher

    async def read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            notification_id, seconds = line.split()
            self.ids.append(int(notification_id))
            self.latencies.append(float(seconds))

    async def published(self, count: int) -> None:
        """Wait until ``count`` notifications are created (committed, push attempted)."""
        deadline = time.monotonic() + 60
        while len(self.ids) < count:
            assert self.reader is not None and not self.reader.done(), "publisher exited"
            assert time.monotonic() < deadline, "publisher too slow"
            await asyncio.sleep(0.01)

    async def finish(self) -> str:
        """Wait for the process to end; its stderr (where its warnings go)."""
        assert self.process.stderr is not None and self.reader is not None
        stderr = (await asyncio.wait_for(self.process.stderr.read(), 60)).decode("utf-8", "replace")
        await self.reader
        assert await asyncio.wait_for(self.process.wait(), timeout=30) == 0, stderr
        assert len(self.ids) == self.count
        return stderr


async def until_caught_up(clients: list[FollowingClient], ids: set[int]) -> float:
    """Seconds until every client holds ``ids`` (at most CATCH_UP)."""
    started = time.monotonic()
    while time.monotonic() - started < CATCH_UP:
        if all(client.ids >= ids for client in clients):
            break
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def report(name: str, **figures: Any) -> None:
    print(f"\n[{name}] " + ", ".join(f"{key}={value}" for key, value in figures.items()))


def assert_exactly_once_by_id(
    clients: list[FollowingClient], ids: set[int], diagnosis: str = "", *, count: int = COUNT
) -> None:
    assert len(ids) == count
    for client in clients:
        missing, extra = ids - client.ids, client.ids - ids
        assert not missing and not extra, (sorted(missing)[:10], sorted(extra)[:10], diagnosis)
        # The server never pushes an id twice to one socket (its recent_ids).
        assert client.live_repeats == 0


# --- Redis stopped and restarted while 200 notifications are published ----------------------


@pytest.fixture(scope="module")
def server_on_own_redis(
    own_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    env = server_env("redis", redis_url=own_redis.url)
    server = launch_server(ServerKind("daphne", "redis"), env, tmp_path_factory.mktemp("faults"))
    try:
        yield server
    finally:
        server.stop()


async def test_clients_end_with_every_notification_once_across_a_redis_restart(
    server_on_own_redis: AsgiServer, own_redis: RedisServer, vendor: Vendor, staff: Any
) -> None:
    server = server_on_own_redis
    clients = [FollowingClient(server, access_token_for(user), vendor.pk)
               for user in (vendor.user, staff, vendor.user)]
    stop = asyncio.Event()
    running = [asyncio.ensure_future(client.run(stop)) for client in clients]
    try:
        await until_connected(clients)
        publisher = await Publisher.start(server, vendor)
        await publisher.published(60)
        own_redis.stop()
        stopped_at = len(publisher.ids)
        await asyncio.sleep(2)
        own_redis.start()
        restarted_at = len(publisher.ids)
        stderr = await publisher.finish()
        published_all = time.monotonic()
        recovery = await until_caught_up(clients, set(publisher.ids))
    finally:
        stop.set()
        await asyncio.gather(*running)

    diagnosis = "\n".join([
        f"published: {publisher.ids[0]}..{publisher.ids[-1]}, stopped at #{stopped_at}, "
        f"restarted at #{restarted_at}",
        *(f"client {index}: cursor={client.cursor} closes={client.closes}"
          for index, client in enumerate(clients)),
        "publisher stderr (tail):", *stderr.splitlines()[-15:],
        "server log (warnings, tail):",
        *[line for line in server.log().splitlines() if "WARNING" in line or "Error" in line][-30:],
    ])
    assert_exactly_once_by_id(clients, set(publisher.ids), diagnosis)
    # Every client lost its socket to the outage, was told 4013, and came back.
    for client in clients:
        assert client.connections >= 2
        assert 4013 in [code for code, _ in client.closes]
    # A connect while Redis is away is refused with 4013 within 5 s (a socket that was open
    # before is closed with 4013 too, after however long it lived).
    refused = [seconds for client in clients for code, seconds in client.refusals
               if code == 4013]
    assert refused and max(refused) < 5
    outage = publisher.latencies[stopped_at:restarted_at]
    assert outage and max(outage) < 5
    assert "Could not publish" in stderr
    report(
        "redis restart",
        published_while_down=restarted_at - stopped_at,
        notify_seconds_while_down=max(outage),
        connections=[client.connections for client in clients],
        close_codes=[[code for code, _ in client.closes] for client in clients],
        slowest_4013_seconds=round(max(refused), 2),
        duplicate_frames=[client.duplicate_frames for client in clients],
        caught_up_after_last_publish_seconds=round(recovery, 2),
        since_last_publish=round(time.monotonic() - published_all, 2),
    )


async def until_connected(clients: list[FollowingClient]) -> None:
    deadline = time.monotonic() + 10
    while not all(client.connections for client in clients):
        assert time.monotonic() < deadline, "clients did not connect"
        await asyncio.sleep(0.05)
    # The first frame and the (empty) sync reply are read promptly once connected.
    await asyncio.sleep(0.3)


# --- Redis unreachable: notify, connect, and the way back ------------------------------------


@database_sync_to_async
def notify_timed(vendor: Vendor, message: str) -> tuple[Notification, float]:
    started = time.monotonic()
    notification = services.notify(vendor, message)
    return notification, time.monotonic() - started


@database_sync_to_async
def row_exists(notification_id: int) -> bool:
    return Notification.objects.filter(pk=notification_id).exists()


async def connect_and_wait_for_close(server: AsgiServer, user: Any) -> tuple[int | None, float]:
    started = time.monotonic()
    async with server.connect(access_token_for(user)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                frame = await receive_json(ws, timeout=10)
                assert frame["action"] == "unread_notifications", frame
    code = closed.value.rcvd.code if closed.value.rcvd else None
    return code, time.monotonic() - started


async def test_redis_away_notify_saves_and_warns_connect_gets_4013_then_all_resumes(
    server_on_own_redis: AsgiServer, own_redis: RedisServer, vendor: Vendor,
    caplog: pytest.LogCaptureFixture,
) -> None:
    server = server_on_own_redis
    prefix = server.env["TEST_CHANNEL_LAYER_PREFIX"]
    layer = channel_layer_config("redis", prefix=prefix, url=own_redis.url)
    # An open socket from before the outage, following the protocol.
    survivor = FollowingClient(server, access_token_for(vendor.user), vendor.pk)
    stop = asyncio.Event()
    running = asyncio.ensure_future(survivor.run(stop))
    try:
        await until_connected([survivor])
        with override_settings(CHANNEL_LAYERS={"default": layer}):
            own_redis.stop()
            try:
                with caplog.at_level(logging.WARNING, "django_vendor_notifications"):
                    saved, notify_seconds = await notify_timed(vendor, "while Redis is away")
                code, close_seconds = await connect_and_wait_for_close(server, vendor.user)
            finally:
                own_redis.start()
            assert await row_exists(saved.pk)
            assert notify_seconds < 5
            assert any("Could not publish" in r.getMessage() for r in caplog.records)
            assert (code, close_seconds < 5) == (4013, True)

            # Back: a new socket on the same server process gets a live push.
            async with server.connect(access_token_for(vendor.user)) as ws:
                first = await receive_json(ws)
                assert saved.pk in [i["id"] for items in first["notifications"].values()
                                    for i in items]
                live, _ = await notify_timed(vendor, "after Redis is back")
                frame = await receive_json(ws)
        assert frame["notification"]["id"] == live.pk
        await until_caught_up([survivor], {saved.pk, live.pk})
    finally:
        stop.set()
        await running
    # The socket open during the outage was closed with 4013, came back and synced both.
    assert 4013 in [c for c, _ in survivor.closes]
    assert survivor.ids == {saved.pk, live.pk}
    report("redis away", notify_seconds=round(notify_seconds, 3),
           connect_to_4013_seconds=round(close_seconds, 3),
           survivor_closes=[c for c, _ in survivor.closes])


# --- a client that stops reading -------------------------------------------------------------

#: A vendor's busy spell while one of its clients has stopped reading (issue: 2,000).
SLOW_READER_COUNT = 2_000
SLOW_READER_FRAME = 8_000
#: The most a process may grow while that client does not read: well below the 16 MB of
#: frames it missed, which daphne buffered without backpressure (14.2 MiB of growth). The
#: socket holds its inbox (SOCKET_QUEUE_BYTES = 1 MiB) and Twisted's 64 KiB write buffer; the
#: rest is the process's own churn of 2,000 large frames (1.5-1.6 MiB on Python 3.11, 6.2 MiB
#: once on Python 3.13). That the socket stopped taking pushes is asserted by the overflow.
SLOW_READER_GROWTH_MIB = 10


@pytest.fixture(params=["daphne", "uvicorn"])
def server_logging_overflows(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
) -> Iterator[AsgiServer]:
    """A server with the default inbox bounds, logging at INFO, where the consumer reports the
    pushes it drops from a full inbox."""
    env = {**server_env("redis"), "TEST_LOG_LEVEL": "INFO"}
    server = launch_server(ServerKind(request.param, "redis"), env,
                           tmp_path_factory.mktemp("slow-reader"))
    try:
        yield server
    finally:
        server.stop()


async def sample_rss(pid: int, samples: list[int], every: float = 0.05) -> None:
    while True:
        samples.append(rss_kib(pid))
        await asyncio.sleep(every)


async def test_a_client_that_stops_reading_costs_a_bounded_amount_and_gets_everything_later(
    server_logging_overflows: AsgiServer, vendor: Vendor, staff: Any
) -> None:
    server = server_logging_overflows
    # A small receive queue, so the client's library stops reading from the TCP socket too.
    paused = FollowingClient(server, access_token_for(vendor.user), vendor.pk,
                             connect_options={"max_queue": 2})
    reader = FollowingClient(server, access_token_for(staff), vendor.pk)
    clients = [paused, reader]
    stop = asyncio.Event()
    running = [asyncio.ensure_future(client.run(stop)) for client in clients]
    rss: list[int] = []
    sampler: asyncio.Future[None] | None = None
    try:
        await until_connected(clients)
        paused.reading.clear()
        await asyncio.sleep(0.5)
        sampler = asyncio.ensure_future(sample_rss(server.process.pid, rss))
        await asyncio.sleep(0.2)
        publisher = await Publisher.start(server, vendor, size=SLOW_READER_FRAME, pause=0,
                                          count=SLOW_READER_COUNT)
        await publisher.finish()
        # The reading client has everything while the other still does not read.
        reader_caught_up = await until_caught_up([reader], set(publisher.ids))
        await asyncio.sleep(0.5)
        sampler.cancel()
        held_while_paused = len(paused.ids)
        paused.reading.set()
        recovery = await until_caught_up(clients, set(publisher.ids))
    finally:
        if sampler is not None:
            sampler.cancel()
        stop.set()
        await asyncio.gather(*running)

    growth_mib = (max(rss) - rss[0]) / 1024
    overflowed = "dropped its queued pushes" in server.log()
    report(f"stopped reading on {server.kind.name}", inbox_overflowed=overflowed,
           held_while_paused=held_while_paused, paused_connections=paused.connections,
           rss_mib=f"{rss[0] / 1024:.1f} -> peak {max(rss) / 1024:.1f}",
           reader_caught_up_seconds=round(reader_caught_up, 2),
           duplicate_frames=[client.duplicate_frames for client in clients],
           caught_up_seconds=round(recovery, 2))
    assert_exactly_once_by_id(clients, set(publisher.ids), count=SLOW_READER_COUNT)
    assert held_while_paused < SLOW_READER_COUNT
    # Both servers stop taking the socket's pushes while its client does not read (daphne
    # through backpressure.TransportGate): its inbox overflowed, and the pushes it dropped came
    # back from the database once it read again.
    assert overflowed
    assert growth_mib < SLOW_READER_GROWTH_MIB, (rss[0], max(rss))
