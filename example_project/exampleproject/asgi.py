"""The ASGI entry point: Django for HTTP, the notification socket for WebSocket."""

from __future__ import annotations

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exampleproject.settings")
# Set Django up before anything imports models (the app's routing imports its consumer).
http_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from django_vendor_notifications.auth import JWTAuthMiddlewareStack  # noqa: E402
from django_vendor_notifications.memory import trim_freed_memory  # noqa: E402
from django_vendor_notifications.origins import AllowedHostsOriginValidator  # noqa: E402
from django_vendor_notifications.routing import (  # noqa: E402
    refuse_unknown_paths,
    websocket_urlpatterns,
)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        # Refuse pages from foreign origins, then authenticate the token in ?token=.
        "websocket": AllowedHostsOriginValidator(
            JWTAuthMiddlewareStack(URLRouter([*websocket_urlpatterns, refuse_unknown_paths]))
        ),
    }
)

# Keep what startup loaded out of the garbage collector's scans and collect the young
# generation less often: with many sockets open, a full collection otherwise pauses the
# server for 100 ms or more and frees nothing. See docs/deployment.md#the-garbage-collector.
gc.collect()
gc.freeze()
gc.set_threshold(50_000, *gc.get_threshold()[1:])

# Give the pages malloc freed back to the system: under churn glibc keeps them, and the
# process's RSS creeps up while the memory in use stays flat. See
# docs/deployment.md#memory-that-creeps-up.
trim_freed_memory(interval=30)
