"""The ASGI application end-to-end tests serve, wired as a host would wire it."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
http_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from django_vendor_notifications.auth import JWTAuthMiddlewareStack  # noqa: E402
from django_vendor_notifications.routing import (  # noqa: E402
    refuse_unknown_paths,
    websocket_urlpatterns,
)

application = ProtocolTypeRouter(
    {
        "http": http_application,
        "websocket": JWTAuthMiddlewareStack(
            URLRouter([*websocket_urlpatterns, refuse_unknown_paths])
        ),
    }
)

# TEST_MALLOC_TRIM_INTERVAL: run memory.trim_freed_memory, as docs/deployment.md recommends
# (the soak does, and reports the RSS it keeps).
if os.environ.get("TEST_MALLOC_TRIM_INTERVAL"):
    from django_vendor_notifications.memory import trim_freed_memory  # noqa: E402

    trim_freed_memory(float(os.environ["TEST_MALLOC_TRIM_INTERVAL"]))
