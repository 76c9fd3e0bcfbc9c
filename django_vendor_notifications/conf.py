"""The app's settings: one ``VENDOR_NOTIFICATIONS`` dict in the host's Django settings.

Every property reads ``django.conf.settings`` when it is accessed, never at import time, so
``override_settings`` works in tests and nothing is frozen before the host has configured
Django. ``DEFAULTS`` below is the documented default of every key (see ``docs/settings.md``).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

SETTINGS_NAME = "VENDOR_NOTIFICATIONS"

DEFAULTS: dict[str, Any] = {
    # "app_label.ModelName" of the host's vendor model. Required.
    "VENDOR_MODEL": None,
    # Dotted path to the access policy class (see permissions.VendorAccessPolicy).
    "ACCESS_POLICY": "django_vendor_notifications.permissions.VendorAccessPolicy",
    # Field on the vendor model that points at the owning user.
    "VENDOR_OWNER_FIELD": "user",
    # ORM lookup from the vendor model to its staff users, e.g. "staff__user". None: no staff.
    "VENDOR_STAFF_LOOKUP": None,
    # ORM lookup from the vendor model to a boolean on the staff member's role that allows
    # notifications, e.g. "staff__role__can_view_notifications". None: staff need the Django
    # permission "django_vendor_notifications.view_notification" instead.
    "STAFF_PERMISSION_LOOKUP": None,
    # URL path of the socket, without a leading slash.
    "WEBSOCKET_PATH": "v1/ws/notifications/",
    # Query-string parameter that carries the access token.
    "TOKEN_QUERY_PARAMETER": "token",
    # Whether the token may come in the query string (the spec's way). With False, clients
    # must offer the subprotocols ["bearer", token], which keeps tokens out of access logs.
    "QUERY_STRING_TOKEN": True,
    # Seconds an open socket may outlive its access token before it is closed with 4001,
    # unless the client sends refresh_token first.
    "TOKEN_EXPIRY_GRACE": 5,
    # Seconds between re-checks of an open socket's access (None: only on signals). Changes
    # the app sees (user deactivated or deleted, vendor deleted, staff or role changed) are
    # re-checked at once; this catches what a custom access policy changes behind its back.
    "REVALIDATE_INTERVAL": 300,
    # Largest client message processed, in bytes (UTF-8). Larger ones get message_too_large.
    "MAX_MESSAGE_BYTES": 16 * 1024,
    # Token bucket per socket: messages per second, and the burst allowed above that rate.
    "RATE_LIMIT_PER_SECOND": 10.0,
    "RATE_LIMIT_BURST": 20,
    # Rejected (rate_limited) messages in a row after which the socket is closed with 4029.
    "RATE_LIMIT_CLOSE_AFTER": 40,
    # Open sockets per user in one server process; one more is closed with 4029.
    "MAX_SOCKETS_PER_USER": 10,
    # Channel-layer group names. {user_id} and {vendor_id} are filled in.
    "USER_GROUP": "notifications_{user_id}",
    "BROADCAST_GROUP": "all_notifications",
    "VENDOR_GROUP": "vendor_notifications_{vendor_id}",
    # Alias in CHANNEL_LAYERS used for pushes.
    "CHANNEL_LAYER": "default",
    # Most unread notifications sent in an unread_notifications frame.
    "UNREAD_LIMIT": 100,
    # Notifications per load_more page (and the default limit of a before_id page).
    "PAGE_SIZE": 20,
    # Largest limit a client may ask of a before_id page; larger ones are capped to it.
    "MAX_PAGE_SIZE": 100,
    # strftime format of created_at and readed_at, rendered in settings.TIME_ZONE.
    "DATETIME_FORMAT": "%d-%m-%Y %H:%M:%S",
    # Whether items also carry created_at_iso and readed_at_iso (ISO 8601 with the offset),
    # which clients can parse without knowing the server's TIME_ZONE.
    "ISO_TIMESTAMPS": False,
    # Days notifications are kept: prune_notifications without --older-than deletes older
    # ones. None: kept until pruned with --older-than.
    "RETENTION_DAYS": None,
    # Category used when notify() is called without one.
    "DEFAULT_CATEGORY": "General Notifications",
    # Allowed category labels, or None to accept any label.
    "CATEGORIES": None,
    # Most notifications in one sync reply (and in one server-side gap fill).
    "SYNC_LIMIT": 500,
    # Seconds a publish (group_send) may take before it is abandoned with a warning.
    "PUBLISH_TIMEOUT": 2.0,
    # Seconds joining the channel-layer groups on connect may take before the socket is
    # closed with 4013 (try again later).
    "LAYER_TIMEOUT": 3.0,
    # Seconds between the checks that the channel layer still delivers to this process's
    # sockets (Redis restarted, flushed or failed over); None turns the check off.
    "LAYER_CHECK_INTERVAL": 5.0,
    # Seconds a server process stays in a channel-layer group after its last socket of that
    # group has gone, so reconnecting sockets do not make it leave and join again.
    "GROUP_LINGER": 1.0,
    # Most pushes (frames) and bytes waiting to be sent to one socket. A socket that falls
    # further behind drops the queued pushes and refills them from the database by id.
    "SOCKET_QUEUE_FRAMES": 500,
    "SOCKET_QUEUE_BYTES": 1024 * 1024,
    # Whether origins.OriginValidator lets in handshakes without an Origin header (non-browser
    # clients, which still need a valid token).
    "ALLOW_MISSING_ORIGIN": True,
    # Most connects of one server process between accept and first frame; the next one is
    # closed with 4013 at once (its client backs off). None (the default): no limit; a limit
    # made a 2,000-socket reconnect storm slower (docs/deployment.md).
    "MAX_PENDING_CONNECTS": None,
    # Seconds a socket waits for one database call before it answers "unavailable" (a hung
    # database would otherwise hold every socket of the process); None waits forever.
    "DATABASE_TIMEOUT": 10.0,
    # On SIGTERM (a deploy), seconds over which a server process closes its sockets with 4012
    # in even batches before the server stops, so they do not all reconnect to the next
    # process in the same instant; 0 closes them all at once. None leaves SIGTERM alone.
    "DRAIN_SECONDS": 5.0,
    # Dotted paths of the Django REST framework authentication classes of the HTTP API.
    "REST_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    # Requests per user of the HTTP API, per scope, in DRF's "number/period" form: "read" for
    # the GET endpoints, "write" for the changes. None for a scope: not throttled; None for
    # the whole setting: no throttling at all.
    "REST_THROTTLE_RATES": {"read": "600/min", "write": "120/min"},
    # Whether users may choose, per category, which notifications reach their sockets live
    # (get_preferences / set_preferences). Off: no preference is read on connect and every
    # category is pushed live, as the spec has it.
    "PREFERENCES": False,
    # The preference of a category for users who chose none: {label: "live" | "muted" |
    # "digest"}. A category not listed is "live".
    "PREFERENCE_DEFAULTS": {},
    # Category labels users may not mute (e.g. payouts): always pushed live.
    "UNMUTABLE_CATEGORIES": [],
    # Whether users who are away get an email digest of their vendor's unread notifications
    # (manage.py send_notification_digests). Off: sockets write no presence, a connect keeps
    # its queries, and the command sends nothing.
    "DIGESTS": False,
    # How long a user must have been away (no open socket), and how old a notification must
    # be, before it goes into a digest: seconds, or a datetime.timedelta. Longer than
    # REVALIDATE_INTERVAL, which keeps an open socket's user present.
    "DIGEST_AFTER": 3600,
    # Most notifications listed in one digest; the counts per category cover all of them.
    "DIGEST_MAX_ITEMS": 10,
    # The digests' From address; None: settings.DEFAULT_FROM_EMAIL.
    "DIGEST_FROM_EMAIL": None,
    # Whether unread notifications of a vendor with the same collapse_key are shown as one item
    # (the newest, with collapsed_count). Off: keys are stored but every notification is its
    # own item, and the queries are what they were before collapsing existed.
    "COLLAPSE": False,
    # Whether notifications can be marked seen (mark_seen): frames then carry unseen_count
    # (unread ones not seen yet: the badge) and items seen_at. Off: no field, frame or query.
    "SEEN": False,
    # Whether a notification can be snoozed until a time (snooze / unsnooze): it leaves the
    # unread snapshot and counts and comes back, pushed live, when it wakes.
    "SNOOZE": False,
    # The furthest ahead a snooze may reach (a datetime.timedelta).
    "SNOOZE_MAX": datetime.timedelta(days=30),
}

REQUIRED = ("VENDOR_MODEL",)


class AppSettings:
    """Typed, read-on-access view of ``settings.VENDOR_NOTIFICATIONS``."""

    @property
    def user_settings(self) -> dict[str, Any]:
        value = getattr(settings, SETTINGS_NAME, {})
        return value if isinstance(value, dict) else {}

    def get(self, key: str) -> Any:
        if key not in DEFAULTS:
            raise AttributeError(f"{SETTINGS_NAME} has no key {key!r}")
        return self.user_settings.get(key, DEFAULTS[key])

    def setting_name(self, key: str) -> str:
        """How a key is named in messages: VENDOR_NOTIFICATIONS["KEY"]."""
        return f'{SETTINGS_NAME}["{key}"]'

    @property
    def VENDOR_MODEL(self) -> str:
        value = self.get("VENDOR_MODEL")
        if not isinstance(value, str) or value.count(".") != 1:
            raise ImproperlyConfigured(
                f"{self.setting_name('VENDOR_MODEL')} must be set to the host's vendor model as "
                f"'app_label.ModelName' (got {value!r})."
            )
        return value

    @property
    def ACCESS_POLICY(self) -> str:
        return str(self.get("ACCESS_POLICY"))

    @property
    def VENDOR_OWNER_FIELD(self) -> str:
        return str(self.get("VENDOR_OWNER_FIELD"))

    @property
    def VENDOR_STAFF_LOOKUP(self) -> str | None:
        value = self.get("VENDOR_STAFF_LOOKUP")
        return str(value) if value else None

    @property
    def STAFF_PERMISSION_LOOKUP(self) -> str | None:
        value = self.get("STAFF_PERMISSION_LOOKUP")
        return str(value) if value else None

    @property
    def WEBSOCKET_PATH(self) -> str:
        return str(self.get("WEBSOCKET_PATH")).lstrip("/")

    @property
    def TOKEN_QUERY_PARAMETER(self) -> str:
        return str(self.get("TOKEN_QUERY_PARAMETER"))

    @property
    def USER_GROUP(self) -> str:
        return str(self.get("USER_GROUP"))

    @property
    def BROADCAST_GROUP(self) -> str:
        return str(self.get("BROADCAST_GROUP"))

    @property
    def VENDOR_GROUP(self) -> str:
        return str(self.get("VENDOR_GROUP"))

    @property
    def CHANNEL_LAYER(self) -> str:
        return str(self.get("CHANNEL_LAYER"))

    @property
    def UNREAD_LIMIT(self) -> int:
        return int(self.get("UNREAD_LIMIT"))

    @property
    def PAGE_SIZE(self) -> int:
        return int(self.get("PAGE_SIZE"))

    @property
    def MAX_PAGE_SIZE(self) -> int:
        return int(self.get("MAX_PAGE_SIZE"))

    @property
    def ISO_TIMESTAMPS(self) -> bool:
        return bool(self.get("ISO_TIMESTAMPS"))

    @property
    def RETENTION_DAYS(self) -> int | None:
        value = self.get("RETENTION_DAYS")
        return None if value is None else int(value)

    @property
    def DATETIME_FORMAT(self) -> str:
        return str(self.get("DATETIME_FORMAT"))

    @property
    def DEFAULT_CATEGORY(self) -> str:
        return str(self.get("DEFAULT_CATEGORY"))

    @property
    def CATEGORIES(self) -> tuple[str, ...] | None:
        value = self.get("CATEGORIES")
        return None if value is None else tuple(value)

    @property
    def QUERY_STRING_TOKEN(self) -> bool:
        return bool(self.get("QUERY_STRING_TOKEN"))

    @property
    def TOKEN_EXPIRY_GRACE(self) -> float:
        return float(self.get("TOKEN_EXPIRY_GRACE"))

    @property
    def REVALIDATE_INTERVAL(self) -> float | None:
        value = self.get("REVALIDATE_INTERVAL")
        return None if value is None else float(value)

    @property
    def MAX_MESSAGE_BYTES(self) -> int:
        return int(self.get("MAX_MESSAGE_BYTES"))

    @property
    def RATE_LIMIT_PER_SECOND(self) -> float:
        return float(self.get("RATE_LIMIT_PER_SECOND"))

    @property
    def RATE_LIMIT_BURST(self) -> int:
        return int(self.get("RATE_LIMIT_BURST"))

    @property
    def RATE_LIMIT_CLOSE_AFTER(self) -> int:
        return int(self.get("RATE_LIMIT_CLOSE_AFTER"))

    @property
    def MAX_SOCKETS_PER_USER(self) -> int:
        return int(self.get("MAX_SOCKETS_PER_USER"))

    @property
    def SYNC_LIMIT(self) -> int:
        return int(self.get("SYNC_LIMIT"))

    @property
    def PUBLISH_TIMEOUT(self) -> float:
        return float(self.get("PUBLISH_TIMEOUT"))

    @property
    def LAYER_TIMEOUT(self) -> float:
        return float(self.get("LAYER_TIMEOUT"))

    @property
    def LAYER_CHECK_INTERVAL(self) -> float | None:
        value = self.get("LAYER_CHECK_INTERVAL")
        return None if value is None else float(value)

    @property
    def GROUP_LINGER(self) -> float:
        return float(self.get("GROUP_LINGER"))

    @property
    def SOCKET_QUEUE_FRAMES(self) -> int:
        return int(self.get("SOCKET_QUEUE_FRAMES"))

    @property
    def SOCKET_QUEUE_BYTES(self) -> int:
        return int(self.get("SOCKET_QUEUE_BYTES"))

    @property
    def MAX_PENDING_CONNECTS(self) -> int | None:
        value = self.get("MAX_PENDING_CONNECTS")
        return None if value is None else int(value)

    @property
    def DATABASE_TIMEOUT(self) -> float | None:
        value = self.get("DATABASE_TIMEOUT")
        return None if value is None else float(value)

    @property
    def DRAIN_SECONDS(self) -> float | None:
        value = self.get("DRAIN_SECONDS")
        return None if value is None else float(value)

    @property
    def ALLOW_MISSING_ORIGIN(self) -> bool:
        return bool(self.get("ALLOW_MISSING_ORIGIN"))

    @property
    def REST_AUTHENTICATION_CLASSES(self) -> tuple[str, ...]:
        return tuple(self.get("REST_AUTHENTICATION_CLASSES"))

    @property
    def REST_THROTTLE_RATES(self) -> dict[str, str | None]:
        value = self.get("REST_THROTTLE_RATES")
        return {} if value is None else dict(value)

    @property
    def PREFERENCES(self) -> bool:
        return bool(self.get("PREFERENCES"))

    @property
    def PREFERENCE_DEFAULTS(self) -> dict[str, str]:
        return dict(self.get("PREFERENCE_DEFAULTS") or {})

    @property
    def UNMUTABLE_CATEGORIES(self) -> frozenset[str]:
        return frozenset(self.get("UNMUTABLE_CATEGORIES") or ())

    @property
    def DIGESTS(self) -> bool:
        return bool(self.get("DIGESTS"))

    @property
    def DIGEST_AFTER(self) -> datetime.timedelta:
        value = self.get("DIGEST_AFTER")
        if isinstance(value, datetime.timedelta):
            return value
        return datetime.timedelta(seconds=float(value))

    @property
    def DIGEST_MAX_ITEMS(self) -> int:
        return int(self.get("DIGEST_MAX_ITEMS"))

    @property
    def DIGEST_FROM_EMAIL(self) -> str | None:
        value = self.get("DIGEST_FROM_EMAIL")
        return str(value) if value else None

    @property
    def COLLAPSE(self) -> bool:
        return bool(self.get("COLLAPSE"))

    @property
    def SEEN(self) -> bool:
        return bool(self.get("SEEN"))

    @property
    def SNOOZE(self) -> bool:
        return bool(self.get("SNOOZE"))

    @property
    def SNOOZE_MAX(self) -> datetime.timedelta:
        value = self.get("SNOOZE_MAX")
        return value if isinstance(value, datetime.timedelta) else datetime.timedelta(days=30)

    def import_setting(self, key: str) -> Any:
        """Import the dotted path held by ``key``, naming the setting if that fails."""
        return self.import_path(key, self.get(key))

    def import_path(self, key: str, path: str) -> Any:
        """Import ``path``, one of the dotted paths ``key`` holds, naming the setting on error."""
        try:
            return import_string(path)
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"{self.setting_name(key)} = {path!r} could not be imported: {exc}"
            ) from exc


app_settings = AppSettings()
