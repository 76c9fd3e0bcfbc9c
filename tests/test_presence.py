"""Presence for the email digest: real sockets write their user's last_seen_at on connect, on
the periodic revalidation and on disconnect, and nothing at all while DIGESTS is off."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError
from django.utils import timezone

from django_vendor_notifications import presence
from django_vendor_notifications.database import in_thread
from django_vendor_notifications.models import Notification, UserPresence
from tests.conftest import access_token_for, connect, settle, vendor_settings
from tests.test_queries import OWNER_CONNECT_QUERIES, connect_counting

pytestmark = pytest.mark.django_db(transaction=True)


@database_sync_to_async
def last_seen(user: Any) -> datetime.datetime | None:
    row = UserPresence.objects.filter(user=user).first()
    return None if row is None else row.last_seen_at


async def test_connect_and_disconnect_record_the_user_as_last_seen(
    access_token: str, owner: Any, channel_layer: Any
) -> None:
    with vendor_settings(DIGESTS=True):
        before = timezone.now()
        socket, first = await connect(access_token)
        assert first["action"] == "unread_notifications"
        on_connect = await last_seen(owner)
        assert on_connect is not None and on_connect >= before
        await settle(socket)
        await socket.disconnect()
        await presence.settled()
        on_disconnect = await last_seen(owner)
    assert on_disconnect is not None and on_disconnect > on_connect


async def test_an_open_socket_stays_present_through_its_revalidation(
    access_token: str, owner: Any, channel_layer: Any
) -> None:
    with vendor_settings(DIGESTS=True, REVALIDATE_INTERVAL=0.2):
        socket, _ = await connect(access_token)
        on_connect = await last_seen(owner)
        await asyncio.sleep(0.5)
        refreshed = await last_seen(owner)
        await socket.disconnect()
        await presence.settled()
    assert on_connect is not None and refreshed is not None
    assert refreshed > on_connect


async def test_with_digests_off_no_presence_is_written(
    access_token: str, owner: Any, channel_layer: Any
) -> None:
    with vendor_settings(REVALIDATE_INTERVAL=0.1):
        socket, _ = await connect(access_token)
        await asyncio.sleep(0.3)
        await socket.disconnect()
    await presence.settled()
    assert not await database_sync_to_async(UserPresence.objects.exists)()


async def counted_connect(token: str) -> int:
    """The queries of one connect and its first frame; the socket is closed afterwards and
    its disconnect write awaited, so it is not counted in the next."""
    socket, queries = await connect_counting(token)
    await socket.disconnect()
    await presence.settled()
    return queries


async def test_a_connect_writes_presence_in_its_one_hop(
    vendor: Any, owner: Any, channel_layer: Any
) -> None:
    await database_sync_to_async(Notification.objects.create)(vendor=vendor, message="Order")
    token = access_token_for(owner)
    # Holds the groups, so the connects counted need no catch-up after their first frame.
    holder, _ = await connect(token)
    await settle(holder)
    digests_off = await counted_connect(token)
    with vendor_settings(DIGESTS=True):
        # The user's first connect ever inserts their row; every later one updates it.
        first_ever = await counted_connect(token)
        digests_on = await counted_connect(token)
    await holder.disconnect()
    assert digests_off == OWNER_CONNECT_QUERIES
    assert digests_on == OWNER_CONNECT_QUERIES + 1
    assert first_ever > digests_on


def refused(*args: Any) -> None:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')


async def test_a_disconnect_while_the_database_refuses_is_only_logged(
    access_token: str,
    owner: Any,
    channel_layer: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with vendor_settings(DIGESTS=True):
        socket, _ = await connect(access_token)
        await settle(socket)
        on_connect = await last_seen(owner)
        with caplog.at_level(logging.WARNING, logger="django_vendor_notifications.presence"):
            monkeypatch.setattr(presence, "_seen_in_thread", in_thread(refused))
            await socket.disconnect()
            await presence.settled()
    assert f"Could not record when user {owner.pk}'s socket closed" in caplog.text
    # The connect's time stays: the user counts as away since then.
    assert await last_seen(owner) == on_connect


def test_seen_is_an_upsert_and_opt_out_keeps_the_rest(owner: Any) -> None:
    earlier = timezone.now() - datetime.timedelta(hours=2)
    presence.seen(owner.pk, at=earlier)
    UserPresence.objects.filter(user=owner).update(digested_up_to=41)
    presence.set_digest_opt_out(owner.pk)
    presence.seen(owner.pk)
    row = UserPresence.objects.get(user=owner)
    assert row.last_seen_at > earlier
    assert row.digested_up_to == 41
    assert row.digest_opt_out is True


def test_opting_out_before_the_first_connect_is_kept(owner: Any) -> None:
    presence.set_digest_opt_out(owner.pk, False)
    assert not UserPresence.objects.exists()
    presence.set_digest_opt_out(owner.pk)
    presence.seen(owner.pk)
    assert UserPresence.objects.get(user=owner).digest_opt_out is True
