"""The consumer through the ASGI stack a host uses (JWT middleware + URLRouter), in memory."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from rest_framework_simplejwt.tokens import AccessToken

from django_vendor_notifications import delivery, services
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import (
    access_token_for,
    communicator_for,
    connect,
    make_user,
    refresh_token_for,
    settle,
    vendor_settings,
    websocket_application,
)
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.timezone.utc
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
MakeNotification = Callable[..., Notification]


@database_sync_to_async
def reload(notification: Notification) -> Notification:
    notification.refresh_from_db()
    return notification


@database_sync_to_async
def create(vendor: Vendor, message: str = "hello", **fields: Any) -> Notification:
    return Notification.objects.create(vendor=vendor, message=message, **fields)


async def send(communicator: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await communicator.send_json_to(message)
    return await communicator.receive_json_from(timeout=5)  # type: ignore[no-any-return]


def item_ids(frame: dict[str, Any]) -> list[int]:
    return [item["id"] for group in frame["notifications"].values() for item in group]


@pytest.fixture
def seeded(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> dict[str, Notification]:
    return {
        "general": make_notification(
            vendor, "General", category="General Notifications", created_at=BASE
        ),
        "order": make_notification(
            vendor,
            "Order #123 has been placed.",
            category="Order Notifications",
            context_data={"order_id": 123},
            created_at=BASE + datetime.timedelta(hours=1),
        ),
        "read": make_notification(
            vendor, "Old", is_read=True, created_at=BASE + datetime.timedelta(hours=2)
        ),
        "foreign": make_notification(other_vendor, "Not yours", created_at=BASE),
    }


# --- connect -----------------------------------------------------------------------------


async def test_connect_sends_unread_grouped_by_category(
    seeded: dict[str, Notification], vendor: Vendor, access_token: str, channel_layer: Any
) -> None:
    communicator, first = await connect(access_token)
    try:
        assert first == {
            "action": "unread_notifications",
            "notifications": {
                "Order Notifications": [
                    {
                        "id": seeded["order"].pk,
                        "vendor": vendor.pk,
                        "category": "Order Notifications",
                        "message": "Order #123 has been placed.",
                        "context_data": '{"order_id": 123}',
                        "is_read": False,
                        "readed_at": None,
                        "created_at": "12-03-2025 11:00:00",
                    }
                ],
                "General Notifications": [
                    {
                        "id": seeded["general"].pk,
                        "vendor": vendor.pk,
                        "category": "General Notifications",
                        "message": "General",
                        "context_data": "{}",
                        "is_read": False,
                        "readed_at": None,
                        "created_at": "12-03-2025 10:00:00",
                    }
                ],
            },
            # Counted over every unread notification of the vendor (the foreign one and the
            # read one are not), sorted by label.
            "unread_counts": {"General Notifications": 1, "Order Notifications": 1},
            "unread_total": 2,
        }
        assert await communicator.receive_nothing()
    finally:
        await communicator.disconnect()


async def test_connect_with_nothing_unread(access_token: str, channel_layer: Any) -> None:
    communicator, first = await connect(access_token)
    await communicator.disconnect()
    assert first == {
        "action": "unread_notifications",
        "notifications": {},
        "unread_counts": {},
        "unread_total": 0,
    }


async def test_permitted_staff_gets_vendors_notifications(
    seeded: dict[str, Notification], staff: Any, channel_layer: Any
) -> None:
    communicator, first = await connect(access_token_for(staff))
    await communicator.disconnect()
    assert sorted(item_ids(first)) == sorted([seeded["general"].pk, seeded["order"].pk])


def expired_token(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=-datetime.timedelta(minutes=1))
    return str(token)


def inactive_user_token() -> str:
    user = make_user(is_active=False)
    Vendor.objects.create(user=user, name="inactive vendor")
    return access_token_for(user)


def deleted_user_token() -> str:
    user = make_user()
    token = access_token_for(user)
    user.delete()
    return token


TOKENS: dict[str, Callable[[Any, Any, Any, Any], str | None]] = {
    # name: (owner, staff, staff_without_permission, customer) -> token
    "missing": lambda o, s, w, c: None,
    "empty": lambda o, s, w, c: "",
    "malformed": lambda o, s, w, c: "not-a-jwt",
    "bad-signature": lambda o, s, w, c: access_token_for(o)[:-2] + "xx",
    "refresh": lambda o, s, w, c: refresh_token_for(o),
    "expired": lambda o, s, w, c: expired_token(o),
    "inactive": lambda o, s, w, c: inactive_user_token(),
    "deleted-user": lambda o, s, w, c: deleted_user_token(),
    "customer": lambda o, s, w, c: access_token_for(c),
    "staff-without-permission": lambda o, s, w, c: access_token_for(w),
}
CLOSE_CODES = {name: 4003 if name.startswith(("customer", "staff")) else 4001 for name in TOKENS}


@pytest.fixture
def token_of(
    owner: Any, vendor: Vendor, staff: Any, staff_without_permission: Any, customer: Any
) -> Callable[[str], str | None]:
    return lambda name: TOKENS[name](owner, staff, staff_without_permission, customer)


@pytest.mark.parametrize("name", list(TOKENS))
async def test_refused_socket_is_accepted_then_closed_with_code(
    name: str, token_of: Callable[[str], str | None], seeded: dict[str, Notification]
) -> None:
    token = await database_sync_to_async(token_of)(name)
    communicator = communicator_for(token)
    # Accepted first, so a browser sees the close code rather than a failed handshake (1006).
    connected, _ = await communicator.connect()
    assert connected is True
    # The very next frame is the close: no notification leaks before it.
    output = await communicator.receive_output(timeout=5)
    assert output == {"type": "websocket.close", "code": CLOSE_CODES[name]}
    # Exactly int: daphne's WebSocket library refuses an IntEnum and closes with 1011 instead.
    assert type(output["code"]) is int
    await communicator.disconnect()


async def test_refused_socket_joins_no_group(
    customer: Any, vendor: Vendor, channel_layer: Any
) -> None:
    communicator = communicator_for(access_token_for(customer))
    await communicator.connect()
    await communicator.receive_output(timeout=5)
    await communicator.disconnect()
    assert channel_layer.groups == {}


async def test_unknown_path_is_not_routed_to_the_consumer(access_token: str) -> None:
    communicator = communicator_for(access_token, path="/v1/ws/other/")
    # refuse_unknown_paths answers it: a refused handshake, not "No route found".
    connected, _ = await communicator.connect(timeout=5)
    assert connected is False


# --- mark_read ---------------------------------------------------------------------------


async def test_mark_read(
    seeded: dict[str, Notification], communicator: WebsocketCommunicator
) -> None:
    notification = seeded["order"]
    reply = await send(communicator, {"action": "mark_read", "notification_id": notification.pk})
    assert reply == {"action": "mark_read", "notification_id": notification.pk, "status": "success"}
    notification = await reload(notification)
    assert notification.is_read is True
    assert notification.is_recent_notification is False
    assert notification.readed_at is not None


async def test_mark_read_is_idempotent(
    seeded: dict[str, Notification], communicator: WebsocketCommunicator
) -> None:
    notification = seeded["order"]
    message = {"action": "mark_read", "notification_id": notification.pk}
    await send(communicator, message)
    first_read_at = (await reload(notification)).readed_at
    assert await send(communicator, message) == {
        "action": "mark_read",
        "notification_id": notification.pk,
        "status": "success",
    }
    assert (await reload(notification)).readed_at == first_read_at


async def test_mark_read_of_other_vendors_notification_is_not_found(
    seeded: dict[str, Notification], communicator: WebsocketCommunicator
) -> None:
    foreign = seeded["foreign"]
    reply = await send(
        communicator, {"action": "mark_read", "notification_id": foreign.pk, "request_id": "r-7"}
    )
    assert reply == {
        "action": "mark_read",
        "notification_id": foreign.pk,
        "status": "error",
        "error": "not_found",
        "request_id": "r-7",
    }
    foreign = await reload(foreign)
    assert foreign.is_read is False
    assert foreign.is_recent_notification is True
    assert foreign.readed_at is None


async def test_mark_read_nonexistent(communicator: WebsocketCommunicator) -> None:
    reply = await send(communicator, {"action": "mark_read", "notification_id": MAX_ID})
    assert reply["status"] == "error"
    assert reply["error"] == "not_found"


@pytest.mark.parametrize("request_id", ["abc-1", 42, 0])
async def test_request_id_echoed(
    seeded: dict[str, Notification], communicator: WebsocketCommunicator, request_id: str | int
) -> None:
    mark = {"action": "mark_read", "notification_id": seeded["order"].pk}
    assert (await send(communicator, {**mark, "request_id": request_id}))["request_id"] == (
        request_id
    )
    page = {"action": "load_more", "page": 1, "request_id": request_id}
    assert (await send(communicator, page))["request_id"] == request_id
    assert "request_id" not in await send(communicator, mark)


# --- load_more ---------------------------------------------------------------------------


async def test_load_more(
    seeded: dict[str, Notification], communicator: WebsocketCommunicator
) -> None:
    with vendor_settings(PAGE_SIZE=2):
        first = await send(communicator, {"action": "load_more", "page": 1})
        second = await send(communicator, {"action": "load_more", "page": 2})
        third = await send(communicator, {"action": "load_more", "page": 3})
    assert (first["action"], first["page"], first["has_more"]) == ("load_more", 1, True)
    assert first["notifications"] == {
        "General Notifications": [
            {
                "id": seeded["read"].pk,
                "vendor": seeded["read"].vendor_id,
                "category": "General Notifications",
                "message": "Old",
                "context_data": "{}",
                "is_read": True,
                "readed_at": None,
                "created_at": "12-03-2025 12:00:00",
            }
        ],
        "Order Notifications": [
            {
                "id": seeded["order"].pk,
                "vendor": seeded["order"].vendor_id,
                "category": "Order Notifications",
                "message": "Order #123 has been placed.",
                "context_data": '{"order_id": 123}',
                "is_read": False,
                "readed_at": None,
                "created_at": "12-03-2025 11:00:00",
            }
        ],
    }
    assert (second["page"], second["has_more"]) == (2, False)
    assert item_ids(second) == [seeded["general"].pk]
    assert third == {"action": "load_more", "page": 3, "has_more": False, "notifications": {}}


# --- bad input ---------------------------------------------------------------------------

BAD_INPUTS: list[tuple[str, str | bytes, str]] = [
    ("invalid-json", "{not json", "invalid_json"),
    # Deep enough to exhaust the JSON decoder's recursion, small enough to pass the size limit.
    ("deep-nesting", "[" * 10_000, "invalid_json"),
    ("too-large", '{"action": "sync", "pad": "' + "x" * 20_000 + '"}', "message_too_large"),
    ("list", "[1, 2]", "invalid_message"),
    ("string", '"load_more"', "invalid_message"),
    ("number", "7", "invalid_message"),
    ("null", "null", "invalid_message"),
    ("no-action", '{"page": 1}', "invalid_message"),
    ("action-not-string", '{"action": 1}', "invalid_message"),
    ("unknown-action", '{"action": "delete_all"}', "unknown_action"),
    ("missing-notification-id", '{"action": "mark_read"}', "invalid_field"),
    ("sql-injection", '{"action": "mark_read", "notification_id": "1 OR 1=1"}', "invalid_field"),
    ("negative-id", '{"action": "mark_read", "notification_id": -1}', "invalid_field"),
    ("zero-id", '{"action": "mark_read", "notification_id": 0}', "invalid_field"),
    ("2**64-id", f'{{"action": "mark_read", "notification_id": {2**64}}}', "invalid_field"),
    ("2**63-id", f'{{"action": "mark_read", "notification_id": {2**63}}}', "invalid_field"),
    ("true-id", '{"action": "mark_read", "notification_id": true}', "invalid_field"),
    ("object-id", '{"action": "mark_read", "notification_id": {}}', "invalid_field"),
    ("float-id", '{"action": "mark_read", "notification_id": 1.0}', "invalid_field"),
    ("missing-page", '{"action": "load_more"}', "invalid_field"),
    ("page-0", '{"action": "load_more", "page": 0}', "invalid_field"),
    ("page-negative", '{"action": "load_more", "page": -1}', "invalid_field"),
    ("page-string", '{"action": "load_more", "page": "2"}', "invalid_field"),
    ("page-null", '{"action": "load_more", "page": null}', "invalid_field"),
    ("bad-request-id", '{"action": "load_more", "page": 1, "request_id": true}', "invalid_field"),
    ("binary", b'{"action": "load_more", "page": 1}', "binary_not_supported"),
]


async def send_raw(communicator: WebsocketCommunicator, raw: str | bytes) -> None:
    if isinstance(raw, bytes):
        await communicator.send_to(bytes_data=raw)
    else:
        await communicator.send_to(text_data=raw)


async def assert_still_serving(communicator: WebsocketCommunicator) -> None:
    reply = await send(communicator, {"action": "load_more", "page": 1})
    assert reply["action"] == "load_more"
    assert reply["page"] == 1


@pytest.mark.parametrize(
    ("raw", "code"),
    [(raw, code) for _, raw, code in BAD_INPUTS],
    ids=[name for name, _, _ in BAD_INPUTS],
)
@pytest.mark.invalid_client_frames
async def test_bad_input_gets_error_frame_and_socket_keeps_serving(
    seeded: dict[str, Notification],
    communicator: WebsocketCommunicator,
    raw: str | bytes,
    code: str,
) -> None:
    await send_raw(communicator, raw)
    reply = await communicator.receive_json_from(timeout=5)
    assert set(reply) == {"action", "error", "message"}
    assert reply["action"] == "error"
    assert reply["error"] == code
    assert isinstance(reply["message"], str)
    assert reply["message"]
    await assert_still_serving(communicator)
    # Nothing was changed by the refused request.
    assert (await reload(seeded["order"])).is_read is False


@pytest.mark.parametrize(
    "message",
    [
        {"action": "delete_all", "request_id": "q1"},
        {"action": "mark_read", "notification_id": "1 OR 1=1", "request_id": "q1"},
        {"action": "load_more", "page": 0, "request_id": "q1"},
        {"request_id": "q1"},
    ],
    ids=["unknown-action", "bad-id", "bad-page", "no-action"],
)
@pytest.mark.invalid_client_frames
async def test_error_frame_echoes_request_id(
    communicator: WebsocketCommunicator, message: dict[str, Any]
) -> None:
    reply = await send(communicator, message)
    assert reply["action"] == "error"
    assert reply["request_id"] == "q1"


async def test_every_reply_is_valid_utf8(communicator: WebsocketCommunicator) -> None:
    # RFC 6455 text frames are UTF-8: a lone surrogate from a JSON escape must not be echoed.
    await communicator.send_to(
        text_data='{"action": "load_more", "page": 1, "request_id": "\\ud800"}'
    )
    text = await communicator.receive_from(timeout=5)
    text.encode("utf-8")
    assert json.loads(text)["error"] == "invalid_field"
    await assert_still_serving(communicator)


@pytest.mark.invalid_client_frames
async def test_many_bad_inputs_on_one_socket(
    seeded: dict[str, Notification], access_token: str, channel_layer: Any
) -> None:
    # More messages than the rate limit's burst (read when the socket connects): this test is
    # about bad input, not speed.
    with vendor_settings(RATE_LIMIT_BURST=1000):
        communicator, _ = await connect(access_token)
    try:
        for _, raw, code in BAD_INPUTS:
            await send_raw(communicator, raw)
            assert (await communicator.receive_json_from(timeout=5))["error"] == code
        order = seeded["order"].pk
        reply = await send(communicator, {"action": "mark_read", "notification_id": order})
        assert reply["status"] == "success"
    finally:
        await communicator.disconnect()


async def test_server_failure_is_an_internal_error_frame(
    communicator: WebsocketCommunicator, caplog: pytest.LogCaptureFixture
) -> None:
    # A broken setting makes the service raise; the client gets no traceback.
    with vendor_settings(PAGE_SIZE="twenty"), caplog.at_level(logging.ERROR):
        reply = await send(communicator, {"action": "load_more", "page": 1, "request_id": 3})
    assert reply == {
        "action": "error",
        "error": "internal_error",
        "message": "The server failed.",
        "request_id": 3,
    }
    assert "twenty" not in json.dumps(reply)
    assert any(record.exc_info for record in caplog.records)
    await assert_still_serving(communicator)


# --- channel-layer events ----------------------------------------------------------------


async def test_reload_event_to_user_group_resends_unread(
    owner: Any, vendor: Vendor, communicator: WebsocketCommunicator, channel_layer: Any
) -> None:
    assert communicator.first["notifications"] == {}  # type: ignore[attr-defined]
    await settle(communicator)
    new = await create(vendor, "Arrived later", category="Order Notifications")
    await channel_layer.group_send(delivery.user_group(owner.pk), {"type": delivery.RELOAD_EVENT})
    frame = await communicator.receive_json_from(timeout=5)
    assert frame["action"] == "unread_notifications"
    assert item_ids(frame) == [new.pk]


async def test_reload_unread_for_vendor_and_for_everyone(
    vendor: Vendor, communicator: WebsocketCommunicator, channel_layer: Any
) -> None:
    await settle(communicator)
    new = await create(vendor)
    assert await sync_to_async(services.reload_unread)(vendor) is True
    assert item_ids(await communicator.receive_json_from(timeout=5)) == [new.pk]
    assert await sync_to_async(services.reload_unread)() is True
    assert item_ids(await communicator.receive_json_from(timeout=5)) == [new.pk]


async def test_notify_is_pushed_to_owner_and_staff(
    vendor: Vendor, other_vendor: Vendor, staff: Any, access_token: str, channel_layer: Any
) -> None:
    owner_socket, _ = await connect(access_token)
    staff_socket, _ = await connect(access_token_for(staff))
    try:
        await database_sync_to_async(services.notify)(other_vendor, "not for vendor A")
        notification = await database_sync_to_async(services.notify)(
            vendor, "Order #9", category="Order Notifications", context={"order": 9}
        )
        for socket in (owner_socket, staff_socket):
            frame = await socket.receive_json_from(timeout=5)
            assert frame["action"] == "new_notification"
            assert frame["notification"]["id"] == notification.pk
            assert frame["notification"]["context_data"] == '{"order": 9}'
            assert await socket.receive_nothing()
    finally:
        await owner_socket.disconnect()
        await staff_socket.disconnect()


async def test_the_process_leaves_the_groups_a_linger_after_the_last_socket(
    owner: Any, vendor: Vendor, access_token: str, channel_layer: Any
) -> None:
    groups = (
        delivery.user_group(owner.pk),
        delivery.broadcast_group(),
        delivery.vendor_group(vendor.pk),
    )
    with vendor_settings(GROUP_LINGER=0.3):
        first, _ = await connect(access_token)
        second, _ = await connect(access_token)
        # One membership per process, whatever the number of its sockets.
        assert all(len(channel_layer.groups.get(group, {})) == 1 for group in groups)
        await first.disconnect()
        await second.disconnect()
        # Still a member during the linger: a reconnecting socket finds the groups held.
        assert all(len(channel_layer.groups.get(group, {})) == 1 for group in groups)
        await asyncio.sleep(0.6)
    assert all(not channel_layer.groups.get(group) for group in groups)
    # A push after the socket is gone neither fails nor raises.
    notification = await database_sync_to_async(services.notify)(vendor, "after")
    assert notification.pk is not None
    assert await sync_to_async(services.reload_unread)(vendor) is True


@pytest.fixture
async def two_sockets(
    access_token: str, staff: Any, channel_layer: Any
) -> AsyncIterator[tuple[WebsocketCommunicator, WebsocketCommunicator]]:
    first, _ = await connect(access_token)
    second, _ = await connect(access_token_for(staff))
    yield first, second
    await second.disconnect()


async def test_one_socket_closing_leaves_the_other_subscribed(
    vendor: Vendor, two_sockets: tuple[WebsocketCommunicator, WebsocketCommunicator]
) -> None:
    first, second = two_sockets
    await first.disconnect()
    notification = await database_sync_to_async(services.notify)(vendor, "still delivered")
    frame = await second.receive_json_from(timeout=5)
    assert frame["notification"]["id"] == notification.pk


@pytest.mark.parametrize(
    "path", ["/v1/ws/notifications", "/v1/ws/notifications/extra/", "/", "/%00/"]
)
async def test_a_path_no_route_matches_is_refused_not_an_error(
    path: str, access_token: str
) -> None:
    communicator = WebsocketCommunicator(websocket_application(), f"{path}?token={access_token}")
    connected, _ = await communicator.connect(timeout=5)
    assert connected is False
