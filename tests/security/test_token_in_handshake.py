"""Threat 1: the token travels in the handshake and never reaches a log line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.error
import urllib.request
from typing import Any

import jwt
import pytest
from rest_framework_simplejwt.tokens import AccessToken

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import SecurityServer, close_code, receive_frame, still_serves

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_bearer_subprotocol_is_accepted_with_bearer(
    daphne_server: SecurityServer, vendor: Vendor
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user), bearer=True) as ws:
        assert ws.subprotocol == "bearer"
        assert (await receive_frame(ws))["action"] == "unread_notifications"
        await still_serves(ws)


async def test_query_string_token_still_works_by_default(
    daphne_server: SecurityServer, vendor: Vendor
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user)) as ws:
        assert ws.subprotocol is None
        assert (await receive_frame(ws))["action"] == "unread_notifications"


async def test_bearer_with_a_bad_token_is_closed_4001(
    daphne_server: SecurityServer, vendor: Vendor
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user) + "x", bearer=True) as ws:
        # Accepted with "bearer" first, or a browser would see a failed handshake, not 4001.
        assert ws.subprotocol == "bearer"
        assert await close_code(ws) == 4001


async def test_bearer_without_a_token_is_closed_4001(daphne_server: SecurityServer) -> None:
    async with daphne_server.connect(subprotocols=["bearer"]) as ws:
        assert ws.subprotocol == "bearer"
        assert await close_code(ws) == 4001


async def test_query_string_token_refused_when_turned_off(
    strict_server: SecurityServer, vendor: Vendor
) -> None:
    token = access_token_for(vendor.user)
    async with strict_server.connect(token) as ws:
        assert await close_code(ws) == 4001
    async with strict_server.connect(token, bearer=True) as ws:
        assert ws.subprotocol == "bearer"
        assert (await receive_frame(ws))["action"] == "unread_notifications"


def parts(token: str) -> list[str]:
    """The token and its signature: neither may appear in a log line."""
    return [token, token.rsplit(".", 1)[-1]]


async def test_no_token_in_the_server_log(
    daphne_server: SecurityServer, vendor: Vendor, customer: Any
) -> None:
    valid = access_token_for(vendor.user)
    refreshed = access_token_for(vendor.user)
    wrong_key = jwt.encode(
        dict(AccessToken.for_user(vendor.user).payload), "k" * 40, algorithm="HS256"
    )
    no_vendor = access_token_for(customer)
    offset = daphne_server.log_offset()

    async with daphne_server.connect(valid) as ws:
        await receive_frame(ws)
        await ws.send(json.dumps({"action": "refresh_token", "token": refreshed}))
        assert (await receive_frame(ws))["status"] == "success"
        await ws.send(json.dumps({"action": "refresh_token", "token": wrong_key}))
        assert await close_code(ws) == 4001
    async with daphne_server.connect(valid, bearer=True) as ws:
        await receive_frame(ws)
    for token, bearer, code in [
        (wrong_key, False, 4001),
        (wrong_key, True, 4001),
        (no_vendor, False, 4003),
        (no_vendor, True, 4003),
    ]:
        async with daphne_server.connect(token, bearer=bearer) as ws:
            assert await close_code(ws) == code

    log = daphne_server.log_since(offset)
    # The log is live: daphne's access log and the debug lines of the connections are in it.
    assert "WSCONNECT /v1/ws/notifications/" in log
    assert "WebSocket incoming frame" in log
    for token in (valid, refreshed, wrong_key, no_vendor):
        for secret in parts(token):
            assert secret not in log


async def test_bearer_token_stays_out_of_uvicorns_access_log(
    uvicorn_server: SecurityServer, vendor: Vendor
) -> None:
    """uvicorn's access log (on here) prints the request target with its query string, so a
    ``?token=`` lands in it - docs/security.md shows how to turn it off or redact it. The
    header does not."""
    token = access_token_for(vendor.user)
    offset = uvicorn_server.log_offset()
    async with uvicorn_server.connect(token, bearer=True) as ws:
        assert ws.subprotocol == "bearer"
        assert (await receive_frame(ws))["action"] == "unread_notifications"
    log = uvicorn_server.log_since(offset)
    assert '"WebSocket /v1/ws/notifications/" [accepted]' in log
    for secret in parts(token):
        assert secret not in log


async def test_query_string_token_is_redacted_in_uvicorns_logs_with_the_filter(
    uvicorn_redacting_server: SecurityServer, vendor: Vendor
) -> None:
    """With RedactTokens on uvicorn's loggers (docs/security.md), neither its socket line nor
    its access log line for a plain HTTP request to the socket URL holds the token."""
    server = uvicorn_redacting_server
    token = access_token_for(vendor.user)
    offset = server.log_offset()
    async with server.connect(token) as ws:
        assert (await receive_frame(ws))["action"] == "unread_notifications"
    url = f"http://127.0.0.1:{server.server.port}/v1/ws/notifications/?token={token}"
    with contextlib.suppress(urllib.error.HTTPError):
        urllib.request.urlopen(urllib.request.Request(url), timeout=5).close()
    deadline = time.monotonic() + 5
    while '"GET /v1/ws/notifications/?token=[redacted] HTTP/1.1"' not in (
        log := server.log_since(offset)
    ):
        assert time.monotonic() < deadline, log[-3000:]
        await asyncio.sleep(0.05)
    assert '"WebSocket /v1/ws/notifications/?token=[redacted]" [accepted]' in log
    for secret in parts(token):
        assert secret not in log
