"""Seen and snoozed over a real server and Redis: mark_seen on one socket zeroes the badge on
another, and a snoozed notification leaves every socket's list and comes back to each, pushed
live, exactly once when it wakes. Covers daphne and uvicorn."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.utils import timezone
from websockets.asyncio.client import ClientConnection

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import (
    AsgiServer,
    ServerKind,
    assert_silent,
    receive_json,
    running_server,
    server_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ORDERS = "Order Notifications"


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def seen_snooze_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    kind = ServerKind(request.param, "redis")
    env = server_env(kind.channel_layer, vendor_settings={"SEEN": True, "SNOOZE": True})
    with running_server(kind, env, tmp_path_factory.mktemp("seen-snooze-server")) as server:
        yield server


async def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await receive_json(ws)


def ids_in(snapshot: dict[str, Any]) -> list[int]:
    return sorted(item["id"] for items in snapshot["notifications"].values() for item in items)


async def test_seen_on_one_socket_and_a_snooze_that_wakes_once_on_each(
    seen_snooze_server: AsgiServer, vendor: Vendor
) -> None:
    def make() -> list[int]:
        return [
            Notification.objects.create(vendor=vendor, category=ORDERS, message=f"m{i}").pk
            for i in range(2)
        ]

    ids = await database_sync_to_async(make)()
    token = await database_sync_to_async(access_token_for)(vendor.user)
    async with (
        seen_snooze_server.connect(token) as first,
        seen_snooze_server.connect(token) as second,
    ):
        for ws in (first, second):
            snapshot = await receive_json(ws)
            assert snapshot["unseen_count"] == 2 and ids_in(snapshot) == ids

        reply = await ask(first, {"action": "mark_seen", "up_to_id": ids[-1], "request_id": "s"})
        assert (reply["updated"], reply["unseen_count"]) == (2, 0)
        changed = await receive_json(second)
        assert changed["action"] == "unread_count_changed" and changed["unseen_count"] == 0

        until = timezone.now() + datetime.timedelta(seconds=1.5)
        reply = await ask(
            first, {"action": "snooze", "notification_id": ids[0], "until": until.isoformat()}
        )
        assert reply["status"] == "success" and reply["unread_total"] == 1
        snoozed = await receive_json(second)
        assert snoozed["action"] == "notification_snoozed"
        assert (snoozed["notification_id"], snoozed["unread_total"]) == (ids[0], 1)

        async with seen_snooze_server.connect(token) as third:
            snapshot = await receive_json(third)
            assert ids_in(snapshot) == [ids[1]] and snapshot["unread_total"] == 1
            # Every socket's timer fires; the row is woken once and each socket hears it once.
            for ws in (first, second, third):
                woke = await receive_json(ws, timeout=5)
                assert woke["action"] == "notifications_woke"
                assert [item["id"] for item in woke["notifications"]] == [ids[0]]
                assert (woke["unread_total"], woke["unseen_count"]) == (2, 0)
            await assert_silent(first, second, third)
