"""The email digest over a real server: a socket's connect and close, in the server's
process, record its user's presence in the database, and the digest command, in another
process (this one), emails the user what arrived after they left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.core import mail
from django.core.management import call_command

from django_vendor_notifications.models import Notification, UserPresence
from tests.conftest import access_token_for, vendor_settings
from tests.testapp.models import Vendor

from .conftest import AsgiServer, ServerKind, receive_json, running_server, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: Short, for the test: the command (this process) runs with it; the server needs only DIGESTS.
DIGEST_AFTER = 0.5


@pytest.fixture(scope="module")
def digests_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    env = server_env("redis", vendor_settings={"DIGESTS": True})
    log_dir = tmp_path_factory.mktemp("digests-server")
    with running_server(ServerKind("daphne", "redis"), env, log_dir) as server:
        yield server


@database_sync_to_async
def last_seen(user: Any) -> Any:
    return UserPresence.objects.filter(user=user).values_list("last_seen_at", flat=True).first()


async def test_a_user_who_left_is_emailed_what_came_after(
    digests_server: AsgiServer, vendor: Vendor
) -> None:
    owner = vendor.user
    owner.email = "owner@example.com"
    await database_sync_to_async(owner.save)()
    async with digests_server.connect(await database_sync_to_async(access_token_for)(owner)) as ws:
        assert (await receive_json(ws))["action"] == "unread_notifications"
        on_connect = await last_seen(owner)
        assert on_connect is not None
    # The server records the close in the background.
    deadline = time.monotonic() + 5
    while (left := await last_seen(owner)) == on_connect and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert left > on_connect

    await database_sync_to_async(Notification.objects.create)(
        vendor=vendor, message="Order #7 placed while you were away"
    )
    await asyncio.sleep(DIGEST_AFTER + 0.2)
    with vendor_settings(DIGESTS=True, DIGEST_AFTER=DIGEST_AFTER):
        await database_sync_to_async(call_command)("send_notification_digests")
    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    assert "Order #7 placed while you were away" in email.body
