"""Origin checking for the socket: refuse foreign browser pages, let non-browser clients in.

Channels' ``OriginValidator`` refuses a handshake without an ``Origin`` header unless ``"*"`` is
allowed. Browsers always send ``Origin``, so a missing one means a mobile app, a server or a
CLI: such a client cannot be steered by a foreign web page (cross-site WebSocket hijacking needs
a browser) and still has to present a valid access token. ``ALLOW_MISSING_ORIGIN`` (default
True) makes that policy explicit; set it to False to refuse them too.
"""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlparse

from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from django.conf import settings

from .conf import app_settings
from .refusal import refuse_handshake


class OriginValidator(ChannelsOriginValidator):
    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope["type"] != "websocket":
            raise ValueError("You cannot use OriginValidator on a non-WebSocket connection")
        try:
            allowed = self.valid_origin(parsed_origin(scope))
        except ValueError:
            # Malformed: refused. Channels' own check would raise on it (an HTTP 500 with a
            # traceback).
            allowed = False
        if allowed:
            return await self.application(scope, receive, send)
        # Not Channels' WebsocketDenier, which subscribes to the channel layer for every
        # refused handshake (see refusal.py).
        return await refuse_handshake(scope, receive, send)

    def valid_origin(self, parsed_origin: Any) -> bool:
        if parsed_origin is None:
            return app_settings.ALLOW_MISSING_ORIGIN or "*" in self.allowed_origins
        return bool(self.validate_origin(parsed_origin))


def AllowedHostsOriginValidator(application: Any) -> OriginValidator:  # noqa: N802
    """Allow the origins of ``ALLOWED_HOSTS`` (``DEBUG`` adds localhost), like Channels' helper."""
    allowed_hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not allowed_hosts:
        allowed_hosts = ["localhost", "127.0.0.1", "[::1]"]
    return OriginValidator(application, allowed_hosts)


def parsed_origin(scope: dict[str, Any]) -> Any:
    """The handshake's Origin as Channels reads it (the last Origin header, parsed, or None).

    Raises ValueError when any Origin header is a URL whose host and port cannot be read
    (``http://[::1``, a port of 99999): such a handshake is refused, never an error.
    """
    parsed = None
    for name, value in scope.get("headers", []):
        if name != b"origin":
            continue
        parsed = urlparse(value.decode("latin1"))  # latin-1 decodes any bytes
        parsed.hostname, parsed.port  # noqa: B018 - each raises ValueError when malformed
        if "[" in parsed.netloc:
            # Python 3.11.4+ refuses a bracketed host that is not an IPv6 address in urlparse
            # itself; 3.10 reads ``http://[shop.example.com]`` as that host.
            ipaddress.IPv6Address((parsed.hostname or "").split("%")[0])
    return parsed
