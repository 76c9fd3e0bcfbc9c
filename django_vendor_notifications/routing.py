"""WebSocket URL patterns to include in the host's ASGI application.

    from django_vendor_notifications.auth import JWTAuthMiddlewareStack
    from django_vendor_notifications.routing import websocket_urlpatterns

    URLRouter(websocket_urlpatterns) wrapped in JWTAuthMiddlewareStack(...)

The path comes from VENDOR_NOTIFICATIONS["WEBSOCKET_PATH"] when this module is first imported
(after Django's setup in asgi.py).
"""

from __future__ import annotations

from django.urls import path

from .conf import app_settings
from .consumers import NotificationConsumer

websocket_urlpatterns = [
    path(
        app_settings.WEBSOCKET_PATH,
        NotificationConsumer.as_asgi(),
        name="vendor-notifications",
    ),
]
