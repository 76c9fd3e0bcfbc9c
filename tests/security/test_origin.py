"""Threat 4: a foreign web page opening a socket with a visitor's browser (and token).

The servers serve tests/asgi_origin.py: the socket behind AllowedHostsOriginValidator, with
ALLOWED_HOSTS = testserver, localhost, 127.0.0.1. The validator refuses the handshake itself
(HTTP 403), before authentication: a foreign page learns nothing, not even a close code.
"""

from __future__ import annotations

import pytest
from websockets.exceptions import InvalidStatus

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import SecurityServer, close_code, receive_frame

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def refused(server: SecurityServer, token: str, origin: str | None) -> int:
    """The HTTP status of a refused handshake."""
    with pytest.raises(InvalidStatus) as refusal:
        async with server.connect(token, bearer=True, origin=origin):
            pytest.fail("the handshake was accepted")
    return refusal.value.response.status_code


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://localhost.evil.example",
        "http://evil-localhost",
        "null",
        "file://",
    ],
)
async def test_foreign_origin_refused_at_the_handshake(
    daphne_server: SecurityServer, vendor: Vendor, origin: str
) -> None:
    assert await refused(daphne_server, access_token_for(vendor.user), origin) == 403


@pytest.mark.parametrize("origin", ["http://localhost", "https://127.0.0.1:8443"])
async def test_allowed_origin_accepted(
    daphne_server: SecurityServer, vendor: Vendor, origin: str
) -> None:
    async with daphne_server.connect(access_token_for(vendor.user), origin=origin) as ws:
        assert (await receive_frame(ws))["action"] == "unread_notifications"


async def test_missing_origin_allowed_by_default(
    daphne_server: SecurityServer, vendor: Vendor
) -> None:
    """A mobile app or a server sends no Origin; it still needs a valid token."""
    async with daphne_server.connect(access_token_for(vendor.user), origin=None) as ws:
        assert (await receive_frame(ws))["action"] == "unread_notifications"
    async with daphne_server.connect("not-a-token", origin=None) as ws:
        assert await close_code(ws) == 4001


async def test_missing_origin_refused_when_disallowed(
    strict_server: SecurityServer, vendor: Vendor
) -> None:
    token = access_token_for(vendor.user)
    assert await refused(strict_server, token, None) == 403
    assert await refused(strict_server, token, "https://evil.example") == 403
    async with strict_server.connect(token, bearer=True) as ws:
        assert (await receive_frame(ws))["action"] == "unread_notifications"
