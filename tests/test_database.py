"""A database that refuses or hangs: an ``unavailable`` answer, a 4013 connect, an open socket.

In-process, with the failure put where Django raises it (inside the thread hop). The real
outage, a PostgreSQL server stopped and started again, is in tests/e2e/test_database_outage.py.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError

from django_vendor_notifications import actions, consumers, delivery, payloads, services, timers
from django_vendor_notifications.database import DatabaseUnavailable, in_thread
from django_vendor_notifications.protocol import CloseCode, ErrorCode
from tests.conftest import communicator_for, connect, vendor_settings

pytestmark = pytest.mark.django_db(transaction=True)


def refused(*args: Any) -> Any:
    raise OperationalError('connection to server at "127.0.0.1", port 5432 failed: refused')


async def test_a_refusal_becomes_database_unavailable() -> None:
    with pytest.raises(DatabaseUnavailable, match="refused"):
        await in_thread(refused)()


async def test_a_hang_becomes_database_unavailable_after_the_timeout_and_the_queue_is_dropped() -> (
    None
):
    release = threading.Event()
    ran: list[str] = []

    def hang() -> None:
        ran.append("hang")
        release.wait(5)

    def queued() -> None:
        ran.append("queued")

    with vendor_settings(DATABASE_TIMEOUT=0.2):
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailable, match="no answer within 0.2 s"):
            await in_thread(hang)()
        assert time.monotonic() - started < 1
        # Behind the hung call (one database thread per process): also given up, and dropped.
        with pytest.raises(DatabaseUnavailable):
            await in_thread(queued)()
    release.set()
    time.sleep(0.1)
    assert ran == ["hang"]


async def test_a_request_gets_unavailable_without_a_traceback_and_the_socket_stays(
    access_token: str, channel_layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    socket, _ = await connect(access_token)
    try:
        with monkeypatch.context() as patch, caplog.at_level(logging.WARNING):
            patch.setattr(actions, "unread_counts", in_thread(refused))
            await socket.send_json_to({"action": "get_unread_counts", "request_id": 7})
            reply = await socket.receive_json_from(timeout=5)
        assert reply == {
            "action": "error",
            "error": ErrorCode.UNAVAILABLE,
            "message": "The database is unavailable; try again shortly.",
            "request_id": 7,
        }
        assert "database is unavailable" in caplog.text
        assert not [record for record in caplog.records if record.exc_info]
        # The database is back: the same socket works.
        await socket.send_json_to({"action": "get_unread_counts", "request_id": 8})
        reply = await socket.receive_json_from(timeout=5)
        assert reply["action"] == "get_unread_counts" and reply["request_id"] == 8
    finally:
        await socket.disconnect()


async def test_a_hung_request_is_answered_unavailable_within_database_timeout(
    access_token: str, channel_layer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    socket, _ = await connect(access_token)
    release = threading.Event()
    monkeypatch.setattr(actions, "unread_counts", in_thread(lambda vendor_id: release.wait(5)))
    try:
        with vendor_settings(DATABASE_TIMEOUT=0.3):
            started = time.monotonic()
            await socket.send_json_to({"action": "get_unread_counts"})
            reply = await socket.receive_json_from(timeout=5)
            assert reply["error"] == ErrorCode.UNAVAILABLE
            assert time.monotonic() - started < 2
    finally:
        release.set()
        await socket.disconnect()


async def test_a_connect_while_the_database_refuses_is_closed_with_4013(
    access_token: str, channel_layer: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
) -> None:
    monkeypatch.setattr(consumers, "start_session", in_thread(refused))
    socket = communicator_for(access_token)
    with caplog.at_level(logging.WARNING):
        connected, _ = await socket.connect()
        # Accepted first, so a browser sees the code (a refused handshake is 1006).
        assert connected
        assert await socket.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": CloseCode.TRY_AGAIN_LATER,
        }
    assert "database is unavailable" in caplog.text
    assert not [record for record in caplog.records if record.exc_info]
    await socket.disconnect()


async def test_a_gap_that_cannot_be_filled_now_is_filled_once_the_database_is_back(
    access_token: str,
    channel_layer: Any,
    vendor: Any,
    monkeypatch: pytest.MonkeyPatch,
    make_notification: Any,
) -> None:
    monkeypatch.setattr(timers, "CATCH_UP_AFTER", 0.2)
    socket, _ = await connect(access_token)
    consumer_rows_since = consumers.rows_since_shared.read
    try:
        consumers.rows_since_shared.read = in_thread(refused)
        notification = await database_sync_to_async(make_notification)(vendor)
        # A push naming an id this socket never saw: it must fill the gap from the table,
        # which refuses; then it tries again and, the database back, sends the row.
        frame = payloads.new_notification_frame(services._row(notification))
        event = delivery.push_event(
            payloads.encode(frame), notification_id=notification.pk + 1, previous_id=notification.pk
        )
        await delivery.asend_event(delivery.vendor_group(vendor.pk), event)
        await socket.receive_nothing(timeout=0.1)
        consumers.rows_since_shared.read = consumer_rows_since
        frame = await socket.receive_json_from(timeout=5)
        assert frame["action"] == "new_notification"
        assert frame["notification"]["id"] == notification.pk
    finally:
        consumers.rows_since_shared.read = consumer_rows_since
        await socket.disconnect()
