"""The origin validator: foreign pages refused, own hosts and non-browser clients let in."""

from __future__ import annotations

from typing import Any

import pytest
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import override_settings

from django_vendor_notifications.auth import JWTAuthMiddlewareStack
from django_vendor_notifications.origins import AllowedHostsOriginValidator, OriginValidator
from django_vendor_notifications.routing import websocket_urlpatterns
from tests.conftest import vendor_settings


class AcceptingConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        await self.accept()


async def handshake(application: Any, origin: bytes | None) -> bool:
    headers = [(b"origin", origin)] if origin is not None else []
    communicator = WebsocketCommunicator(application, "/", headers=headers)
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    return bool(connected)


def shop_validator(allowed: list[str] | None = None) -> OriginValidator:
    return OriginValidator(AcceptingConsumer.as_asgi(), allowed or ["shop.example.com"])


@pytest.mark.parametrize(
    "origin",
    [
        b"https://evil.example",
        b"https://shop.example.com.evil.example",
        b"https://evilshop.example.com",
        b"null",
        b"",
        b"not an origin",
        # Malformed: they cannot be parsed, which must be a refusal, never an error.
        b"http://[::1",
        b"http://shop.example.com:99999",
        b"https://shop.example.com:port",
        b"http://[shop.example.com]",
    ],
)
async def test_foreign_origin_refused(origin: bytes) -> None:
    assert await handshake(shop_validator(), origin) is False


@pytest.mark.parametrize("origin", [b"https://shop.example.com", b"http://shop.example.com:8000"])
async def test_allowed_host_accepted(origin: bytes) -> None:
    assert await handshake(shop_validator(), origin) is True


async def test_a_malformed_origin_among_good_ones_is_refused() -> None:
    headers = [(b"origin", b"https://shop.example.com"), (b"origin", b"http://[::1")]
    communicator = WebsocketCommunicator(shop_validator(), "/", headers=headers)
    connected, _ = await communicator.connect()
    assert connected is False


async def test_missing_origin_allowed_by_default() -> None:
    assert await handshake(shop_validator(), None) is True


async def test_missing_origin_refused_when_disallowed() -> None:
    with vendor_settings(ALLOW_MISSING_ORIGIN=False):
        assert await handshake(shop_validator(), None) is False
        # A browser from an allowed host is unaffected.
        assert await handshake(shop_validator(), b"https://shop.example.com") is True


async def test_wildcard_allows_missing_origin_even_when_disallowed() -> None:
    with vendor_settings(ALLOW_MISSING_ORIGIN=False):
        assert await handshake(shop_validator(["*"]), None) is True


async def test_setting_is_read_per_handshake() -> None:
    validator = shop_validator()
    with vendor_settings(ALLOW_MISSING_ORIGIN=False):
        assert await handshake(validator, None) is False
    assert await handshake(validator, None) is True


async def test_allowed_hosts_validator() -> None:
    with override_settings(ALLOWED_HOSTS=["shop.example.com", ".example.org"]):
        validator = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
    assert await handshake(validator, b"https://shop.example.com") is True
    assert await handshake(validator, b"https://api.example.org") is True
    assert await handshake(validator, b"https://evil.example") is False
    assert await handshake(validator, None) is True


async def test_allowed_hosts_validator_in_debug_without_hosts() -> None:
    with override_settings(ALLOWED_HOSTS=[], DEBUG=True):
        validator = AllowedHostsOriginValidator(AcceptingConsumer.as_asgi())
    assert await handshake(validator, b"http://localhost:3000") is True
    assert await handshake(validator, b"http://127.0.0.1:8000") is True
    assert await handshake(validator, b"https://evil.example") is False


@pytest.mark.django_db(transaction=True)
async def test_wrapping_the_real_stack(access_token: str, channel_layer: Any) -> None:
    with override_settings(ALLOWED_HOSTS=["shop.example.com"]):
        application = AllowedHostsOriginValidator(
            JWTAuthMiddlewareStack(URLRouter(websocket_urlpatterns))
        )
    path = f"/v1/ws/notifications/?token={access_token}"

    foreign = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"https://evil.example")]
    )
    connected, _ = await foreign.connect()
    assert connected is False

    own = WebsocketCommunicator(
        application, path, headers=[(b"origin", b"https://shop.example.com")]
    )
    connected, _ = await own.connect()
    assert connected is True
    assert (await own.receive_json_from(timeout=5))["action"] == "unread_notifications"
    await own.disconnect()
