"""tests/asgi.py behind the app's origin validator, ending with refuse_unknown_paths, as the docs
tell a host to deploy it."""

from __future__ import annotations

import tests.asgi  # Sets Django up before anything below touches the models.

http_application = tests.asgi.http_application

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from django_vendor_notifications.auth import JWTAuthMiddlewareStack  # noqa: E402
from django_vendor_notifications.origins import AllowedHostsOriginValidator  # noqa: E402
from django_vendor_notifications.routing import (  # noqa: E402
    refuse_unknown_paths,
    websocket_urlpatterns,
)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": AllowedHostsOriginValidator(
            JWTAuthMiddlewareStack(URLRouter([*websocket_urlpatterns, refuse_unknown_paths]))
        ),
    }
)
