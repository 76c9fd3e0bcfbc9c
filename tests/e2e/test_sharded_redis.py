"""A channel layer sharded across two Redis servers, under two server processes.

channels-redis puts each group and each channel on one of its ``hosts`` by a hash of the name.
Vendors are picked so that both shards hold vendor groups; each vendor has a client on a daphne
and one on a uvicorn process. The publisher notifies every vendor while one shard is killed
(no persistence: it comes back empty) and restarted. Every client must end with every
notification of its vendor exactly once, recovering the way docs/protocol.md says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from channels_redis.utils import _consistent_hash

from django_vendor_notifications.conf import app_settings
from tests.conftest import access_token_for, make_user
from tests.testapp.models import Vendor

from .conftest import (
    AsgiServer,
    RedisServer,
    ServerKind,
    launch_server,
    server_env,
    unique_prefix,
)
from .test_faults import (
    COUNT,
    FollowingClient,
    Publisher,
    assert_exactly_once_by_id,
    report,
    until_caught_up,
    until_connected,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHARDS = 2
VENDORS_PER_SHARD = 2


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RedisServer]]:
    servers = [RedisServer(tmp_path_factory.mktemp(f"shard-{index}")) for index in range(SHARDS)]
    for server in servers:
        server.start()
    try:
        yield servers
    finally:
        for server in servers:
            if server.process is not None:
                server.stop()


@pytest.fixture
def sharded_servers(
    shards: list[RedisServer], tmp_path: Path, django_db_setup: None
) -> Iterator[list[AsgiServer]]:
    env = {**server_env("redis", prefix=unique_prefix(), redis_urls=[s.url for s in shards]),
           "TEST_LOG_LEVEL": "INFO"}
    servers: list[AsgiServer] = []
    try:
        for name in ("daphne", "uvicorn"):
            servers.append(launch_server(ServerKind(name, "redis"), env, tmp_path))
        yield servers
    finally:
        for server in servers:
            server.stop()


def shard_of(vendor_id: int) -> int:
    group = app_settings.VENDOR_GROUP.format(vendor_id=vendor_id)
    return _consistent_hash(group, SHARDS)


@database_sync_to_async
def vendors_on_every_shard() -> list[Vendor]:
    """Vendors whose groups land VENDORS_PER_SHARD on each shard."""
    chosen: dict[int, list[Vendor]] = {shard: [] for shard in range(SHARDS)}
    while any(len(vendors) < VENDORS_PER_SHARD for vendors in chosen.values()):
        vendor = Vendor.objects.create(user=make_user(), name="Sharded")
        on = chosen[shard_of(vendor.pk)]
        if len(on) < VENDORS_PER_SHARD:
            on.append(vendor)
        else:
            vendor.delete()
    return [vendor for vendors in chosen.values() for vendor in vendors]


async def test_two_shards_deliver_once_and_recover_from_one_shard_restarting(
    shards: list[RedisServer], sharded_servers: list[AsgiServer]
) -> None:
    vendors = await vendors_on_every_shard()
    clients = {
        vendor.pk: [FollowingClient(server, access_token_for(vendor.user), vendor.pk)
                    for server in sharded_servers]
        for vendor in vendors
    }
    everyone = [client for pair in clients.values() for client in pair]
    stop = asyncio.Event()
    running = [asyncio.ensure_future(client.run(stop)) for client in everyone]
    try:
        await until_connected(everyone)
        publishers = {vendor.pk: await Publisher.start(sharded_servers[0], vendor)
                      for vendor in vendors}
        await asyncio.gather(*(p.published(COUNT // 3) for p in publishers.values()))
        # Both shards up: every socket has what was published so far, live, with no reconnect.
        for vendor_id, publisher in publishers.items():
            await until_caught_up(clients[vendor_id], set(publisher.ids[: COUNT // 3]))
        held_live = all(client.ids >= set(publishers[client.vendor_id].ids[: COUNT // 3])
                        for client in everyone)
        closes_before_restart = sum(len(client.closes) for client in everyone)
        shards[0].stop()
        stopped_at = time.monotonic()
        await asyncio.sleep(2)
        shards[0].start()
        for publisher in publishers.values():
            await publisher.finish()
        recovery = 0.0
        for vendor_id, publisher in publishers.items():
            recovery = max(recovery, await until_caught_up(clients[vendor_id], set(publisher.ids)))
    finally:
        stop.set()
        await asyncio.gather(*running)

    for vendor_id, publisher in publishers.items():
        diagnosis = "\n".join([
            f"vendor {vendor_id} on shard {shard_of(vendor_id)}",
            *(f"{client.server.kind}: held {len(client.ids)}, cursor {client.cursor}, "
              f"closes {client.closes}" for client in clients[vendor_id]),
            # What the servers logged besides their access lines (TEST_LOG_LEVEL=INFO).
            *(line for server in sharded_servers for line in server.log().splitlines()
              if "WebSocket" not in line and "WSCONN" not in line and "WSDISCONN" not in line
              and "connection " not in line),
        ])
        assert_exactly_once_by_id(clients[vendor_id], set(publisher.ids), diagnosis)
    assert held_live and closes_before_restart == 0
    # The restart was noticed. A process whose channels are received on the restarted shard
    # (channels-redis picks it by a hash of the process's random prefix) closes its sockets
    # with 4013; one that receives on the other shard hears it from the canary and heals.
    codes = [code for client in everyone for code, _ in client.closes]
    healed = [server.kind.name for server in sharded_servers
              if "lost or could not deliver a probe" in server.log()]
    assert 4013 in codes or healed, (codes, healed)
    report(
        "sharded redis",
        vendors_per_shard=VENDORS_PER_SHARD,
        notifications=sum(len(p.ids) for p in publishers.values()),
        reconnects=sum(client.connections - 1 for client in everyone),
        close_codes=sorted(set(code for code in codes if code is not None)),
        healed_by_the_canary=healed,
        caught_up_after_restart_seconds=round(time.monotonic() - stopped_at, 2),
        caught_up_after_last_publish_seconds=round(recovery, 2),
    )
