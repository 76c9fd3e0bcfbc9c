"""Origin checking for the socket: refuse foreign browser pages, let non-browser clients in.

Channels' ``OriginValidator`` refuses a handshake without an ``Origin`` header unless ``"*"`` is
allowed. Browsers always send ``Origin``, so a missing one means a mobile app, a server or a
CLI: such a client cannot be steered by a foreign web page (cross-site WebSocket hijacking needs
a browser) and still has to present a valid access token. ``ALLOW_MISSING_ORIGIN`` (default
True) makes that policy explicit; set it to False to refuse them too.
"""

from __future__ import annotations

from typing import Any

from channels.security.websocket import OriginValidator as ChannelsOriginValidator
from django.conf import settings

from .conf import app_settings


class OriginValidator(ChannelsOriginValidator):
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
