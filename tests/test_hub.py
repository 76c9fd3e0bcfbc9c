"""The per-process hub: one membership per group, in-memory fan-out, replay, linger, healing.

Plain members stand in for sockets here, on the in-memory layer and on both Redis layers; the
consumer's side (inbox overflow, gap repair) is tested through real sockets at the end.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.test import override_settings
from redis.asyncio import Redis

from django_vendor_notifications import consumers, delivery, payloads
from django_vendor_notifications.hub import REPLAY_SIZE, Hub, hub_for
from django_vendor_notifications.layers import receives_through_one_read
from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for, communicator_for, settle, vendor_settings
from tests.settings import REDIS_URL, channel_layer_config
from tests.test_queries import WorkerQueries
from tests.testapp.models import Vendor

CANARY_PREFIX = "vendor_notifications_canary_"


class FakeSocket:
    """A hub member that records what it is handed."""

    def __init__(self) -> None:
        self.socket_id = uuid.uuid4().hex
        self.events: list[dict[str, Any]] = []
        self.gaps = 0
        self.failed = False

    def deliver(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def suspect_gap(self) -> None:
        self.gaps += 1

    def layer_failed(self) -> None:
        self.failed = True


class CountingLayer(InMemoryChannelLayer):
    """The in-memory layer, counting group_add calls (but the watchdog's canary's)."""

    def __init__(self) -> None:
        super().__init__()
        self.adds = 0
        #: Every group added, in order, the canary's included.
        self.added: list[str] = []

    async def group_add(self, group: str, channel: str) -> None:
        self.added.append(group)
        self.adds += not group.startswith(CANARY_PREFIX)
        await super().group_add(group, channel)


async def until(condition: Any, timeout: float = 5) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_many_sockets_make_one_membership_and_each_gets_the_event_once() -> None:
    layer = CountingLayer()
    hub = Hub(layer)
    loop = asyncio.get_running_loop()
    sockets = [FakeSocket() for _ in range(50)]
    for socket in sockets:
        await hub.subscribe(socket, ["vendor_notifications_1", "all_notifications"], loop.time())

    assert layer.adds == 2
    assert {
        group: len(members)
        for group, members in layer.groups.items()
        if not group.startswith(CANARY_PREFIX)
    } == {
        "vendor_notifications_1": 1,
        "all_notifications": 1,
    }
    await layer.group_send("vendor_notifications_1", {"type": "reload_unread_notifications"})
    await until(lambda: all(socket.events for socket in sockets))
    await asyncio.sleep(0.05)
    assert all(len(socket.events) == 1 for socket in sockets)
    assert hub.received == 1


async def test_the_canary_joins_before_the_first_group() -> None:
    """A membership older than the canary's could vanish in a Redis restart that the canary,
    joined after it, survives: the sockets would be deaf and nothing would notice."""
    layer = CountingLayer()
    hub = Hub(layer)
    await hub.subscribe(FakeSocket(), ["vendor_notifications_1"], asyncio.get_running_loop().time())
    assert layer.added[0].startswith(CANARY_PREFIX)
    assert layer.added[1:] == ["vendor_notifications_1"]
    assert hub.probe.joined


async def test_the_sender_is_left_out_and_others_are_not() -> None:
    hub = Hub(InMemoryChannelLayer())
    sender, other = FakeSocket(), FakeSocket()
    for socket in (sender, other):
        await hub.subscribe(socket, ["g"], asyncio.get_running_loop().time())
    await hub.layer.group_send(
        "g", {"type": delivery.PUSH_EVENT, "text": "{}", "exclude": sender.socket_id}
    )
    await until(lambda: other.events)
    assert sender.events == []


async def test_a_late_subscriber_gets_what_arrived_after_its_snapshot_began() -> None:
    hub = Hub(InMemoryChannelLayer())
    loop = asyncio.get_running_loop()
    first = FakeSocket()
    assert await hub.subscribe(first, ["g"], loop.time()) is False  # joined now: catch up
    before = {"type": "x", "n": 1}
    await hub.layer.group_send("g", before)
    await until(lambda: first.events)
    snapshot_began = loop.time()
    after = {"type": "x", "n": 2}
    await hub.layer.group_send("g", after)
    await until(lambda: len(first.events) == 2)

    late = FakeSocket()
    assert await hub.subscribe(late, ["g"], snapshot_began) is True
    assert late.events == [after]


async def test_a_subscriber_cannot_rely_on_replay_once_the_record_overflowed() -> None:
    hub = Hub(InMemoryChannelLayer())
    loop = asyncio.get_running_loop()
    first = FakeSocket()
    await hub.subscribe(first, ["g"], loop.time())
    snapshot_began = loop.time()
    for n in range(REPLAY_SIZE + 1):
        hub.fan_out(hub.groups["g"], {"type": "x", "n": n})
    assert await hub.subscribe(FakeSocket(), ["g"], snapshot_began) is False


async def test_the_process_stays_in_a_group_for_the_linger_then_leaves() -> None:
    layer = CountingLayer()
    hub = Hub(layer)
    loop = asyncio.get_running_loop()
    with vendor_settings(GROUP_LINGER=0.2):
        first = FakeSocket()
        await hub.subscribe(first, ["g"], loop.time())
        hub.unsubscribe(first, ["g"])
        # A socket that comes back during the linger costs no join.
        second = FakeSocket()
        await hub.subscribe(second, ["g"], loop.time())
        assert layer.adds == 1
        hub.unsubscribe(second, ["g"])
        assert "g" in layer.groups
        await until(lambda: "g" not in layer.groups)
    assert hub.groups == {}


async def test_healing_joins_once_per_group_and_keeps_every_socket() -> None:
    layer = CountingLayer()
    hub = Hub(layer)
    sockets = [FakeSocket() for _ in range(200)]
    for socket in sockets:
        await hub.subscribe(socket, ["user_1", "vendor_1", "all"], 0.0)
    adds = layer.adds

    await hub.heal()

    assert layer.adds - adds == 3
    assert not any(socket.failed for socket in sockets)
    assert all(socket.gaps == 3 for socket in sockets)


class BrokenLayer(InMemoryChannelLayer):
    async def receive(self, channel: str) -> dict[str, Any]:
        raise ConnectionError("Redis went away")


async def test_a_group_whose_receive_fails_tells_its_sockets() -> None:
    hub = Hub(BrokenLayer())
    socket = FakeSocket()
    await hub.subscribe(socket, ["g"], asyncio.get_running_loop().time())
    await until(lambda: socket.failed)
    assert hub.groups == {}


async def test_a_late_event_makes_the_sockets_catch_up() -> None:
    hub = Hub(InMemoryChannelLayer())
    socket = FakeSocket()
    await hub.subscribe(socket, ["g"], asyncio.get_running_loop().time())
    hub.fan_out(hub.groups["g"], delivery.push_event("{}", notification_id=1, previous_id=0))
    assert socket.gaps == 0
    late = delivery.push_event("{}", notification_id=2, previous_id=1)
    late["sent_at"] -= 5
    hub.fan_out(hub.groups["g"], late)
    assert socket.gaps == 1


# --- on Redis: one membership per process, and host events still reach every socket ---------


@pytest.fixture(params=["redis", "redis-pubsub"])
async def redis_layer(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    prefix = f"vn-hub-{uuid.uuid4().hex[:12]}"
    with override_settings(
        CHANNEL_LAYERS={"default": channel_layer_config(request.param, prefix=prefix)}
    ):
        yield prefix
        await get_channel_layer().flush()


@pytest.mark.django_db(transaction=True)
async def test_sockets_of_one_vendor_hold_one_membership_in_redis(
    redis_layer: str, vendor: Vendor, staff: Any
) -> None:
    tokens = [access_token_for(vendor.user)] * 4 + [access_token_for(staff)]
    sockets = [communicator_for(token) for token in tokens]
    for socket in sockets:
        assert (await socket.connect(timeout=5))[0]
        assert (await socket.receive_json_from(timeout=5))["action"] == "unread_notifications"
    layer = get_channel_layer()
    group = delivery.vendor_group(vendor.pk)
    if hasattr(layer, "_group_key"):  # RedisChannelLayer: the group's sorted set in Redis
        client = Redis.from_url(REDIS_URL)
        try:
            assert await client.zcard(layer._group_key(group)) == 1
        finally:
            await client.aclose()
    else:  # RedisPubSubChannelLayer: the process's local map of group to channels
        loop_layer = layer._get_layer()
        assert len(loop_layer.groups[loop_layer._get_group_channel_name(group)]) == 1

    # A host's own group_send to a user's group reaches each of that user's sockets.
    await layer.group_send(delivery.user_group(vendor.user.pk), {"type": delivery.RELOAD_EVENT})
    for socket in sockets[:4]:
        assert (await socket.receive_json_from(timeout=5))["action"] == "unread_notifications"
    assert await sockets[4].receive_nothing(timeout=0.3)
    await asyncio.gather(*(socket.disconnect() for socket in sockets))


async def test_leaving_groups_ends_their_receive_loops_while_others_receive(
    redis_layer: str,
) -> None:
    """A group the hub leaves stops receiving: on the core layer its loop returns by itself
    (a cancelled receive there can live on), on pub/sub it is cancelled; either way it ends,
    and a group that stays gets every event sent meanwhile."""
    layer = get_channel_layer()
    hub = Hub(layer)
    loop = asyncio.get_running_loop()
    staying = FakeSocket()
    await hub.subscribe(staying, ["stays"], loop.time())
    with vendor_settings(GROUP_LINGER=0):
        receivers = []
        for n in range(60):
            socket = FakeSocket()
            await hub.subscribe(socket, [f"left-{n}"], loop.time())
            receivers.append(hub.groups[f"left-{n}"].receiver)
            await layer.group_send("stays", {"type": "x", "n": n})
            hub.unsubscribe(socket, [f"left-{n}"])
        await until(lambda: all(receiver.done() for receiver in receivers), timeout=10)
        await until(lambda: len(staying.events) == 60)
        assert [event["n"] for event in staying.events] == list(range(60))
        assert set(hub.groups) == {"stays"}
        core = receives_through_one_read(layer)
        assert [receiver.cancelled() for receiver in receivers] == [not core] * 60
        last = hub.groups["stays"].receiver
        hub.unsubscribe(staying, ["stays"])
        await until(lambda: last is not None and last.done())


async def test_a_failed_group_ends_its_receive_loop_as_a_left_one_does(redis_layer: str) -> None:
    """A group whose re-join failed is given up the same way: its members are told, and its
    loop ends (by the stop event on the core layer, not a cancel)."""
    layer = get_channel_layer()
    hub = Hub(layer)
    socket = FakeSocket()
    await hub.subscribe(socket, ["g"], asyncio.get_running_loop().time())
    group = hub.groups["g"]
    receiver = group.receiver
    assert receiver is not None
    hub.fail(group)
    assert socket.failed and hub.groups == {}
    await until(receiver.done)
    assert receiver.cancelled() is not receives_through_one_read(layer)


# --- a socket that falls behind drops its queued pushes and refills them by id ---------------


@database_sync_to_async
def create_silently(vendor: Vendor, count: int) -> list[Notification]:
    return [Notification.objects.create(vendor=vendor, message=f"n{i}") for i in range(count)]


def push_for(notification: Notification, previous_id: int) -> dict[str, Any]:
    row = {name: getattr(notification, name) for name in payloads.ITEM_FIELDS}
    return delivery.push_event(
        payloads.encode(payloads.new_notification_frame(row)),
        notification_id=notification.pk,
        previous_id=previous_id,
    )


async def open_sockets(vendor: Vendor, count: int) -> list[Any]:
    sockets = [communicator_for(access_token_for(vendor.user)) for _ in range(count)]
    for socket in sockets:
        assert (await socket.connect(timeout=5))[0]
        await socket.receive_json_from(timeout=5)
    return sockets


async def ids_received(socket: Any, count: int) -> list[int]:
    frames = [await socket.receive_json_from(timeout=5) for _ in range(count)]
    return [frame["notification"]["id"] for frame in frames]


@pytest.mark.django_db(transaction=True)
async def test_a_socket_whose_inbox_overflows_gets_every_push_once_in_order(
    vendor: Vendor, channel_layer: Any
) -> None:
    with vendor_settings(SOCKET_QUEUE_FRAMES=3):
        [socket] = await open_sockets(vendor, 1)
        notifications = await create_silently(vendor, 12)
        hub = hub_for(channel_layer)
        group = hub.groups[delivery.vendor_group(vendor.pk)]
        [consumer] = group.members.values()
        previous = 0
        # All handed over before the socket's loop runs: more than its inbox holds.
        for notification in notifications:
            hub.fan_out(group, push_for(notification, previous))
            previous = notification.pk

        assert await ids_received(socket, 12) == [n.pk for n in notifications]
        assert await socket.receive_nothing(timeout=0.3)
        assert consumer.inbox.overflows >= 1
        await socket.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_slow_socket_does_not_delay_the_others(vendor: Vendor, channel_layer: Any) -> None:
    slow, fast = await open_sockets(vendor, 2)
    hub = hub_for(channel_layer)
    group = hub.groups[delivery.vendor_group(vendor.pk)]
    slow_consumer = next(iter(group.members.values()))
    send = slow_consumer.base_send

    async def slow_send(message: dict[str, Any]) -> None:
        await asyncio.sleep(0.3)  # a client on a bad network, on a server that waits for it
        await send(message)

    slow_consumer.base_send = slow_send
    notifications = await create_silently(vendor, 5)
    previous = 0
    started = asyncio.get_running_loop().time()
    for notification in notifications:
        hub.fan_out(group, push_for(notification, previous))
        previous = notification.pk

    expected = [n.pk for n in notifications]
    assert await ids_received(fast, 5) == expected
    fast_done = asyncio.get_running_loop().time() - started
    assert await ids_received(slow, 5) == expected
    slow_done = asyncio.get_running_loop().time() - started
    # The fast socket did not wait behind the slow one's five 0.3 s sends.
    assert slow_done >= 1.5
    assert fast_done < slow_done - 1.0
    await asyncio.gather(slow.disconnect(), fast.disconnect())


@pytest.mark.django_db(transaction=True)
async def test_a_vendors_sockets_share_one_query_to_catch_up_after_a_heal_and_to_reload(
    vendor: Vendor, channel_layer: Any
) -> None:
    """After a lost probe every socket of the healed groups catches up from the database;
    sockets of one vendor at the same id share one query, and each gets every row once."""
    with vendor_settings(MAX_SOCKETS_PER_USER=20):
        sockets = await open_sockets(vendor, 20)
    for socket in sockets:
        await settle(socket)
    missed = await create_silently(vendor, 3)
    reads_before = consumers.rows_since_shared.calls
    async with WorkerQueries() as queries:
        await hub_for(channel_layer).heal()
        received = await asyncio.gather(*(ids_received(socket, 3) for socket in sockets))
    assert received == [[n.pk for n in missed]] * len(sockets)
    assert consumers.rows_since_shared.calls - reads_before == 1
    assert queries.count == 1
    for socket in sockets:
        assert await socket.receive_nothing(timeout=0.05)

    # A host's reload event reaches all of them at once, too: one query for all.
    async with WorkerQueries() as queries:
        assert await database_sync_to_async(delivery.reload_unread)(vendor.pk) is True
        frames = await asyncio.gather(*(socket.receive_json_from(timeout=5) for socket in sockets))
    assert {frame["action"] for frame in frames} == {"unread_notifications"}
    assert queries.count == 1
    await asyncio.gather(*(socket.disconnect() for socket in sockets))
