"""Several processes on one Redis: two servers (daphne and uvicorn) and a third that publishes.

Each deployment runs daphne and uvicorn (per-message-deflate off) on the same channel layer and
Redis prefix, once with channels-redis's RedisChannelLayer and once with its
RedisPubSubChannelLayer. Notifications come from a third process (the send_notification command,
or plain Python calling the services, as a worker or cron job would), and real ``websockets``
clients on both servers check who receives what, and how often. The servers run with
SYNC_LIMIT = 3, so ``has_more`` shows with a handful of rows, and (core layer) with a
group_expiry of 3 seconds, so a socket outlives its group membership within a test.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels_redis.core import RedisChannelLayer
from websockets.asyncio.client import ClientConnection

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for
from tests.settings import channel_layer_config
from tests.testapp.models import Vendor

from .conftest import (
    AsgiServer,
    ServerKind,
    assert_silent,
    launch_server,
    receive_json,
    server_env,
    unique_prefix,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SYNC_LIMIT = 3
GROUP_EXPIRY = 3
ITEM_KEYS = {"id", "vendor", "category", "message", "context_data", "is_read", "readed_at",
             "created_at"}


@dataclass
class Deployment:
    """Two server processes sharing one channel layer, and how to run a worker next to them."""

    channel_layer: str
    prefix: str
    servers: list[AsgiServer]

    @property
    def daphne(self) -> AsgiServer:
        return self.servers[0]

    @property
    def uvicorn(self) -> AsgiServer:
        return self.servers[1]


@pytest.fixture(scope="module", params=["redis", "redis-pubsub"])
def deployment(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
) -> Iterator[Deployment]:
    channel_layer: str = request.param
    prefix = unique_prefix()
    # The pub/sub layer keeps no group membership in Redis, so it has no group_expiry.
    layer_config = {"group_expiry": GROUP_EXPIRY} if channel_layer == "redis" else None
    env = server_env(channel_layer, prefix=prefix, layer_config=layer_config,
                     vendor_settings={"SYNC_LIMIT": SYNC_LIMIT})
    log_dir = tmp_path_factory.mktemp("deployment")
    servers: list[AsgiServer] = []
    try:
        for name in ("daphne", "uvicorn"):
            servers.append(launch_server(ServerKind(name, channel_layer), env, log_dir))
        yield Deployment(channel_layer, prefix, servers)
    finally:
        for server in servers:
            server.stop()


@pytest.fixture
async def sockets() -> AsyncIterator[Any]:
    """open(server, user, since=None): a connected socket whose first frame has been read."""
    async with AsyncExitStack() as stack:

        async def open_socket(
            server: AsgiServer, user: Any, since: int | None = None
        ) -> ClientConnection:
            ws = await stack.enter_async_context(
                server.connect(access_token_for(user), since=since)
            )
            first = await receive_json(ws)
            assert first["action"] == "unread_notifications", first
            return ws

        yield open_socket


async def receive_exactly(ws: ClientConnection, count: int) -> list[dict[str, Any]]:
    return [await receive_json(ws) for _ in range(count)]


def pushed(frames: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    """(id, vendor) of each new_notification frame."""
    assert all(frame["action"] == "new_notification" for frame in frames), frames
    return sorted((f["notification"]["id"], f["notification"]["vendor"]) for f in frames)


# --- 1. across processes -------------------------------------------------------------------

PUBLISH_FROM_A_WORKER = """
import json
from django_vendor_notifications import services
a, b = {a}, {b}
single = services.notify(a, "from a worker", category="Orders", context={{"order": 9}})
two = services.notify_many([a, b], "to two vendors", category="Payouts")
everyone = services.notify_many(None, "to every vendor")
print(json.dumps({{
    "single": single.pk,
    "two": {{str(n.vendor_id): n.pk for n in two}},
    "everyone": {{str(n.vendor_id): n.pk for n in everyone}},
}}))
"""


async def test_notifications_from_a_third_process_reach_each_entitled_socket_once(
    deployment: Deployment, sockets: Any, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    mine = [await sockets(server, user) for server in deployment.servers
            for user in (vendor.user, staff)]
    theirs = [await sockets(server, other_vendor.user) for server in deployment.servers]

    stdout = await deployment.daphne.run_django(
        "send_notification", "--vendor", str(vendor.pk), "--message", "Order #7 was paid.",
        "--category", "Orders",
    )
    command_id = int(stdout.strip())

    for ws in mine:
        [frame] = await receive_exactly(ws, 1)
        assert pushed([frame]) == [(command_id, vendor.pk)]
        assert set(frame["notification"]) == ITEM_KEYS
    await assert_silent(*mine, *theirs)

    ids = json.loads(await deployment.uvicorn.run_python(
        PUBLISH_FROM_A_WORKER.format(a=vendor.pk, b=other_vendor.pk)
    ))

    a, b = str(vendor.pk), str(other_vendor.pk)
    # Each socket gets its own vendor's frame of a bulk notification, with that vendor's id.
    expected_mine = sorted([(ids["single"], vendor.pk), (ids["two"][a], vendor.pk),
                            (ids["everyone"][a], vendor.pk)])
    expected_theirs = sorted([(ids["two"][b], other_vendor.pk),
                              (ids["everyone"][b], other_vendor.pk)])
    for ws in mine:
        assert pushed(await receive_exactly(ws, 3)) == expected_mine
    for ws in theirs:
        assert pushed(await receive_exactly(ws, 2)) == expected_theirs
    # Exactly once: nothing more on any socket.
    await assert_silent(*mine, *theirs)
    assert set(ids["everyone"]) == {a, b}


# --- 2. recovery ---------------------------------------------------------------------------


@database_sync_to_async
def create_rows(vendor: Vendor, other_vendor: Vendor, count: int) -> list[int]:
    """``count`` committed rows for ``vendor`` that nobody was told about, interleaved with rows
    of ``other_vendor``; the vendor's ids, oldest first."""
    ids = []
    for index in range(count):
        category = ("Orders", "Payouts")[index % 2]
        ids.append(Notification.objects.create(vendor=vendor, message=f"n{index}",
                                               category=category).pk)
        Notification.objects.create(vendor=other_vendor, message=f"not mine {index}")
    return ids


async def sync(ws: ClientConnection, since_id: int, request_id: Any = None) -> dict[str, Any]:
    message: dict[str, Any] = {"action": "sync", "since_id": since_id}
    if request_id is not None:
        message["request_id"] = request_id
    await ws.send(json.dumps(message))
    return await receive_json(ws)


def item_ids(frame: dict[str, Any]) -> list[int]:
    return [item["id"] for item in frame["notifications"]]


async def sync_all(ws: ClientConnection, since_id: int) -> list[dict[str, Any]]:
    """Sync until has_more is false, as a client does; every reply."""
    replies = [await sync(ws, since_id)]
    while replies[-1]["has_more"]:
        replies.append(await sync(ws, replies[-1]["notifications"][-1]["id"]))
    return replies


async def test_sync_returns_everything_after_an_id_oldest_first_in_pages(
    deployment: Deployment, sockets: Any, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    ids = await create_rows(vendor, other_vendor, 7)

    # ?since=0 on the URL: the whole history, answered right after the first frame.
    on_daphne = await sockets(deployment.daphne, vendor.user, since=0)
    first_page = await receive_json(on_daphne)
    assert first_page["action"] == "sync"
    assert first_page["since_id"] == 0
    assert item_ids(first_page) == ids[:SYNC_LIMIT]
    assert first_page["has_more"] is True
    for item in first_page["notifications"]:
        assert set(item) == ITEM_KEYS
        assert item["vendor"] == vendor.pk
    assert [item["category"] for item in first_page["notifications"]] == [
        "Orders", "Payouts", "Orders"]

    rest = await sync_all(on_daphne, ids[SYNC_LIMIT - 1])
    assert [item_ids(reply) for reply in rest] == [ids[3:6], ids[6:]]
    assert [reply["has_more"] for reply in rest] == [True, False]
    assert await sync(on_daphne, ids[-1], request_id="up-to-date") == {
        "action": "sync", "since_id": ids[-1], "notifications": [], "has_more": False,
        "request_id": "up-to-date"}

    # The other server, another user of the vendor: the same answers, by id.
    on_uvicorn = await sockets(deployment.uvicorn, staff, since=ids[4])
    tail = await receive_json(on_uvicorn)
    assert (item_ids(tail), tail["has_more"]) == (ids[5:], False)
    replies = await sync_all(on_uvicorn, 0)
    assert [i for reply in replies for i in item_ids(reply)] == ids
    await assert_silent(on_daphne, on_uvicorn)


async def test_since_parameter_that_is_not_an_id_gets_an_error_frame(
    deployment: Deployment, sockets: Any, vendor: Vendor
) -> None:
    ws = await sockets(deployment.uvicorn, vendor.user, since=-1)
    error = await receive_json(ws)
    assert error["action"] == "error"
    assert error["error"] == "invalid_field"
    # The socket stays usable.
    assert (await sync(ws, 0))["notifications"] == []


# --- 5. read state -------------------------------------------------------------------------


@database_sync_to_async
def create_unread(vendor: Vendor, count: int) -> list[int]:
    return [Notification.objects.create(vendor=vendor, message=f"unread {i}").pk
            for i in range(count)]


async def mark_read(ws: ClientConnection, notification_id: int) -> dict[str, Any]:
    await ws.send(json.dumps({"action": "mark_read", "notification_id": notification_id,
                              "request_id": f"read-{notification_id}"}))
    return await receive_json(ws)


async def test_mark_read_is_pushed_to_every_other_socket_of_the_vendor(
    deployment: Deployment, sockets: Any, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    first, second = await create_unread(vendor, 2)
    sender = await sockets(deployment.daphne, vendor.user)
    second_tab = await sockets(deployment.daphne, vendor.user)
    staff_elsewhere = await sockets(deployment.uvicorn, staff)
    owner_elsewhere = await sockets(deployment.uvicorn, vendor.user)
    other = await sockets(deployment.uvicorn, other_vendor.user)
    others = [second_tab, staff_elsewhere, owner_elsewhere]

    reply = await mark_read(sender, first)

    assert reply == {"action": "mark_read", "notification_id": first, "status": "success",
                     "request_id": f"read-{first}"}
    for ws in others:
        assert await receive_json(ws) == {"action": "notification_read",
                                          "notification_id": first, "unread_total": 1}
    await assert_silent(sender, *others, other)

    # From a socket on the other server: the first server's sockets hear of it.
    assert (await mark_read(staff_elsewhere, second))["status"] == "success"
    for ws in (sender, second_tab, owner_elsewhere):
        assert await receive_json(ws) == {"action": "notification_read",
                                          "notification_id": second, "unread_total": 0}
    await assert_silent(sender, *others, other)

    # Marking a read notification again changes nothing, so nobody is told.
    assert (await mark_read(second_tab, first))["status"] == "success"
    await assert_silent(sender, *others, other)


# --- 4. sockets older than group_expiry ----------------------------------------------------


async def test_socket_keeps_receiving_after_its_group_membership_would_expire(
    deployment: Deployment, sockets: Any, vendor: Vendor
) -> None:
    if deployment.channel_layer != "redis":
        pytest.skip("the pub/sub layer keeps no group membership that could expire")
    socket_on = [await sockets(server, vendor.user) for server in deployment.servers]
    # A channel that joins the vendor's group once, as a consumer without re-joining would.
    config = channel_layer_config("redis", prefix=deployment.prefix, group_expiry=GROUP_EXPIRY)
    layer = RedisChannelLayer(**config["CONFIG"])
    group = f"vendor_notifications_{vendor.pk}"
    bystander = await layer.new_channel()
    await layer.group_add(group, bystander)
    # Receiving from the start: cancelling a receive while redis-py opens its connection can
    # be lost on Python 3.11, so the connection is open long before the cancel below.
    receiving = asyncio.ensure_future(layer.receive(bystander))
    try:
        await asyncio.sleep(GROUP_EXPIRY * 1.5)

        stdout = await deployment.daphne.run_django(
            "send_notification", "--vendor", str(vendor.pk), "--message", "still there?")

        for ws in socket_on:
            assert pushed([await receive_json(ws)]) == [(int(stdout), vendor.pk)]
        # The membership really expired: the channel that never re-joined got nothing.
        done, _ = await asyncio.wait([receiving], timeout=1)
        assert not done, receiving.result()
    finally:
        receiving.cancel()
        # Only what this test added; the servers' keys under the prefix stay.
        await layer.group_discard(group, bystander)
        await layer.close_pools()
