"""The protocol as a real client sees it: a real ASGI server, Redis, and the websockets package.

Every test runs against each server in conftest.SERVER_KINDS (daphne on both Redis layers,
uvicorn on the core layer).
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from typing import Any

import jwt
import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for, refresh_token_for
from tests.testapp.models import Vendor

from .conftest import AsgiServer, assert_silent, receive_json

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SPEC_ITEM_KEYS = {"id", "vendor", "message", "context_data", "is_read", "readed_at", "created_at"}
#: What an item carries: the spec's keys plus the category it is grouped by.
ITEM_KEYS = SPEC_ITEM_KEYS | {"category"}
CREATED_AT = re.compile(r"^\d{2}-\d{2}-\d{4} \d{2}:\d{2}:\d{2}$")
PAGE_SIZE = 20  # VENDOR_NOTIFICATIONS["PAGE_SIZE"]'s default; tests/settings.py keeps it


def flatten(notifications: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for items in notifications.values() for item in items]


async def first_frame(server: AsgiServer, user: Any) -> dict[str, Any]:
    async with server.connect(access_token_for(user)) as ws:
        return await receive_json(ws)


# --- connect -------------------------------------------------------------------------------


async def test_owner_gets_unread_notifications_grouped_by_category(
    asgi_server: AsgiServer, vendor: Vendor, make_notification: Callable[..., Notification]
) -> None:
    make_notification = database_sync_to_async(make_notification)
    # 09:15 UTC on 12 March is 10:15 in Europe/Berlin (settings.TIME_ZONE).
    placed = datetime.datetime(2025, 3, 12, 9, 15, tzinfo=datetime.timezone.utc)
    order = await make_notification(vendor, "Order #123 has been placed.",
                              category="Order Notifications", created_at=placed)
    general = await make_notification(vendor, "You have a new general notification.",
                                category="General Notifications",
                                created_at=placed + datetime.timedelta(minutes=45),
                                context_data={"url": "/orders/123/"})
    await make_notification(vendor, "already read", category="Order Notifications", is_read=True)

    frame = await first_frame(asgi_server, vendor.user)

    assert frame["action"] == "unread_notifications"
    assert set(frame["notifications"]) == {"Order Notifications", "General Notifications"}
    [order_item] = frame["notifications"]["Order Notifications"]
    [general_item] = frame["notifications"]["General Notifications"]
    for item in (order_item, general_item):
        assert set(item) == ITEM_KEYS
        assert item["vendor"] == vendor.pk
        assert item["is_read"] is False
        assert item["readed_at"] is None
        assert CREATED_AT.match(item["created_at"])
    assert order_item["id"] == order.pk
    assert order_item["message"] == "Order #123 has been placed."
    assert order_item["context_data"] == "{}"
    assert order_item["created_at"] == "12-03-2025 10:15:00"
    assert general_item["id"] == general.pk
    assert json.loads(general_item["context_data"]) == {"url": "/orders/123/"}
    assert general_item["created_at"] == "12-03-2025 11:00:00"


async def test_permitted_staff_member_gets_the_vendors_notifications(
    asgi_server: AsgiServer, staff: Any, vendor: Vendor,
    make_notification: Callable[..., Notification],
) -> None:
    make_notification = database_sync_to_async(make_notification)
    notification = await make_notification(vendor, "for the whole team")

    frame = await first_frame(asgi_server, staff)

    assert [item["id"] for item in flatten(frame["notifications"])] == [notification.pk]


# --- close codes ---------------------------------------------------------------------------


def expired_token(user: Any) -> str:
    token = AccessToken.for_user(user)
    token.set_exp(from_time=timezone.now() - datetime.timedelta(hours=1))
    return str(token)


def wrongly_signed_token(user: Any) -> str:
    payload = AccessToken.for_user(user).payload
    return jwt.encode(payload, "another-key-that-is-long-enough-for-hs256-signatures", "HS256")


def inactive_user_token(user: Any) -> str:
    token = access_token_for(user)
    user.is_active = False
    user.save(update_fields=["is_active"])
    return token


def deleted_user_token(user: Any) -> str:
    token = access_token_for(user)
    user.delete()
    return token


# (fixture giving the user, token for that user, expected close code)
CLOSE_CASES: dict[str, tuple[str | None, Callable[[Any], str | None], int]] = {
    "missing-token": (None, lambda user: None, 4001),
    "malformed-token": (None, lambda user: "not-a-jwt", 4001),
    "wrong-signature": ("owner", wrongly_signed_token, 4001),
    "expired-token": ("owner", expired_token, 4001),
    "refresh-token": ("owner", refresh_token_for, 4001),
    "inactive-user": ("owner", inactive_user_token, 4001),
    "deleted-user": ("owner", deleted_user_token, 4001),
    "customer-without-vendor": ("customer", access_token_for, 4003),
    "staff-without-permission": ("staff_without_permission", access_token_for, 4003),
}


@pytest.fixture(params=list(CLOSE_CASES))
def refused_token(request: pytest.FixtureRequest, vendor: Vendor) -> tuple[str | None, int]:
    """A token the server must refuse, and the close code; made here, outside the event loop,
    because making some of them writes to the database."""
    user_fixture, make_token, expected_code = CLOSE_CASES[request.param]
    user = request.getfixturevalue(user_fixture) if user_fixture else None
    return make_token(user), expected_code


async def test_handshake_is_accepted_then_closed_with_the_code(
    asgi_server: AsgiServer, refused_token: tuple[str | None, int]
) -> None:
    token, expected_code = refused_token

    # connect() returning at all means the server answered 101: the handshake was accepted.
    async with asgi_server.connect(token) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            frame = await ws.recv()
            pytest.fail(f"expected a close, got a frame: {frame!r}")

    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == expected_code
    assert ws.close_code == expected_code


# --- actions -------------------------------------------------------------------------------


@database_sync_to_async
def fetch(notification_id: int) -> Notification:
    return Notification.objects.get(pk=notification_id)


async def test_mark_read_updates_the_row(
    asgi_server: AsgiServer, vendor: Vendor, other_vendor: Vendor,
    make_notification: Callable[..., Notification],
) -> None:
    make_notification = database_sync_to_async(make_notification)
    mine = await make_notification(vendor, "mine")
    theirs = await make_notification(other_vendor, "theirs")

    async with asgi_server.connect(access_token_for(vendor.user)) as ws:
        await receive_json(ws)
        await ws.send(json.dumps({"action": "mark_read", "notification_id": mine.pk,
                                  "request_id": "read-1"}))
        reply = await receive_json(ws)
        await ws.send(json.dumps({"action": "mark_read", "notification_id": theirs.pk,
                                  "request_id": 2}))
        refused = await receive_json(ws)

    assert reply == {"action": "mark_read", "notification_id": mine.pk, "status": "success",
                     "request_id": "read-1"}
    assert refused == {"action": "mark_read", "notification_id": theirs.pk, "status": "error",
                       "error": "not_found", "request_id": 2}
    row = await fetch(mine.pk)
    assert row.is_read is True
    assert row.is_recent_notification is False
    assert row.readed_at is not None
    assert (await fetch(theirs.pk)).is_read is False


async def test_load_more_pages_through_all_notifications_newest_first(
    asgi_server: AsgiServer, vendor: Vendor, other_vendor: Vendor,
    make_notification: Callable[..., Notification],
) -> None:
    make_notification = database_sync_to_async(make_notification)
    start = timezone.now() - datetime.timedelta(days=1)
    created = [
        await make_notification(vendor, f"n{index}", category=("Orders", "Payouts")[index % 2],
                          is_read=index % 3 == 0,
                          created_at=start + datetime.timedelta(minutes=index))
        for index in range(PAGE_SIZE + 5)
    ]
    await make_notification(other_vendor, "not mine")
    newest_first = [notification.pk for notification in reversed(created)]

    async with asgi_server.connect(access_token_for(vendor.user)) as ws:
        await receive_json(ws)
        pages = []
        for page in (1, 2, 3):
            await ws.send(json.dumps({"action": "load_more", "page": page, "request_id": page}))
            pages.append(await receive_json(ws))

    assert [(p["action"], p["page"], p["has_more"], p["request_id"]) for p in pages] == [
        ("load_more", 1, True, 1), ("load_more", 2, False, 2), ("load_more", 3, False, 3)
    ]
    ids = [[item["id"] for item in flatten(p["notifications"])] for p in pages]
    assert [len(page_ids) for page_ids in ids] == [PAGE_SIZE, 5, 0]
    # Grouping by category splits a page; within a category the order is newest first.
    assert sorted(ids[0] + ids[1], key=newest_first.index) == newest_first
    for p in pages:
        for category, items in p["notifications"].items():
            assert all(item["category"] == category for item in items)
            item_ids = [item["id"] for item in items]
            assert item_ids == sorted(item_ids, key=newest_first.index)


# --- pushes from another process -----------------------------------------------------------


async def test_notification_from_another_process_reaches_owner_and_staff_once(
    asgi_server: AsgiServer, vendor: Vendor, staff: Any, other_vendor: Vendor
) -> None:
    async with (
        asgi_server.connect(access_token_for(vendor.user)) as owner_ws,
        asgi_server.connect(access_token_for(staff)) as staff_ws,
        asgi_server.connect(access_token_for(other_vendor.user)) as other_ws,
    ):
        for ws in (owner_ws, staff_ws, other_ws):
            assert (await receive_json(ws))["action"] == "unread_notifications"

        stdout = await asgi_server.run_django(
            "send_notification", "--vendor", str(vendor.pk), "--message", "Order #7 was paid.",
            "--category", "Order Notifications", "--context", '{"order": 7}',
        )
        notification_id = int(stdout.strip())

        frames = [await receive_json(ws) for ws in (owner_ws, staff_ws)]
        await assert_silent(owner_ws, staff_ws, other_ws)

    for frame in frames:
        assert frame["action"] == "new_notification"
        item = frame["notification"]
        assert set(item) == ITEM_KEYS
        assert item["id"] == notification_id
        assert item["vendor"] == vendor.pk
        assert item["category"] == "Order Notifications"
        assert item["message"] == "Order #7 was paid."
        assert json.loads(item["context_data"]) == {"order": 7}
        assert CREATED_AT.match(item["created_at"])
    assert (await fetch(notification_id)).vendor_id == vendor.pk


# --- bad messages --------------------------------------------------------------------------


BAD_MESSAGES: dict[str, tuple[str | bytes, str, Any]] = {
    # name: (what the client sends, the error code, the request_id echoed)
    "invalid-json": ("{not json", "invalid_json", None),
    "not-an-object": ("[1, 2, 3]", "invalid_message", None),
    "no-action": ('{"request_id": "a"}', "invalid_message", "a"),
    "unknown-action": ('{"action": "delete_everything", "request_id": "b"}',
                       "unknown_action", "b"),
    "id-as-string": ('{"action": "mark_read", "notification_id": "1", "request_id": 3}',
                     "invalid_field", 3),
    "id-as-boolean": ('{"action": "mark_read", "notification_id": true}', "invalid_field", None),
    "id-too-large": (json.dumps({"action": "mark_read", "notification_id": 2**63,
                                 "request_id": "c"}), "invalid_field", "c"),
    "page-zero": ('{"action": "load_more", "page": 0, "request_id": "d"}', "invalid_field", "d"),
    "binary-frame": (b'{"action": "load_more", "page": 1}', "binary_not_supported", None),
}


@pytest.mark.parametrize("case", list(BAD_MESSAGES))
@pytest.mark.invalid_client_frames
async def test_bad_message_gets_an_error_frame_and_the_socket_keeps_working(
    asgi_server: AsgiServer, vendor: Vendor, case: str
) -> None:
    message, code, request_id = BAD_MESSAGES[case]

    async with asgi_server.connect(access_token_for(vendor.user)) as ws:
        await receive_json(ws)
        await ws.send(message)
        error = await receive_json(ws)
        await ws.send(json.dumps({"action": "load_more", "page": 1, "request_id": "next"}))
        next_reply = await receive_json(ws)

    assert error["action"] == "error"
    assert error["error"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert error.get("request_id") == request_id
    assert next_reply["action"] == "load_more"
    assert next_reply["request_id"] == "next"
