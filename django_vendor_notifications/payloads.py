"""The one place the wire format is written.

Every frame the server sends is built here, so field names (including the spec's ``readed_at``),
the date format and the ``context_data`` encoding cannot drift between the connect snapshot,
pages and pushes.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from .conf import app_settings

#: Columns an item is built from; services select exactly these.
ITEM_FIELDS = (
    "id",
    "vendor_id",
    "category",
    "message",
    "context_data",
    "is_read",
    "readed_at",
    "created_at",
)

#: The columns COLLAPSE, SEEN and SNOOZE add to an item, when on.
COLLAPSE_FIELDS = ("collapse_key",)
SEEN_FIELDS = ("seen_at",)
SNOOZE_FIELDS = ("snoozed_until",)

Frame = dict[str, Any]


def item_fields() -> tuple[str, ...]:
    """The columns an item is built from under the current settings: ITEM_FIELDS, and
    collapse_key / seen_at / snoozed_until when COLLAPSE / SEEN / SNOOZE are on (off, nothing
    more is read or sent)."""
    fields: tuple[str, ...] = ITEM_FIELDS
    if app_settings.COLLAPSE:
        fields += COLLAPSE_FIELDS
    if app_settings.SEEN:
        fields += SEEN_FIELDS
    if app_settings.SNOOZE:
        fields += SNOOZE_FIELDS
    return fields


def format_datetime(value: datetime.datetime | None) -> str | None:
    """``value`` in the project's TIME_ZONE with DATETIME_FORMAT, or None."""
    if value is None:
        return None
    if timezone.is_aware(value):
        value = timezone.localtime(value, timezone.get_default_timezone())
    return value.strftime(app_settings.DATETIME_FORMAT)


def iso_datetime(value: datetime.datetime | None) -> str | None:
    """``value`` in ISO 8601 with its offset, in the project's TIME_ZONE, or None."""
    if value is None:
        return None
    if timezone.is_naive(value):
        # USE_TZ = False stores local times: they are in TIME_ZONE.
        value = timezone.make_aware(value, timezone.get_default_timezone())
    return timezone.localtime(value, timezone.get_default_timezone()).isoformat()


def encode_context(context: Any) -> str:
    """The spec sends context_data as a JSON-encoded string, "{}" when empty."""
    return json.dumps(context or {}, cls=DjangoJSONEncoder, ensure_ascii=False)


def notification_item(row: Mapping[str, Any]) -> Frame:
    """One notification on the wire, from a row holding ITEM_FIELDS."""
    item = {
        "id": row["id"],
        "vendor": row["vendor_id"],
        "category": row["category"],
        "message": row["message"],
        "context_data": encode_context(row["context_data"]),
        "is_read": row["is_read"],
        "readed_at": format_datetime(row["readed_at"]),
        "created_at": format_datetime(row["created_at"]),
    }
    if app_settings.ISO_TIMESTAMPS:
        # Beside the spec's keys, never instead of them: existing clients keep working.
        item["created_at_iso"] = iso_datetime(row["created_at"])
        item["readed_at_iso"] = iso_datetime(row["readed_at"])
    # New keys, so in ISO 8601 with the offset: no spec format to keep.
    if app_settings.SEEN:
        item["seen_at"] = iso_datetime(row["seen_at"])
    if app_settings.SNOOZE:
        item["snoozed_until"] = iso_datetime(row["snoozed_until"])
    if app_settings.COLLAPSE and row.get("collapse_key"):
        # Only on notifications sent with a key: every other item is as the spec has it.
        item["collapse_key"] = row["collapse_key"]
        if row.get("collapsed_count") is not None:
            item["collapsed_count"] = row["collapsed_count"]
    return item


def collapse_fields(collapse_key: str, updated: int) -> Frame:
    """What a change of a collapsed item adds to its frames: the key and how many
    notifications it changed. Nothing for a notification without a key."""
    return {"collapse_key": collapse_key, "updated": updated} if collapse_key else {}


def group_by_category(rows: Iterable[Mapping[str, Any]]) -> dict[str, list[Frame]]:
    """Items keyed by category label, each list in the order of ``rows``."""
    grouped: dict[str, list[Frame]] = {}
    for row in rows:
        grouped.setdefault(row["category"], []).append(notification_item(row))
    return grouped


def unread_notifications_frame(
    rows: Iterable[Mapping[str, Any]], counts: Mapping[str, int] | None = None
) -> Frame:
    """The unread snapshot; with ``counts``, also the vendor's unread counts per category."""
    frame: Frame = {"action": "unread_notifications", "notifications": group_by_category(rows)}
    if counts is not None:
        frame.update(unread_counts_fields(counts))
    return frame


def unread_counts_fields(counts: Mapping[str, int]) -> Frame:
    """``unread_counts`` ({label: n}, only labels with unread ones) and ``unread_total``; with
    SEEN on, ``unseen_count`` too (what ``counts.unseen`` holds, see ``UnreadCounts``)."""
    fields: Frame = {"unread_counts": dict(counts), "unread_total": sum(counts.values())}
    return with_unseen_count(fields, getattr(counts, "unseen", None))


class UnreadCounts(dict[str, int]):
    """Unread counts per category label, and (SEEN on) the unseen total beside them, so every
    frame that carries the counts carries the badge's number too."""

    def __init__(self, counts: Mapping[str, int] | None = None, unseen: int | None = None) -> None:
        super().__init__(sorted((counts or {}).items()))
        self.unseen = unseen


def unread_counts_frame(counts: Mapping[str, int]) -> Frame:
    """The reply to get_unread_counts."""
    return {"action": "get_unread_counts", "status": "success", **unread_counts_fields(counts)}


def unread_count_changed_frame(counts: Mapping[str, int]) -> Frame:
    """Pushed to a vendor's other sockets when a change on one socket moved the counts."""
    return {"action": "unread_count_changed", **unread_counts_fields(counts)}


def mark_seen_frame(up_to_id: int, updated: int, counts: Mapping[str, int]) -> Frame:
    """The reply to mark_seen: how many it marked, and the counts afterwards."""
    return {
        "action": "mark_seen",
        "status": "success",
        "up_to_id": up_to_id,
        "updated": updated,
        **unread_counts_fields(counts),
    }


def snooze_frame(
    notification_id: int,
    found: bool,
    snoozed_until: datetime.datetime | None = None,
    counts: Mapping[str, int] | None = None,
) -> Frame:
    """The reply to snooze: when found, until when and the counts without it."""
    frame = notification_status_frame("snooze", notification_id, found)
    if found:
        frame["snoozed_until"] = iso_datetime(snoozed_until)
        frame.update(unread_counts_fields(counts or {}))
    return frame


def notification_snoozed_frame(
    notification_id: int, snoozed_until: datetime.datetime, counts: Mapping[str, int]
) -> Frame:
    """To every socket of the vendor: this one leaves the unread list until ``snoozed_until``."""
    return {
        "action": "notification_snoozed",
        "notification_id": notification_id,
        "snoozed_until": iso_datetime(snoozed_until),
        **unread_counts_fields(counts),
    }


def notifications_woke_frame(rows: Iterable[Mapping[str, Any]], counts: Mapping[str, int]) -> Frame:
    """To every socket of the vendor: snoozed notifications back in the unread list (oldest
    first), with the counts that include them."""
    return {
        "action": "notifications_woke",
        "notifications": [notification_item(row) for row in rows],
        **unread_counts_fields(counts),
    }


def load_more_frame(page: int, has_more: bool, rows: Iterable[Mapping[str, Any]]) -> Frame:
    return {
        "action": "load_more",
        "page": page,
        "has_more": has_more,
        "notifications": group_by_category(rows),
    }


def cursor_page_frame(
    before_id: int | None,
    rows: list[Mapping[str, Any]],
    has_more: bool,
) -> Frame:
    """A before_id page: a flat list, newest (highest id) first; next_before_id continues it."""
    return {
        "action": "load_more",
        "before_id": before_id,
        "notifications": [notification_item(row) for row in rows],
        "has_more": has_more,
        "next_before_id": rows[-1]["id"] if has_more and rows else None,
    }


def new_notification_frame(row: Mapping[str, Any]) -> Frame:
    return {"action": "new_notification", "notification": notification_item(row)}


def sync_frame(since_id: int, rows: Iterable[Mapping[str, Any]], has_more: bool) -> Frame:
    """Notifications after ``since_id``, oldest first, as a flat list (items carry category)."""
    return {
        "action": "sync",
        "since_id": since_id,
        "notifications": [notification_item(row) for row in rows],
        "has_more": has_more,
    }


def notification_read_frame(
    notification_id: int,
    unread_total: int,
    unseen_count: int | None = None,
    collapsed: Mapping[str, Any] | None = None,
) -> Frame:
    """Tells a vendor's other sockets that one of its notifications was read; ``collapsed``
    (collapse_fields()) when it was a collapsed item."""
    frame: Frame = {
        "action": "notification_read",
        "notification_id": notification_id,
        "unread_total": unread_total,
        **(collapsed or {}),
    }
    return with_unseen_count(frame, unseen_count)


def with_unseen_count(frame: Frame, unseen_count: int | None) -> Frame:
    """``frame`` with ``unseen_count`` when SEEN is on and it is known."""
    if app_settings.SEEN and unseen_count is not None:
        frame["unseen_count"] = unseen_count
    return frame


def mark_read_frame(
    notification_id: int, found: bool, collapsed: Mapping[str, Any] | None = None
) -> Frame:
    return notification_status_frame("mark_read", notification_id, found, collapsed)


def notification_status_frame(
    action: str, notification_id: int, found: bool, collapsed: Mapping[str, Any] | None = None
) -> Frame:
    """The reply to an action on one notification: success, or not_found for an id that is
    not the vendor's (the two cases of "not found" are not told apart). ``collapsed``
    (collapse_fields()) when the action changed a collapsed item."""
    frame: Frame = {"action": action, "notification_id": notification_id}
    if found:
        frame["status"] = "success"
        frame.update(collapsed or {})
    else:
        frame.update(status="error", error="not_found")
    return frame


def mark_all_read_frame(
    category: str | None, updated: int, unread_total: int, unseen_count: int | None = None
) -> Frame:
    frame: Frame = {"action": "mark_all_read", "status": "success"}
    if category is not None:
        frame["category"] = category
    frame.update(updated=updated, unread_total=unread_total)
    return with_unseen_count(frame, unseen_count)


def preferences_frame(
    action: str, preferences: Mapping[str, str], unmutable: Iterable[str]
) -> Frame:
    """The reply to get_preferences and set_preferences: the user's preference of every
    category that has one (any other is "live") and the categories that cannot be muted."""
    return {
        "action": action,
        "status": "success",
        "preferences": dict(preferences),
        "unmutable_categories": sorted(unmutable),
    }


def preferences_changed_frame(preferences: Mapping[str, str]) -> Frame:
    """Pushed to a user's other sockets when the user changed their preferences."""
    return {"action": "preferences_changed", "preferences": dict(preferences)}


def error_frame(code: str, message: str) -> Frame:
    return {"action": "error", "error": code, "message": message}


def with_request_id(frame: Frame, request_id: str | int | None) -> Frame:
    """Echo the client's request_id on the reply, when it sent one."""
    if request_id is not None:
        frame = {**frame, "request_id": request_id}
    return frame


def encode(frame: Frame) -> str:
    return json.dumps(frame, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))
