"""Collapsed notifications: the query pieces that show a vendor's unread notifications with
the same ``collapse_key`` as one item, the newest, and act on all of them at once.

Each piece is an expression added to a query that runs anyway, so collapsing adds no query to
a connect, a page or a reload. All of them read the partial (vendor, collapse_key, id) index of
unread rows with a key, so rows without a key cost nothing. See docs/collapsed-notifications.md.
"""

from __future__ import annotations

from typing import Any

from django.db.models import (
    Case,
    Count,
    IntegerField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)

from .conf import app_settings
from .models import COLLAPSE_KEY_MAX_LENGTH, SNOOZED, Notification, unread_keyed_condition


class CollapseKeyError(ValueError):
    """A collapse_key notify() cannot store."""


def validated_key(collapse_key: str | None) -> str:
    """``collapse_key`` as stored: "" for none."""
    if collapse_key is None:
        return ""
    if not isinstance(collapse_key, str):
        raise TypeError("collapse_key must be a string (or None for no key).")
    if len(collapse_key) > COLLAPSE_KEY_MAX_LENGTH:
        raise CollapseKeyError(
            f"collapse_key is limited to {COLLAPSE_KEY_MAX_LENGTH} characters; "
            f"got {len(collapse_key)}."
        )
    if "\x00" in collapse_key:
        # PostgreSQL refuses NUL in text; SQLite would store it. Refused on both alike.
        raise CollapseKeyError("collapse_key must not contain a NUL character.")
    return collapse_key


def same_key(**lookups: Any) -> QuerySet[Notification]:
    """Unread rows with the key of the outer query's row, of its vendor."""
    return Notification.objects.filter(
        unread_keyed_condition(),
        vendor_id=OuterRef("vendor_id"),
        collapse_key=OuterRef("collapse_key"),
        **lookups,
    )


def newest_of_each_key(vendor_id: Any) -> QuerySet[Notification]:
    """The id of the vendor's newest unread notification of each collapse key."""
    keyed = Notification.objects.filter(unread_keyed_condition(), vendor_id=vendor_id).order_by()
    return keyed.values("collapse_key").annotate(newest=Max("id")).values("newest")


def shown(vendor_id: Any) -> Q:
    """The vendor's rows shown as an item of their own: any row but an unread one with a key
    that a newer unread row with the same key stands for. "Newer" is by id, as mark_read's
    rule is.

    Not a NOT EXISTS per row: that probes the index once for every row it leaves out, 150 ms
    on PostgreSQL to step over 20,000 unread ones of one key. The newest id of each key is
    read once from the partial index (a hashed subplan), and each row is a lookup in it."""
    alone = Q(collapse_key="") | Q(is_read=True) | Q(archived_at__isnull=False)
    if app_settings.SNOOZE:
        # A snoozed one stands for nothing (and is out of the unread snapshot anyway).
        alone |= SNOOZED
    return alone | Q(id__in=newest_of_each_key(vendor_id))


def collapsed_count() -> Case:
    """For an unread row with a key, the number of unread rows with its key (itself
    included); NULL for any other row."""
    count = same_key().order_by().values("vendor_id").annotate(n=Count("id")).values("n")
    return Case(
        When(unread_keyed_condition(), then=Subquery(count)),
        default=Value(None),
        output_field=IntegerField(),
    )


def unread_with_key(vendor_id: Any, collapse_key: str) -> QuerySet[Notification]:
    """The vendor's unread notifications with ``collapse_key``."""
    return Notification.objects.filter(
        unread_keyed_condition(), vendor_id=vendor_id, collapse_key=collapse_key
    )


def group_of(vendor_id: Any, notification_id: int) -> Q:
    """What mark_read and archive of ``notification_id`` apply to besides it: the vendor's
    unread notifications with its key and a lower id (never one that came after it)."""
    mine = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id).order_by()
    key = mine.values("collapse_key")[:1]
    return Q(
        unread_keyed_condition(),
        vendor_id=vendor_id,
        id__lt=notification_id,
        collapse_key=Subquery(key),
    )
