"""Delivery over a real Redis channel layer, seen by consumers through WebsocketCommunicator.

Each test runs with channels-redis's RedisChannelLayer and RedisPubSubChannelLayer on REDIS_URL,
under a prefix of its own, so concurrent runs on one Redis never see each other's messages.
Rows must be committed for on_commit to fire and for the consumer's worker thread to see them,
hence ``transaction=True``.
"""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from redis.asyncio import Connection as RedisConnection
from redis.asyncio import Redis
from redis.exceptions import TimeoutError as RedisTimeoutError

from django_vendor_notifications import delivery, hub, payloads, services, timers
from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for, communicator_for, make_user, vendor_settings
from tests.settings import channel_layer_config
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db(transaction=True)

REDIS_LAYERS = ["redis", "redis-pubsub"]
#: Every key of an item on the wire: the spec's keys plus the category it is grouped by.
ITEM_KEYS = {"id", "vendor", "category", "message", "context_data", "is_read", "readed_at",
             "created_at"}
CREATED_AT = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$")
#: Long enough for a frame to cross Redis; what has not arrived by then is not coming.
SILENCE = 0.3


def unique_prefix() -> str:
    return f"vn-delivery-{uuid.uuid4().hex[:12]}"


async def close_layer() -> None:
    """Delete this test's Redis keys (core layer) or close its subscriptions (pub/sub)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.flush()


@pytest.fixture(params=REDIS_LAYERS)
async def redis_layer(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    """Run the test on a Redis channel layer configured as tests/settings.py configures it."""
    config = channel_layer_config(request.param, prefix=unique_prefix())
    with override_settings(CHANNEL_LAYERS={"default": config}):
        yield request.param
        await close_layer()


async def open_socket(user: Any) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """A connected socket for ``user`` and its first frame."""
    communicator = communicator_for(access_token_for(user))
    connected, _ = await communicator.connect(timeout=5)
    assert connected
    first = await communicator.receive_json_from(timeout=5)
    assert first["action"] == "unread_notifications"
    return communicator, first


async def all_silent(communicators: list[WebsocketCommunicator]) -> bool:
    results = await asyncio.gather(*(c.receive_nothing(timeout=SILENCE) for c in communicators))
    return all(results)


async def assert_silent(*communicators: WebsocketCommunicator) -> None:
    assert await all_silent(list(communicators)), "a socket received a frame it should not have"


async def disconnect(*communicators: WebsocketCommunicator) -> None:
    # Together: a disconnect can wait up to a second for the consumer to finish.
    await asyncio.gather(*(c.disconnect() for c in communicators))


notify = database_sync_to_async(services.notify)
reload_unread = database_sync_to_async(services.reload_unread)


@database_sync_to_async
def create_silently(vendor: Vendor, message: str) -> Notification:
    """A committed row that nobody was told about."""
    return Notification.objects.create(vendor=vendor, message=message)


@database_sync_to_async
def notify_in_transaction(
    vendor: Vendor, sockets: list[WebsocketCommunicator], *, roll_back: bool
) -> tuple[Notification, bool]:
    """notify() inside atomic(); returns the row and whether the sockets stayed silent until
    the block ended."""
    with transaction.atomic():
        notification = services.notify(vendor, "inside a transaction", category="Orders")
        # Runs on the test's event loop, where the consumers live, while the transaction is
        # still open in this thread.
        silent_before_commit = async_to_sync(all_silent)(sockets)
        if roll_back:
            transaction.set_rollback(True)
    return notification, silent_before_commit


@database_sync_to_async
def row_exists(notification_id: int) -> bool:
    return Notification.objects.filter(pk=notification_id).exists()


async def test_notify_in_a_transaction_is_pushed_once_after_commit_to_owner_and_staff(
    redis_layer: str, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    owner_socket, _ = await open_socket(vendor.user)
    staff_socket, _ = await open_socket(staff)
    other_socket, _ = await open_socket(other_vendor.user)

    notification, silent_before_commit = await notify_in_transaction(
        vendor, [owner_socket, staff_socket, other_socket], roll_back=False
    )

    assert silent_before_commit
    for socket in (owner_socket, staff_socket):
        frame = await socket.receive_json_from(timeout=5)
        assert frame["action"] == "new_notification"
        assert frame["notification"]["id"] == notification.pk
    # Exactly once each, and nothing for the other vendor.
    await assert_silent(owner_socket, staff_socket, other_socket)
    await disconnect(owner_socket, staff_socket, other_socket)


async def test_rolled_back_notification_is_never_pushed(
    redis_layer: str, vendor: Vendor, staff: Any
) -> None:
    owner_socket, _ = await open_socket(vendor.user)
    staff_socket, _ = await open_socket(staff)

    notification, silent_before_commit = await notify_in_transaction(
        vendor, [owner_socket, staff_socket], roll_back=True
    )

    assert silent_before_commit
    assert not await row_exists(notification.pk)
    await assert_silent(owner_socket, staff_socket)
    await disconnect(owner_socket, staff_socket)


async def test_new_notification_frame_carries_every_spec_key(
    redis_layer: str, vendor: Vendor
) -> None:
    socket, _ = await open_socket(vendor.user)
    context = {"order_id": 123, "note": "größer"}

    notification = await notify(vendor, "Order #123 has been placed.", category="Orders",
                                context=context)

    frame = await socket.receive_json_from(timeout=5)
    assert set(frame) == {"action", "notification"}
    assert frame["action"] == "new_notification"
    item = frame["notification"]
    assert set(item) == ITEM_KEYS
    assert item["id"] == notification.pk
    assert item["vendor"] == vendor.pk
    assert item["category"] == "Orders"
    assert item["message"] == "Order #123 has been placed."
    assert json.loads(item["context_data"]) == context
    assert item["is_read"] is False
    assert item["readed_at"] is None
    assert CREATED_AT.match(item["created_at"])
    await disconnect(socket)


async def test_reload_unread_resends_the_vendors_unread_frame(
    redis_layer: str, vendor: Vendor, other_vendor: Vendor
) -> None:
    socket, first = await open_socket(vendor.user)
    other_socket, _ = await open_socket(other_vendor.user)
    assert first["notifications"] == {}
    notification = await create_silently(vendor, "created without a push")

    assert await reload_unread(vendor)

    frame = await socket.receive_json_from(timeout=5)
    assert frame["action"] == "unread_notifications"
    [item] = frame["notifications"]["General Notifications"]
    assert item["id"] == notification.pk
    await assert_silent(socket, other_socket)
    await disconnect(socket, other_socket)


async def test_reload_event_on_the_broadcast_group_reloads_every_socket(
    redis_layer: str, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    sockets = [(await open_socket(user))[0] for user in (vendor.user, staff, other_vendor.user)]
    mine = await create_silently(vendor, "for vendor A")
    theirs = await create_silently(other_vendor, "for vendor B")

    # What a host sends from anywhere, as the spec describes: a plain channel-layer event.
    await get_channel_layer().group_send(
        "all_notifications", {"type": "reload_unread_notifications"}
    )

    frames = [await socket.receive_json_from(timeout=5) for socket in sockets]
    ids = [
        [item["id"] for items in frame["notifications"].values() for item in items]
        for frame in frames
    ]
    assert all(frame["action"] == "unread_notifications" for frame in frames)
    assert ids == [[mine.pk], [mine.pk], [theirs.pk]]
    await assert_silent(*sockets)
    await disconnect(*sockets)


# --- idle sockets ------------------------------------------------------------------------
#
# RedisChannelLayer.receive() blocks in BZPOPMIN for brpop_timeout (5 s) at a time. redis-py 8
# reads every reply with a 5 s socket_timeout by default, so on an idle channel the client
# usually times out before Redis answers and receive() raises TimeoutError (redis-py issue 4091).
# tests/settings.py raises socket_timeout; this test stays idle past that point, then pushes.

IDLE = 7.5


def redis_default_socket_timeout() -> float | None:
    """What redis-py uses when a host sets no socket_timeout (building a connection is free)."""
    default = RedisConnection().socket_timeout
    return None if default is None else float(default)


async def idle_then_push(layer: Any) -> Any:
    """Receive on a fresh channel that stays idle for IDLE seconds, then push to it."""
    channel = await layer.new_channel()
    await layer.group_add("idle", channel)
    receiving = asyncio.ensure_future(layer.receive(channel))
    try:
        # Returns early only if receive() fails while idle.
        await asyncio.wait([receiving], timeout=IDLE)
        await layer.group_send("idle", {"type": "ping"})
        return await asyncio.wait_for(receiving, timeout=5)
    finally:
        await layer.flush()


async def idle_socket_then_notify(vendor: Vendor) -> int:
    """A consumer's socket stays idle for IDLE seconds, then gets a push; the pushed id."""
    socket, _ = await open_socket(vendor.user)
    try:
        assert await socket.receive_nothing(timeout=IDLE)
        notification = await notify(vendor, "after a quiet while")
        frame = await socket.receive_json_from(timeout=5)
    finally:
        await disconnect(socket)
    assert frame["notification"]["id"] == notification.pk
    return int(notification.pk)


@pytest.fixture
async def core_redis_layer() -> AsyncIterator[None]:
    config = channel_layer_config("redis", prefix=unique_prefix())
    with override_settings(CHANNEL_LAYERS={"default": config}):
        yield
        await close_layer()


async def test_idle_receive_dies_on_redis_py_defaults_and_survives_with_the_settings(
    core_redis_layer: None, vendor: Vendor
) -> None:
    redis_url = settings.REDIS_URL
    configured = channel_layer_config("redis", prefix=unique_prefix())["CONFIG"]
    pubsub_configured = channel_layer_config("redis-pubsub", prefix=unique_prefix())["CONFIG"]
    [host] = configured["hosts"]
    assert host["address"] == redis_url
    assert host["socket_timeout"] > RedisChannelLayer.brpop_timeout
    on_defaults = RedisChannelLayer(hosts=[{"address": redis_url}], prefix=unique_prefix())
    default_timeout = redis_default_socket_timeout()
    # The trap exists when redis-py's read timeout is not above channels-redis's block. At 5 s
    # against 5 s, which fires first (Redis's empty reply or the read timeout) is a race that
    # Redis usually loses, so this layer blocks a second longer to show the trap every time;
    # the configured layer keeps channels-redis's own 5 s block.
    shows_the_trap = (
        default_timeout is not None and default_timeout <= RedisChannelLayer.brpop_timeout
    )
    if shows_the_trap:
        on_defaults.brpop_timeout = default_timeout + 1
    layers = [
        on_defaults,
        RedisChannelLayer(**configured),
        RedisPubSubChannelLayer(**pubsub_configured),
    ]

    # Everything idles at once, so the proof costs IDLE seconds once: bare layers on redis-py's
    # defaults and on the settings' config, and a consumer on the settings' core Redis layer
    # (the pub/sub layer polls every 0.1 s, so only the core layer blocks in Redis).
    default_result, configured_result, pubsub_result, pushed = await asyncio.gather(
        *(idle_then_push(layer) for layer in layers),
        idle_socket_then_notify(vendor),
        return_exceptions=True,
    )

    assert configured_result == {"type": "ping"}
    assert pubsub_result == {"type": "ping"}
    assert isinstance(pushed, int), pushed
    if shows_the_trap:
        # Without the setting, an idle receive that blocks past the read timeout dies.
        assert isinstance(default_result, RedisTimeoutError), default_result
    else:
        assert default_result == {"type": "ping"}


# --- pushes a socket never got: gap repair and catch-up ---------------------------------------


async def publish_push(
    notification: Notification, previous_id: int, *, sent_seconds_ago: float = 0.0
) -> None:
    """The push notify() sends for ``notification``, as if published ``sent_seconds_ago``."""
    row = {name: getattr(notification, name) for name in payloads.ITEM_FIELDS}
    event = delivery.push_event(
        payloads.encode(payloads.new_notification_frame(row)),
        notification_id=notification.pk,
        previous_id=previous_id,
    )
    event["sent_at"] -= sent_seconds_ago
    await get_channel_layer().group_send(delivery.vendor_group(notification.vendor_id), event)


async def received_ids(socket: WebsocketCommunicator, count: int) -> list[int]:
    frames = [await socket.receive_json_from(timeout=5) for _ in range(count)]
    assert {frame["action"] for frame in frames} == {"new_notification"}
    return [frame["notification"]["id"] for frame in frames]


async def test_a_push_after_a_dropped_one_brings_the_missing_one_first(
    redis_layer: str, vendor: Vendor
) -> None:
    socket, _ = await open_socket(vendor.user)
    dropped = await create_silently(vendor, "its push was dropped by a full channel")
    latest = await create_silently(vendor, "its push arrives")

    await publish_push(latest, previous_id=dropped.pk)

    assert await received_ids(socket, 2) == [dropped.pk, latest.pk]
    await assert_silent(socket)
    await disconnect(socket)


async def test_a_late_push_makes_the_socket_catch_up_on_dropped_newer_ones(
    redis_layer: str, vendor: Vendor
) -> None:
    socket, _ = await open_socket(vendor.user)
    late = await create_silently(vendor, "waited behind a backlog")
    dropped = await create_silently(vendor, "the newest push, dropped: nothing comes after it")

    await publish_push(late, previous_id=0, sent_seconds_ago=hub.LATE_EVENT + 1)

    assert await received_ids(socket, 1) == [late.pk]
    # Once the socket has kept up for CATCH_UP_AFTER, it fills the gap from the database.
    frame = await socket.receive_json_from(timeout=timers.CATCH_UP_AFTER + 5)
    assert frame["notification"]["id"] == dropped.pk
    await assert_silent(socket)
    await disconnect(socket)


async def test_a_timely_push_costs_no_catch_up(redis_layer: str, vendor: Vendor) -> None:
    socket, _ = await open_socket(vendor.user)
    timely = await create_silently(vendor, "arrives at once")
    unannounced = await create_silently(vendor, "never pushed: sync finds it, not a catch-up")

    await publish_push(timely, previous_id=0)

    assert await received_ids(socket, 1) == [timely.pk]
    assert await socket.receive_nothing(timeout=timers.CATCH_UP_AFTER + 1)
    assert unannounced.pk > timely.pk
    await disconnect(socket)


# --- notify_many: one bulk insert, one broadcast, each vendor its own frame -------------------


@database_sync_to_async
def notify_many_counting_inserts(
    vendors: list[Vendor] | None, message: str
) -> tuple[list[Notification], int]:
    with CaptureQueriesContext(connection) as queries:
        notifications = services.notify_many(vendors, message, category="Payouts")
    inserts = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("INSERT")]
    return notifications, len(inserts)


async def test_notify_many_inserts_once_and_each_vendor_gets_its_own_frame(
    redis_layer: str, vendor: Vendor, other_vendor: Vendor, staff: Any
) -> None:
    third = await database_sync_to_async(Vendor.objects.create)(
        user=await database_sync_to_async(make_user)(), name="not addressed"
    )
    owner_socket, _ = await open_socket(vendor.user)
    staff_socket, _ = await open_socket(staff)
    other_socket, _ = await open_socket(other_vendor.user)
    third_socket, _ = await open_socket(third.user)

    notifications, inserts = await notify_many_counting_inserts([vendor, other_vendor], "payday")

    assert inserts == 1
    expected = {n.vendor_id: n.pk for n in notifications}
    for socket, owner in ((owner_socket, vendor), (staff_socket, vendor),
                          (other_socket, other_vendor)):
        frame = await socket.receive_json_from(timeout=5)
        item = frame["notification"]
        assert (frame["action"], item["id"], item["vendor"]) == (
            "new_notification", expected[owner.pk], owner.pk)
        assert (item["category"], item["message"]) == ("Payouts", "payday")
    await assert_silent(owner_socket, staff_socket, other_socket, third_socket)
    await disconnect(owner_socket, staff_socket, other_socket, third_socket)


async def test_notify_many_to_every_vendor_reaches_each_once(
    redis_layer: str, vendor: Vendor, other_vendor: Vendor
) -> None:
    sockets = [(await open_socket(vendor.user))[0], (await open_socket(other_vendor.user))[0]]

    notifications, inserts = await notify_many_counting_inserts(None, "to everyone")

    assert inserts == 1
    ids = {n.vendor_id: n.pk for n in notifications}
    assert set(ids) >= {vendor.pk, other_vendor.pk}
    for socket, owner in zip(sockets, (vendor, other_vendor), strict=True):
        frame = await socket.receive_json_from(timeout=5)
        assert frame["notification"]["id"] == ids[owner.pk]
    await assert_silent(*sockets)
    await disconnect(*sockets)


# --- Redis forgets the groups: the watchdog's probe -------------------------------------------


async def forget_everything(prefix: str) -> int:
    """Delete this test's keys, as a Redis restarted without persistence would have."""
    client = Redis.from_url(settings.REDIS_URL)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
        return await client.delete(*keys) if keys else 0
    finally:
        await client.aclose()


async def test_sockets_rejoin_and_catch_up_when_redis_forgets_their_groups(
    vendor: Vendor,
) -> None:
    prefix = unique_prefix()
    config = channel_layer_config("redis", prefix=prefix)
    with override_settings(CHANNEL_LAYERS={"default": config}), vendor_settings(
        LAYER_CHECK_INTERVAL=0.2, GROUP_LINGER=0.1
    ):
        sockets = [(await open_socket(user))[0] for user in (vendor.user, vendor.user)]
        await asyncio.sleep(0.5)  # the watchdog's canary has joined its group
        process_hub = hub.hub_for(get_channel_layer())
        dog = process_hub.probe
        assert dog.misses == 0

        assert await forget_everything(prefix) > 0
        # Published while the layer has forgotten every group: nobody receives it live.
        missed = await notify(vendor, "pushed into a group Redis no longer has")

        for socket in sockets:
            frame = await socket.receive_json_from(timeout=5)
            assert frame["notification"]["id"] == missed.pk
        assert dog.misses == 1
        # Joined again: the next one arrives live, once.
        live = await notify(vendor, "after the re-join")
        for socket in sockets:
            frame = await socket.receive_json_from(timeout=5)
            assert frame["notification"]["id"] == live.pk
        await assert_silent(*sockets)
        assert dog.misses == 1
        await disconnect(*sockets)
        # The process leaves its groups after the linger (0.1 s), and no probe outlives them.
        # Polled rather than one fixed sleep: on a loaded machine the leave takes longer.
        for _ in range(50):
            maintenance = process_hub.maintenance
            if not process_hub.groups and maintenance is not None and maintenance.done():
                break
            await asyncio.sleep(0.1)
        assert process_hub.groups == {}
        assert process_hub.maintenance is not None and process_hub.maintenance.done()
        await close_layer()


async def test_the_probe_does_nothing_while_the_layer_delivers(redis_layer: str,
                                                               vendor: Vendor) -> None:
    with vendor_settings(LAYER_CHECK_INTERVAL=0.1):
        socket, _ = await open_socket(vendor.user)
        dog = hub.hub_for(get_channel_layer()).probe
        await asyncio.sleep(1)
        assert dog.sent >= 3
        assert dog.misses == 0
        await assert_silent(socket)
        await disconnect(socket)
