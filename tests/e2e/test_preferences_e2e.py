"""Preferences over a real server and Redis: a user who muted a category gets none of its
pushes on an open socket, while another user of the same vendor does, and both have it in
sync. Covers daphne and uvicorn, and a notification published by another process."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import ClientConnection

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import AsgiServer, ServerKind, assert_silent, launch_server, receive_json, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ORDERS = "Order Notifications"
GENERAL = "General Notifications"

NOTIFY = """
import json
from django_vendor_notifications.services import notify
ids = [notify({vendor}, "Order #1", category="{orders}").pk,
       notify({vendor}, "Hello", category="{general}").pk]
print(json.dumps(ids))
"""


@pytest.fixture(scope="module", params=["daphne", "uvicorn"])
def preferences_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    kind = ServerKind(request.param, "redis")
    env = server_env(kind.channel_layer, vendor_settings={"PREFERENCES": True})
    server = launch_server(kind, env, tmp_path_factory.mktemp("preferences-server"))
    try:
        yield server
    finally:
        server.stop()


async def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await receive_json(ws)


async def test_a_muted_category_reaches_only_the_users_who_did_not_mute_it(
    preferences_server: AsgiServer, vendor: Vendor, staff: Any
) -> None:
    owner_token = await database_sync_to_async(access_token_for)(vendor.user)
    staff_token = await database_sync_to_async(access_token_for)(staff)
    async with (
        preferences_server.connect(owner_token) as owner_ws,
        preferences_server.connect(owner_token) as owner_tab,
        preferences_server.connect(staff_token) as staff_ws,
    ):
        for ws in (owner_ws, owner_tab, staff_ws):
            assert (await receive_json(ws))["action"] == "unread_notifications"

        reply = await ask(owner_ws, {"action": "set_preferences",
                                     "preferences": {ORDERS: "muted"}, "request_id": "m"})
        assert reply["status"] == "success"
        assert reply["preferences"] == {ORDERS: "muted"}
        assert await receive_json(owner_tab) == {"action": "preferences_changed",
                                                 "preferences": {ORDERS: "muted"}}
        await assert_silent(owner_ws, staff_ws)

        order_id, general_id = json.loads(await preferences_server.run_python(
            NOTIFY.format(vendor=vendor.pk, orders=ORDERS, general=GENERAL)
        ))
        # The staff member gets both; the owner's sockets only the general one.
        staff_ids = [(await receive_json(staff_ws))["notification"]["id"] for _ in range(2)]
        assert staff_ids == [order_id, general_id]
        for ws in (owner_ws, owner_tab):
            assert (await receive_json(ws))["notification"]["id"] == general_id
        await assert_silent(owner_ws, owner_tab, staff_ws)

        # Both still have it in sync and in the counts.
        for ws in (owner_ws, staff_ws):
            synced = await ask(ws, {"action": "sync", "since_id": order_id - 1})
            assert [item["id"] for item in synced["notifications"]] == [order_id, general_id]
            counts = await ask(ws, {"action": "get_unread_counts"})
            assert counts["unread_counts"] == {GENERAL: 1, ORDERS: 1}

        # A new socket of the owner reads the choice on connect.
        async with preferences_server.connect(owner_token) as later_ws:
            first = await receive_json(later_ws)
            assert first["unread_counts"] == {GENERAL: 1, ORDERS: 1}
            preferences = await ask(later_ws, {"action": "get_preferences"})
            assert preferences["preferences"] == {ORDERS: "muted"}
            await preferences_server.run_python(
                NOTIFY.format(vendor=vendor.pk, orders=ORDERS, general=GENERAL)
            )
            assert (await receive_json(later_ws))["notification"]["message"] == "Hello"
            await assert_silent(later_ws)
