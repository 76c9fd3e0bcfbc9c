"""WebSocket URL patterns to include in the host's ASGI application.

    from django_vendor_notifications.auth import JWTAuthMiddlewareStack
    from django_vendor_notifications.routing import websocket_urlpatterns

    URLRouter([*websocket_urlpatterns, refuse_unknown_paths]) wrapped in
    JWTAuthMiddlewareStack(...)

The path comes from VENDOR_NOTIFICATIONS["WEBSOCKET_PATH"] when this module is first imported
(after Django's setup in asgi.py).
"""

from __future__ import annotations

from django.urls import path, re_path

from .conf import app_settings
from .consumers import NotificationConsumer
from .refusal import refuse_handshake

websocket_urlpatterns = [
    path(
        app_settings.WEBSOCKET_PATH,
        NotificationConsumer.as_asgi(),
        name="vendor-notifications",
    ),
]

#: The last route: a WebSocket path that matches no other route is refused at the handshake
#: (HTTP 403), instead of URLRouter's "No route found" error, an HTTP 500 and a logged
#: traceback for every such request, which anyone could send without a token. It refuses
#: without a consumer, so without a channel-layer round trip (see refusal.py).
#: (URLRouter takes any ASGI application; Django's stubs type re_path() for views.)
refuse_unknown_paths = re_path(r"", refuse_handshake, name="refuse-unknown-paths")  # type: ignore[arg-type]
