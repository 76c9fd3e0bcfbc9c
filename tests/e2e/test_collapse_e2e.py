"""Collapsed notifications over a real server and Redis (each e2e server kind): notifications
with one collapse key published by another process reach an open socket with collapsed_count
1, 2, 3; a socket that connects afterwards gets one item standing for the three; mark_read of
it reads all three and the vendor's other sockets hear it with exact counts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from websockets.asyncio.client import ClientConnection

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import (
    SERVER_KINDS,
    AsgiServer,
    ServerKind,
    assert_silent,
    receive_json,
    running_server,
    server_env,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module", params=SERVER_KINDS, ids=str)
def collapse_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    kind: ServerKind = request.param
    env = server_env(kind.channel_layer, vendor_settings={"COLLAPSE": True})
    with running_server(kind, env, tmp_path_factory.mktemp("collapse-server")) as server:
        yield server


ORDERS = "Order Notifications"
KEY = "new-order"

NOTIFY = """
import json
from django_vendor_notifications.services import notify
ids = [notify({vendor}, f"Order #{{n}}", category="{orders}", collapse_key="{key}").pk
       for n in range(3)]
print(json.dumps(ids))
"""


async def ask(ws: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    await ws.send(json.dumps(message))
    return await receive_json(ws)


async def test_a_collapsed_key_is_pushed_counted_shown_once_and_read_at_once(
    collapse_server: AsgiServer, vendor: Vendor
) -> None:
    asgi_server = collapse_server
    token = await database_sync_to_async(access_token_for)(vendor.user)
    async with asgi_server.connect(token) as live, asgi_server.connect(token) as tab:
        for ws in (live, tab):
            assert (await receive_json(ws))["notifications"] == {}

        ids = json.loads(
            await asgi_server.run_python(NOTIFY.format(vendor=vendor.pk, orders=ORDERS, key=KEY))
        )
        pushed = [(await receive_json(live))["notification"] for _ in ids]
        assert [item["id"] for item in pushed] == ids
        assert [(item["collapse_key"], item["collapsed_count"]) for item in pushed] == [
            (KEY, 1),
            (KEY, 2),
            (KEY, 3),
        ]
        for _ in ids:
            await receive_json(tab)

        async with asgi_server.connect(token) as later:
            first = await receive_json(later)
            [item] = first["notifications"][ORDERS]
            assert (item["id"], item["collapsed_count"]) == (ids[-1], 3)
            assert (first["unread_counts"], first["unread_total"]) == ({ORDERS: 3}, 3)

            reply = await ask(later, {"action": "mark_read", "notification_id": ids[-1]})
            assert (reply["status"], reply["collapse_key"], reply["updated"]) == ("success", KEY, 3)
            for ws in (live, tab):
                assert await receive_json(ws) == {
                    "action": "notification_read",
                    "notification_id": ids[-1],
                    "unread_total": 0,
                    "collapse_key": KEY,
                    "updated": 3,
                }
            counts = await ask(later, {"action": "get_unread_counts"})
            assert (counts["unread_counts"], counts["unread_total"]) == ({}, 0)
            await assert_silent(live, tab, later)
