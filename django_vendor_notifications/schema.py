"""The HTTP API's OpenAPI 3 description, for drf-spectacular (``pip install
django-vendor-notifications[openapi]``).

Kept out of ``views`` so the API runs without drf-spectacular: this module is an
``OpenApiViewExtension``, imported by ``apps.ready()`` only when drf-spectacular is installed,
and spectacular applies it to :class:`~.views.NotificationViewSet` when it builds a schema.
The response bodies are ``payloads``' frames, written here as raw JSON schemas.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension, OpenApiViewExtension
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)

from .protocol import MAX_ID
from .serializers import (
    HistoryQuery,
    MarkAllReadBody,
    MarkSeenBody,
    PreferencesBody,
    SnoozeBody,
    SyncQuery,
    VendorQuery,
)

ID = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
NULLABLE_DATE = {"type": "string", "nullable": True, "example": "12-03-2025 10:15:00"}
ITEM_PROPERTIES = {
    "id": ID,
    "vendor": {"description": "The vendor's primary key."},
    "category": {"type": "string", "example": "Order Notifications"},
    "message": {"type": "string"},
    "context_data": {"type": "string", "description": "A JSON-encoded object.", "example": "{}"},
    "is_read": {"type": "boolean"},
    "readed_at": NULLABLE_DATE,
    "created_at": {"type": "string", "example": "12-03-2025 10:15:00"},
    "created_at_iso": {"type": "string", "description": "With ISO_TIMESTAMPS only."},
    "readed_at_iso": {"type": "string", "nullable": True},
    "seen_at": {"type": "string", "nullable": True, "description": "With SEEN only (ISO 8601)."},
    "snoozed_until": {
        "type": "string",
        "nullable": True,
        "description": "With SNOOZE only (ISO 8601).",
    },
}
#: The item keys that only some settings add.
OPTIONAL_ITEM_KEYS = ("created_at_iso", "readed_at_iso", "seen_at", "snoozed_until")
ITEM = {
    "type": "object",
    "description": "A notification, exactly as the socket sends it (docs/protocol.md#items).",
    # The ISO keys come with ISO_TIMESTAMPS only; the spec's are always there.
    "required": [name for name in ITEM_PROPERTIES if name not in OPTIONAL_ITEM_KEYS],
    "properties": ITEM_PROPERTIES,
}
ITEMS = {"type": "array", "items": ITEM}
BY_CATEGORY = {"type": "object", "additionalProperties": ITEMS}
COUNTS = {
    "unread_counts": {"type": "object", "additionalProperties": {"type": "integer", "minimum": 1}},
    "unread_total": {"type": "integer", "minimum": 0},
    "unseen_count": {"type": "integer", "minimum": 0, "description": "With SEEN only."},
}


def frame(action: str, properties: dict[str, Any], *optional: str) -> dict[str, Any]:
    """A frame's schema: its ``action`` and ``properties``, all required but ``optional``."""
    return {
        "type": "object",
        "required": ["action", *(name for name in properties if name not in optional)],
        "properties": {"action": {"type": "string", "enum": [action]}, **properties},
    }


UNREAD = frame("unread_notifications", {"notifications": BY_CATEGORY, **COUNTS}, "unseen_count")
UNREAD_COUNTS = frame("get_unread_counts", {"status": {"type": "string"}, **COUNTS}, "unseen_count")
SUCCESS = {"type": "string", "enum": ["success"]}
MARK_SEEN = frame(
    "mark_seen",
    {"status": SUCCESS, "up_to_id": ID, "updated": {"type": "integer", "minimum": 0}, **COUNTS},
)
SNOOZE = frame(
    "snooze",
    {"notification_id": ID, "status": SUCCESS, "snoozed_until": {"type": "string"}, **COUNTS},
    "unseen_count",
)
PAGE = frame(
    "load_more",
    {"page": ID, "has_more": {"type": "boolean"}, "notifications": BY_CATEGORY},
)
CURSOR_PAGE = frame(
    "load_more",
    {
        "before_id": {**ID, "nullable": True},
        "notifications": ITEMS,
        "has_more": {"type": "boolean"},
        "next_before_id": {**ID, "nullable": True},
    },
)
SYNC = frame(
    "sync",
    {"since_id": {**ID, "minimum": 0}, "notifications": ITEMS, "has_more": {"type": "boolean"}},
)
MARK_ALL_READ = frame(
    "mark_all_read",
    {
        "status": {"type": "string", "enum": ["success"]},
        "category": {"type": "string"},
        "updated": {"type": "integer", "minimum": 0},
        "unread_total": {"type": "integer", "minimum": 0},
        "unseen_count": COUNTS["unseen_count"],
    },
    "category",
    "unseen_count",
)
DELIVERY = {"type": "string", "enum": ["live", "muted", "digest"]}
PREFERENCES_PROPERTIES = {
    "status": {"type": "string", "enum": ["success"]},
    "preferences": {"type": "object", "additionalProperties": DELIVERY},
    "unmutable_categories": {"type": "array", "items": {"type": "string"}},
}
DETAIL = {
    "type": "object",
    "required": ["detail"],
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
}
FIELD_ERRORS = {
    "type": "object",
    "description": "DRF's field errors: each field's messages, or ``detail``.",
    "additionalProperties": {
        "oneOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"}]
    },
}
REFUSALS = {
    400: OpenApiResponse(FIELD_ERRORS, "Bad input: the fields and what is wrong with them."),
    401: OpenApiResponse(DETAIL, "No valid access token."),
    403: OpenApiResponse(DETAIL, "The user may not read any vendor's notifications."),
    404: OpenApiResponse(DETAIL, "No such vendor or notification for this user."),
    429: OpenApiResponse(DETAIL, "Throttled (REST_THROTTLE_RATES); see Retry-After."),
    503: OpenApiResponse(DETAIL, "The database is unavailable; try again shortly."),
}
ETAG = OpenApiParameter(
    "ETag", str, OpenApiParameter.HEADER, response=[200, 304], description="Send it back."
)
IF_NONE_MATCH = OpenApiParameter(
    "If-None-Match",
    str,
    OpenApiParameter.HEADER,
    description="The ETag of the last answer: a 304 without a body while it still holds.",
)
NOTIFICATION_ID = OpenApiParameter(
    "id", ID, OpenApiParameter.PATH, description="The notification's id."
)
NOT_MODIFIED = OpenApiResponse(None, "Nothing changed since the ETag in If-None-Match.")


def read(operation_id: str, summary: str, body: dict[str, Any], **options: Any) -> Any:
    return extend_schema(
        operation_id=operation_id,
        summary=summary,
        tags=["notifications"],
        responses={200: OpenApiResponse(body), **options.pop("responses", {}), **REFUSALS},
        **options,
    )


def change(operation_id: str, summary: str, action: str) -> Any:
    status = {"type": "string", "enum": ["success"]}
    reply = frame(action, {"notification_id": ID, "status": status})
    return read(
        operation_id, summary, reply, request=None, parameters=[NOTIFICATION_ID, VendorQuery]
    )


class NotificationViewSetSchema(OpenApiViewExtension):
    target_class = "django_vendor_notifications.views.NotificationViewSet"

    def view_replacement(self) -> Any:
        conditional = {"parameters": [VendorQuery, IF_NONE_MATCH, ETAG]}
        history = {"oneOf": [PAGE, CURSOR_PAGE]}

        @extend_schema_view(
            history=read(
                "notifications_history",
                "The history: spec pages (page) or the before_id cursor with filters",
                history,
                parameters=[HistoryQuery],
            ),
            unread=read(
                "notifications_unread",
                "The unread snapshot by category, as the socket's first frame",
                UNREAD,
                responses={304: NOT_MODIFIED},
                **conditional,
            ),
            counts=read(
                "notifications_counts",
                "Unread counts per category",
                UNREAD_COUNTS,
                responses={304: NOT_MODIFIED},
                **conditional,
            ),
            sync=read(
                "notifications_sync",
                "Everything after since_id, oldest first",
                SYNC,
                parameters=[SyncQuery],
            ),
            mark_read=change("notifications_mark_read", "Mark one read", "mark_read"),
            mark_unread=change("notifications_mark_unread", "Mark one unread", "mark_unread"),
            archive=change("notifications_archive", "Archive one", "archive"),
            unarchive=change("notifications_unarchive", "Bring one back", "unarchive"),
            mark_all_read=read(
                "notifications_mark_all_read",
                "Mark every unread one read (of one category)",
                MARK_ALL_READ,
                request=MarkAllReadBody,
                parameters=[VendorQuery],
            ),
            mark_seen=read(
                "notifications_mark_seen",
                "Mark the unread ones up to an id seen (SEEN on; else 404)",
                MARK_SEEN,
                request=MarkSeenBody,
                parameters=[VendorQuery],
            ),
            snooze=read(
                "notifications_snooze",
                "Snooze one until a time (SNOOZE on; else 404)",
                SNOOZE,
                request=SnoozeBody,
                parameters=[NOTIFICATION_ID, VendorQuery],
            ),
            unsnooze=change(
                "notifications_unsnooze", "Wake a snoozed one now (SNOOZE on; else 404)", "unsnooze"
            ),
            preferences=[
                read(
                    "notifications_preferences",
                    "The user's preference per category (PREFERENCES on; else 404)",
                    frame("get_preferences", PREFERENCES_PROPERTIES),
                    parameters=[VendorQuery],
                    methods=["GET"],
                ),
                read(
                    "notifications_set_preferences",
                    "Change the user's preferences; null goes back to a category's default",
                    frame("set_preferences", PREFERENCES_PROPERTIES),
                    request=PreferencesBody,
                    parameters=[VendorQuery],
                    methods=["PATCH"],
                ),
            ],
        )
        class Described(self.target_class):  # type: ignore[name-defined]
            pass

        return Described


class PreferencesFieldSchema(OpenApiSerializerFieldExtension):
    """set_preferences' body: labels to a preference, or null for the default."""

    target_class = "django_vendor_notifications.serializers.PreferencesField"

    def map_serializer_field(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        return {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {**DELIVERY, "nullable": True},
        }
