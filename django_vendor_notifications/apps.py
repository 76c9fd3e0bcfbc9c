from __future__ import annotations

import importlib.util

from django.apps import AppConfig


class VendorNotificationsConfig(AppConfig):
    name = "django_vendor_notifications"
    verbose_name = "Vendor notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the system checks (decorated with @register).
        from . import checks  # noqa: F401
        from .signals import connect_revocation_signals

        connect_revocation_signals()
        if importlib.util.find_spec("drf_spectacular") is not None:
            # The HTTP API's OpenAPI description; drf-spectacular finds it once imported.
            from . import schema  # noqa: F401
