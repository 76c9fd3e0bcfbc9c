"""The inbox actions as a real client sees them: a real ASGI server, Redis, two sockets.

Every test runs against each server in conftest.SERVER_KINDS (daphne on both Redis layers,
uvicorn on the core layer).
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.asyncio.client import ClientConnection

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import AsgiServer, assert_silent, receive_json

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ORDERS = "Order Notifications"
GENERAL = "General Notifications"


async def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await receive_json(ws)


@database_sync_to_async
def fetch(notification_id: int) -> Notification:
    return Notification.objects.get(pk=notification_id)


async def test_counts_mark_all_read_pages_and_archive(
    asgi_server: AsgiServer,
    vendor: Vendor,
    staff: Any,
    other_vendor: Vendor,
    make_notification: Callable[..., Notification],
) -> None:
    make = database_sync_to_async(make_notification)
    start = timezone.now() - datetime.timedelta(hours=1)
    order1 = await make(vendor, "Order #1", category=ORDERS, created_at=start)
    order2 = await make(vendor, "Order #2", category=ORDERS,
                        created_at=start + datetime.timedelta(minutes=1))
    read = await make(vendor, "Seen", category=GENERAL, is_read=True,
                      created_at=start + datetime.timedelta(minutes=2))
    general = await make(vendor, "Hello", category=GENERAL,
                         created_at=start + datetime.timedelta(minutes=3))
    foreign = await make(other_vendor, "Not yours", category=ORDERS)

    async with (
        asgi_server.connect(access_token_for(vendor.user)) as owner_ws,
        asgi_server.connect(access_token_for(staff)) as staff_ws,
    ):
        # Counts on the first frame, for both sockets of the vendor.
        for ws in (owner_ws, staff_ws):
            first = await receive_json(ws)
            assert first["action"] == "unread_notifications"
            assert first["unread_counts"] == {GENERAL: 1, ORDERS: 2}
            assert first["unread_total"] == 3

        # mark_all_read on one socket: its reply, and unread_count_changed on the other.
        reply = await ask(owner_ws, {"action": "mark_all_read", "category": ORDERS,
                                     "request_id": "all"})
        assert reply == {"action": "mark_all_read", "status": "success", "category": ORDERS,
                         "updated": 2, "unread_total": 1, "request_id": "all"}
        pushed = await receive_json(staff_ws)
        assert pushed == {"action": "unread_count_changed", "unread_counts": {GENERAL: 1},
                          "unread_total": 1}
        await assert_silent(owner_ws, staff_ws)

        # before_id pages: newest first by id, continued with next_before_id.
        page1 = await ask(owner_ws, {"action": "load_more", "before_id": None, "limit": 3})
        assert [item["id"] for item in page1["notifications"]] == [general.pk, read.pk,
                                                                   order2.pk]
        assert (page1["has_more"], page1["next_before_id"]) == (True, order2.pk)
        page2 = await ask(owner_ws, {"action": "load_more",
                                     "before_id": page1["next_before_id"], "limit": 3})
        assert [item["id"] for item in page2["notifications"]] == [order1.pk]
        assert (page2["has_more"], page2["next_before_id"]) == (False, None)

        # archive: the last unread one leaves the counts, and the other socket hears of it.
        reply = await ask(owner_ws, {"action": "archive", "notification_id": general.pk})
        assert reply == {"action": "archive", "notification_id": general.pk,
                         "status": "success"}
        pushed = await receive_json(staff_ws)
        assert (pushed["action"], pushed["unread_counts"], pushed["unread_total"]) == (
            "unread_count_changed", {}, 0)
        counts = await ask(staff_ws, {"action": "get_unread_counts"})
        assert (counts["unread_counts"], counts["unread_total"]) == ({}, 0)
        archived = await ask(staff_ws, {"action": "load_more", "before_id": None,
                                        "archived": True})
        assert [item["id"] for item in archived["notifications"]] == [general.pk]

        # Another vendor's notification: not found, untouched, and nobody is told.
        refused = await ask(owner_ws, {"action": "archive", "notification_id": foreign.pk,
                                       "request_id": 9})
        assert refused == {"action": "archive", "notification_id": foreign.pk,
                           "status": "error", "error": "not_found", "request_id": 9}
        await assert_silent(owner_ws, staff_ws)

    assert (await fetch(general.pk)).archived_at is not None
    assert (await fetch(order1.pk)).is_read is True
    row = await fetch(foreign.pk)
    assert (row.is_read, row.archived_at) == (False, None)


async def test_mark_unread_reaches_the_other_socket(
    asgi_server: AsgiServer, vendor: Vendor, make_notification: Callable[..., Notification],
) -> None:
    make = database_sync_to_async(make_notification)
    seen = await make(vendor, "Seen", category=ORDERS, is_read=True)

    async with (
        asgi_server.connect(access_token_for(vendor.user)) as first_tab,
        asgi_server.connect(access_token_for(vendor.user)) as second_tab,
    ):
        for ws in (first_tab, second_tab):
            assert (await receive_json(ws))["unread_total"] == 0
        reply = await ask(first_tab, {"action": "mark_unread", "notification_id": seen.pk})
        assert reply["status"] == "success"
        pushed = await receive_json(second_tab)
        assert pushed == {"action": "unread_count_changed", "unread_counts": {ORDERS: 1},
                          "unread_total": 1}
        await assert_silent(first_tab, second_tab)
    row = await fetch(seen.pk)
    assert (row.is_read, row.readed_at) == (False, None)
