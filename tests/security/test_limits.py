"""Threat 5: a client that sends too much, too often, or opens too many sockets.

App limits (defaults): MAX_MESSAGE_BYTES 16 KiB counted in UTF-8 bytes, a token bucket of
10 messages/s with a burst of 20 and a close (4029) after 40 refused in a row, 10 sockets per user
and server process. Above them the server's own limit (daphne --websocket-max-message-size,
uvicorn --ws-max-size, 64 KiB here) drops a message before the app sees it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import (
    SERVER_MAX_MESSAGE_BYTES,
    SecurityServer,
    close_code,
    frames_until_close,
    receive_frame,
    still_serves,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

MAX_MESSAGE_BYTES = 16 * 1024
RATE_LIMIT_BURST = 20
RATE_LIMIT_CLOSE_AFTER = 40
MAX_SOCKETS_PER_USER = 10


def message_of(size: int, filler: str) -> str:
    """A valid load_more request of exactly ``size`` UTF-8 bytes, padded with ``filler``."""
    text = json.dumps({"action": "load_more", "page": 1, "request_id": "big", "pad": ""})
    missing = size - len(text.encode())
    width = len(filler.encode())
    pad = filler * (missing // width) + "x" * (missing % width)
    text = json.dumps(
        {"action": "load_more", "page": 1, "request_id": "big", "pad": pad}, ensure_ascii=False
    )
    assert len(text.encode()) == size
    return text


@pytest.mark.parametrize("filler", ["x", "€", "😀"], ids=["ascii", "3-byte", "4-byte"])
@pytest.mark.invalid_client_frames
async def test_message_size_is_counted_in_utf8_bytes(
    daphne_server: SecurityServer, vendor: Vendor, filler: str, no_traceback: Any
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user)) as ws:
        await receive_frame(ws)
        await ws.send(message_of(MAX_MESSAGE_BYTES, filler))
        at_limit = await receive_frame(ws)
        over = message_of(MAX_MESSAGE_BYTES + 1, filler)
        # Multi-byte: far fewer characters than bytes; the limit is in bytes.
        assert len(over) <= MAX_MESSAGE_BYTES or filler == "x"
        await ws.send(over)
        too_large = await receive_frame(ws)
        await still_serves(ws)

    assert at_limit["action"] == "load_more"
    assert at_limit["request_id"] == "big"
    assert too_large["action"] == "error"
    assert too_large["error"] == "message_too_large"
    # Not parsed, so not even its request_id is echoed.
    assert "request_id" not in too_large


@pytest.mark.invalid_client_frames
async def test_message_between_the_app_and_server_limits_gets_message_too_large(
    daphne_server: SecurityServer, vendor: Vendor, no_traceback: Any
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user)) as ws:
        await receive_frame(ws)
        await ws.send(message_of(SERVER_MAX_MESSAGE_BYTES - 1024, "€"))
        assert (await receive_frame(ws))["error"] == "message_too_large"
        await still_serves(ws)


@pytest.mark.invalid_client_frames
async def test_binary_frame_gets_binary_not_supported(
    daphne_server: SecurityServer, vendor: Vendor, no_traceback: Any
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user)) as ws:
        await receive_frame(ws)
        await ws.send(b'{"action": "load_more", "page": 1}')
        error = await receive_frame(ws)
        await still_serves(ws)
    assert error["action"] == "error"
    assert error["error"] == "binary_not_supported"


@pytest.mark.parametrize(
    ("server_name", "sent_code", "seen_code"),
    # daphne's autobahn fails the connection by dropping TCP (its failByDrop default): no close
    # frame, so the client sees 1006. uvicorn's websockets closes properly with 1009.
    [("daphne_server", None, 1006), ("uvicorn_server", 1009, 1009)],
    ids=["daphne", "uvicorn"],
)
@pytest.mark.invalid_client_frames
async def test_message_over_the_server_limit_is_refused_by_the_server(
    request: pytest.FixtureRequest,
    server_name: str,
    sent_code: int | None,
    seen_code: int,
    vendor: Vendor,
    no_traceback: Any,
) -> None:
    """The server ends the connection without handing the message to the app; other sockets
    are unaffected."""
    server: SecurityServer = request.getfixturevalue(server_name)
    token = access_token_for(vendor.user)
    async with server.connect(token) as ws, server.connect(token) as bystander:
        await receive_frame(ws)
        await receive_frame(bystander)
        with contextlib.suppress(ConnectionClosed):
            await ws.send("x" * (SERVER_MAX_MESSAGE_BYTES + 1))
        frames, code = await frames_until_close(ws)
        await still_serves(bystander)
    assert frames == []
    assert code == sent_code
    assert ws.close_code == seen_code
    assert "Traceback" not in server.log()
    server.assert_running()


def is_rate_limited(frame: dict[str, Any]) -> bool:
    return frame.get("error") == "rate_limited"


@pytest.mark.invalid_client_frames
async def test_burst_past_the_rate_limit_gets_rate_limited_then_recovers(
    daphne_server: SecurityServer, vendor: Vendor, no_traceback: Any
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user)) as ws:
        await receive_frame(ws)
        for number in range(RATE_LIMIT_BURST + 10):
            await ws.send(json.dumps({"action": "ping", "request_id": number}))
        replies = [await receive_frame(ws) for _ in range(RATE_LIMIT_BURST + 10)]
        await asyncio.sleep(1)  # the bucket refills at 10 messages/s
        await still_serves(ws)

    served = [frame for frame in replies if not is_rate_limited(frame)]
    limited = [frame for frame in replies if is_rate_limited(frame)]
    assert len(served) >= RATE_LIMIT_BURST
    assert 1 <= len(limited) <= 10
    assert all(frame["error"] == "unknown_action" for frame in served)
    assert all(frame["action"] == "error" and frame["message"] for frame in limited)


@pytest.mark.invalid_client_frames
async def test_sustained_flood_is_closed_4029(
    daphne_server: SecurityServer, vendor: Vendor, staff: Any, no_traceback: Any
) -> None:
    flood = RATE_LIMIT_BURST + RATE_LIMIT_CLOSE_AFTER + 40
    async with (
        daphne_server.connect(access_token_for(vendor.user)) as ws,
        daphne_server.connect(access_token_for(staff)) as bystander,
    ):
        await receive_frame(ws)
        await receive_frame(bystander)
        with contextlib.suppress(ConnectionClosed):
            for number in range(flood):
                await ws.send(json.dumps({"action": "ping", "request_id": number}))
        frames, code = await frames_until_close(ws)
        await still_serves(bystander)

    assert code == 4029
    limited = [frame for frame in frames if is_rate_limited(frame)]
    assert len(limited) == RATE_LIMIT_CLOSE_AFTER
    assert len(frames) - len(limited) >= RATE_LIMIT_BURST


async def test_socket_past_the_per_user_limit_is_closed_4029(
    daphne_server: SecurityServer, vendor: Vendor, staff: Any, no_traceback: Any
) -> None:
    token = access_token_for(vendor.user)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(daphne_server.connect(token))
            for _ in range(MAX_SOCKETS_PER_USER)
        ]
        for ws in sockets:
            assert (await receive_frame(ws))["action"] == "unread_notifications"
        async with daphne_server.connect(token, bearer=True) as eleventh:
            assert await close_code(eleventh) == 4029
        for number, ws in enumerate(sockets):
            await still_serves(ws, f"still-{number}")
        # The limit is per user: the vendor's staff member still gets in.
        async with daphne_server.connect(access_token_for(staff)) as other_user:
            assert (await receive_frame(other_user))["action"] == "unread_notifications"
        # A closed socket frees its place (the server counts the disconnect asynchronously).
        await sockets.pop().close()
        for _ in range(50):
            async with daphne_server.connect(token) as again:
                with contextlib.suppress(ConnectionClosed):
                    if (await receive_frame(again))["action"] == "unread_notifications":
                        break
            await asyncio.sleep(0.1)
        else:
            pytest.fail("the closed socket's place was never freed")
