"""The app's Python API: creating and reading notifications.

Every function here is synchronous, plain Django: a host calls ``notify()`` from a view, a task or
a shell, and the consumer calls the rest through ``database_sync_to_async``. None of them needs a
socket, so each is tested on its own.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import CharField, Count, F, IntegerField, Min, Q, Subquery, Value
from django.utils import timezone

from . import collapsing, delivery, payloads, preferences, presence, signals
from .conf import app_settings
from .models import SNOOZED, Notification, unread_condition
from .permissions import get_access_policy, get_vendor_model
from .protocol import MAX_ID, CloseCode

# --- the connect path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What an accepted socket acts for, decided once on connect."""

    user_id: Any
    vendor_id: Any
    #: The vendor's newest notification id when the session opened (0 for none): where the
    #: socket's view of the vendor's history starts.
    last_id: int = 0
    #: The vendor's unread counts per category when the session opened, for the first frame.
    unread_counts: Mapping[str, int] = field(default_factory=dict)
    #: SNOOZE on: when the vendor's next snoozed notification wakes (None: none snoozed).
    next_wake: datetime.datetime | None = None

    @property
    def groups(self) -> tuple[str, ...]:
        return (
            delivery.user_group(self.user_id),
            delivery.broadcast_group(),
            delivery.vendor_group(self.vendor_id),
        )


@dataclass(frozen=True)
class Started:
    """What a socket's connect reads: its Session and the unread snapshot, newest first."""

    session: Session
    unread_rows: list[dict[str, Any]]
    #: The user's stored preferences (PREFERENCES on), else None.
    preferences: dict[str, str] | None = None
    #: SNOOZE on: the notifications_woke frame of what this connect woke, for the vendor's
    #: other sockets (this one has them in its snapshot).
    woke: payloads.Frame | None = None


def start_session(user: Any) -> Started | CloseCode:
    """Everything a socket's connect needs from the database, in one call (one thread hop):
    the user behind the token, the vendor they may read, and that vendor's newest id, unread
    counts and unread snapshot. At most three queries with the default access policy.

    ``user`` may be the lazy user of :class:`~.auth.Handshake`: its token is checked here, in
    the same hop. Returns the close code instead when the socket may not stay. With
    PREFERENCES on, one more query reads the user's preferences; with DIGESTS on, one more
    records that the user is present (``presence``).
    """
    if user is None or not user.is_authenticated:
        return CloseCode.AUTHENTICATION_FAILED
    vendor_id = entitled_vendor_id(user)
    if vendor_id is None:
        return CloseCode.PERMISSION_DENIED
    state = inbox_state(vendor_id)
    woke = None
    if state.next_wake is not None and state.next_wake <= timezone.now():
        # Snoozed notifications that are due: woken before the snapshot, so it holds them
        # (a vendor with no socket open gets them here). Rare: otherwise no query more.
        woke = wake_due(vendor_id, publish=False).frames.get(vendor_id)
        state = inbox_state(vendor_id)
    session = Session(
        user_id=user.pk,
        vendor_id=vendor_id,
        last_id=state.newest_id,
        unread_counts=state.unread_counts,
        next_wake=state.next_wake,
    )
    choices = preferences.stored(user.pk) if app_settings.PREFERENCES else None
    if app_settings.DIGESTS:
        presence.seen(user.pk)
    return Started(session, state.unread_rows, choices, woke)


def open_session(user: Any) -> Session | None:
    """The Session for an authenticated user, or None when they may not read notifications."""
    started = start_session(user)
    return started.session if isinstance(started, Started) else None


def entitled_vendor_id(user: Any) -> Any | None:
    """The pk of the vendor whose notifications ``user`` may read, or None."""
    policy = get_access_policy()
    vendor = policy.get_vendor(user)
    if vendor is None or not policy.can_access(user, vendor):
        return None
    return vendor.pk


def check_access(user_id: Any, vendor_id: Any) -> CloseCode | None:
    """Re-check an open socket: the close code it must get now, or None while it may stay."""
    user = get_user_model()._default_manager.filter(pk=user_id).first()
    if user is None or not getattr(user, "is_active", True):
        return CloseCode.AUTHENTICATION_FAILED
    if entitled_vendor_id(user) != vendor_id:
        return CloseCode.PERMISSION_DENIED
    return None


def recheck(user_id: Any, vendor_id: Any) -> CloseCode | None:
    """An open socket's periodic re-check (``check_access``); with DIGESTS on, while the
    socket may stay, it also keeps its user present, in the same thread hop."""
    code = check_access(user_id, vendor_id)
    if code is None and app_settings.DIGESTS:
        presence.seen(user_id)
    return code


def revalidate(user: Any | None = None, vendor: models.Model | Any | None = None) -> bool:
    """Make open sockets re-check their access now, on every server process.

    For a user's sockets, a vendor's, or (with neither) every socket. Call it when something
    your access policy depends on changes; the app already does for users, vendors and the
    staff and role models named by its lookups.
    """
    if user is not None:
        group = delivery.user_group(_pk(user))
    elif vendor is not None:
        group = delivery.vendor_group(_pk(vendor))
    else:
        group = delivery.broadcast_group()
    return delivery.send_event(group, {"type": delivery.REVALIDATE_EVENT})


def unread_counts(vendor_id: Any) -> payloads.UnreadCounts:
    """Unread notifications per category label (labels with none left out). One query, on the
    partial (vendor, category) index, so its cost follows the unread rows, not the history.

    With SEEN on, the same query also counts the unseen ones (``.unseen``), on their own
    partial index: a UNION ALL arm whose label is NULL, which no category is."""
    if not app_settings.SEEN:
        return payloads.UnreadCounts(dict(_unread_count_rows(vendor_id)))
    # Both arms select aliases only: Django 4.2 would name the second arm's columns after the
    # first arm's field names, which it cannot resolve.
    counts = (
        Notification.objects.for_vendor(vendor_id)
        .unread()
        .order_by()
        .values("category")
        .annotate(_vn_label=F("category"), _vn_n=Count("id"))
        .values_list("_vn_label", "_vn_n")
    )
    no_label = Value(None, output_field=CharField())
    unseen = (
        _unseen(vendor_id)
        .order_by()
        .values("vendor_id")
        .annotate(_vn_label=no_label, _vn_n=Count("id"))
        .values_list("_vn_label", "_vn_n")
    )
    by_label, unseen_count = {}, 0
    for label, n in counts.union(unseen, all=True).order_by():
        if label is None:
            unseen_count = n
        else:
            by_label[label] = n
    return payloads.UnreadCounts(by_label, unseen_count)


def _unread_count_rows(vendor_id: Any) -> Any:
    return (
        Notification.objects.for_vendor(vendor_id)
        .unread()
        .order_by()
        .values_list("category")
        .annotate(n=Count("id"))
    )


def _unseen(vendor_id: Any) -> models.QuerySet[Notification]:
    """The vendor's unread notifications not seen yet (SEEN): the partial unseen index's rows."""
    return Notification.objects.for_vendor(vendor_id).filter(
        unread_condition(), seen_at__isnull=True
    )


@dataclass(frozen=True)
class InboxState:
    newest_id: int
    unread_counts: payloads.UnreadCounts
    unread_rows: list[dict[str, Any]]
    #: SNOOZE on: the earliest snoozed_until of the vendor (None: nothing snoozed).
    next_wake: datetime.datetime | None = None


def _state_columns() -> tuple[str, ...]:
    """The columns of inbox_state()'s union, in the order every arm selects them. All are
    aliases (a model field name cannot be one), so each arm lists them alike on every Django
    version."""
    return tuple(f"_vn_{name}" for name in (*payloads.item_fields(), "kind", "n"))


def inbox_state(vendor_id: Any) -> InboxState:
    """The vendor's newest id (0 for none), unread counts and unread snapshot (newest first,
    at most UNREAD_LIMIT items), in one query: a UNION ALL of three index lookups, so a connect
    pays one round trip for its newest id, unread_counts() and unread_rows().

    Unread notifications with the same collapse key are one item of the snapshot (the newest,
    with its ``collapsed_count``), so they take one place of UNREAD_LIMIT; the counts count
    notifications. SEEN adds an arm for the unseen count, SNOOZE one for the vendor's next
    wake: each on its own partial index, still one query."""
    fields = payloads.item_fields()
    unread = Notification.objects.for_vendor(vendor_id).unread()
    # The snapshot arm picks its rows by id: a LIMIT inside a union arm is not portable
    # (SQLite refuses it), inside an IN subquery it is.
    snapshot_ids = _snapshot_ids(vendor_id, unread)
    snapshot = Notification.objects.filter(pk__in=Subquery(snapshot_ids)).order_by()
    counts = unread.order_by().values("category")
    newest = Notification.objects.filter(
        pk=Subquery(Notification.objects.newest_ids(vendor_id)[:1])
    ).order_by()
    null_item = {name: Value(None, output_field=CharField()) for name in fields}
    no_count = Value(None, output_field=IntegerField())
    arms = [
        # The first arm's columns decide how values are read back (JSON, datetimes). Its count
        # column is the item's collapsed_count.
        _state_arm(
            snapshot,
            "item",
            {name: F(name) for name in fields},
            collapsing.collapsed_count() if app_settings.COLLAPSE else no_count,
        ),
        _state_arm(counts, "count", {**null_item, "category": F("category")}, Count("id")),
        _state_arm(newest, "newest", {**null_item, "id": F("id")}, no_count),
    ]
    if app_settings.SEEN:
        unseen = _unseen(vendor_id).order_by().values("vendor_id")
        arms.append(_state_arm(unseen, "unseen", null_item, Count("id")))
    if app_settings.SNOOZE:
        # The earliest wake, in the created_at column (a datetime, read back as one).
        snoozed = Notification.objects.for_vendor(vendor_id).filter(SNOOZED).order_by()
        wake = {**null_item, "created_at": Min("snoozed_until")}
        arms.append(_state_arm(snoozed.values("vendor_id"), "wake", wake, no_count))
    newest_id, unread_counts, rows = 0, {}, []
    unseen_count, next_wake = (0 if app_settings.SEEN else None), None
    # order_by() on the union: Django 6.1 would order it by Meta.ordering, a column no arm
    # selects.
    for values in arms[0].union(*arms[1:], all=True).order_by():
        row = dict(zip(fields, values[: len(fields)], strict=True))
        kind, n = values[-2:]
        if kind == "item":
            rows.append({**row, "collapsed_count": n} if app_settings.COLLAPSE else row)
        elif kind == "count":
            unread_counts[row["category"]] = n
        elif kind == "unseen":
            unseen_count = n
        elif kind == "wake":
            next_wake = row["created_at"]
        else:
            newest_id = int(row["id"] or 0)
    rows.sort(key=lambda row: (row["created_at"], row["id"]), reverse=True)
    counts_now = payloads.UnreadCounts(unread_counts, unseen_count)
    return InboxState(newest_id, counts_now, rows, next_wake)


def unread_version(vendor_id: Any) -> tuple[frozenset[int], payloads.UnreadCounts]:
    """What the unread snapshot and the unread counts are made of: the ids of the snapshot's
    rows and the counts per category (with SEEN on, and the unseen count). One query on the
    partial unread indexes that reads no row's text, so a client that polls for changes (HTTP
    ETags) costs little."""
    unread = Notification.objects.for_vendor(vendor_id).unread()
    ids = Notification.objects.filter(pk__in=Subquery(_snapshot_ids(vendor_id, unread))).order_by()
    no_label = Value(None, output_field=CharField())
    arms = [
        ids.annotate(_vn_kind=Value("id"), _vn_label=no_label, _vn_n=F("id")),
        unread.order_by()
        .values("category")
        .annotate(_vn_kind=Value("count"), _vn_label=F("category"), _vn_n=Count("id")),
    ]
    if app_settings.SEEN:
        arms.append(
            _unseen(vendor_id)
            .order_by()
            .values("vendor_id")
            .annotate(_vn_kind=Value("unseen"), _vn_label=no_label, _vn_n=Count("id"))
        )
    snapshot, counts, unseen = set(), {}, (0 if app_settings.SEEN else None)
    columns = ("_vn_kind", "_vn_label", "_vn_n")
    rows = [arm.values_list(*columns) for arm in arms]
    for kind, label, n in rows[0].union(*rows[1:], all=True).order_by():
        if kind == "id":
            snapshot.add(n)
        elif kind == "count":
            counts[label] = n
        else:
            unseen = n
    return frozenset(snapshot), payloads.UnreadCounts(counts, unseen)


def _snapshot_ids(vendor_id: Any, unread: Any) -> Any:
    """The ids of the unread snapshot's items: the newest UNREAD_LIMIT unread notifications
    a newer one with the same collapse key does not stand for."""
    shown = unread.filter(collapsing.shown(vendor_id)) if app_settings.COLLAPSE else unread
    return shown.newest_first().values("id")[: app_settings.UNREAD_LIMIT]


def _state_arm(rows: Any, kind: str, item: dict[str, Any], count: Any) -> Any:
    names = _state_columns()
    columns = dict(zip(names, (*item.values(), Value(kind), count), strict=True))
    return rows.annotate(**columns).values_list(*names)


def unread_rows(vendor_id: Any) -> list[dict[str, Any]]:
    """Unread notifications, newest first, at most UNREAD_LIMIT items (collapsed ones as one).
    One query."""
    return list(
        _items(vendor_id, Notification.objects.for_vendor(vendor_id).unread()).newest_first()[
            : app_settings.UNREAD_LIMIT
        ]
    )


def _items(vendor_id: Any, rows: Any) -> Any:
    """The vendor's ``rows`` as items: those a collapsed item stands for left out,
    ``collapsed_count`` on each collapsed item."""
    if not app_settings.COLLAPSE:
        return rows.values(*payloads.item_fields())
    return (
        rows.filter(collapsing.shown(vendor_id))
        .annotate(collapsed_count=collapsing.collapsed_count())
        .values(*payloads.item_fields(), "collapsed_count")
    )


def unread_notifications(vendor_id: Any) -> payloads.Frame:
    """The unread_notifications frame. One query."""
    return payloads.unread_notifications_frame(unread_rows(vendor_id))


# --- actions -------------------------------------------------------------------------------


def notifications_page(vendor_id: Any, page: int) -> payloads.Frame:
    """Page ``page`` (from 1) of all of a vendor's notifications, newest first. One query."""
    size = app_settings.PAGE_SIZE
    offset = (page - 1) * size
    if offset + size > MAX_ID:
        # Past any table a database can hold; also keeps OFFSET inside a 64-bit integer.
        return payloads.load_more_frame(page, False, [])
    # One row more than a page tells whether another page follows.
    rows = list(
        _items(vendor_id, Notification.objects.for_vendor(vendor_id)).newest_first()[
            offset : offset + size + 1
        ]
    )
    return payloads.load_more_frame(page, len(rows) > size, rows[:size])


def cursor_page(
    vendor_id: Any,
    before_id: int | None,
    limit: int | None = None,
    *,
    category: str | None = None,
    is_read: bool | None = None,
    archived: bool | None = None,
) -> payloads.Frame:
    """The vendor's notifications with id < ``before_id`` (None: from the newest), newest
    first, at most ``limit`` (PAGE_SIZE by default, capped at MAX_PAGE_SIZE).

    One query, however deep the cursor: a keyset on the (vendor, id) index, never an OFFSET.
    The filters apply when given; archived ones are included unless ``archived`` is False.
    """
    limit = min(limit or app_settings.PAGE_SIZE, app_settings.MAX_PAGE_SIZE)
    rows = Notification.objects.for_vendor(vendor_id)
    if before_id is not None:
        rows = rows.filter(id__lt=before_id)
    if category is not None:
        rows = rows.filter(category=category)
    if is_read is not None:
        rows = rows.filter(is_read=is_read)
    if archived is not None:
        rows = rows.filter(archived_at__isnull=not archived)
    # One row more than the page tells whether another page follows.
    page = list(_items(vendor_id, rows).order_by("-id")[: limit + 1])
    return payloads.cursor_page_frame(before_id, page[:limit], len(page) > limit)


def rows_since(vendor_id: Any, since_id: int) -> tuple[list[dict[str, Any]], bool]:
    """The vendor's notifications with id > since_id, oldest first, at most SYNC_LIMIT, and
    whether more follow. One query, on the (vendor, id) index."""
    limit = app_settings.SYNC_LIMIT
    rows = list(
        Notification.objects.for_vendor(vendor_id)
        .filter(id__gt=since_id)
        .order_by("id")
        .values(*payloads.item_fields())[: limit + 1]
    )
    return rows[:limit], len(rows) > limit


def sync(vendor_id: Any, since_id: int) -> payloads.Frame:
    """The sync frame: everything a client that has seen up to ``since_id`` is missing."""
    rows, has_more = rows_since(vendor_id, since_id)
    return payloads.sync_frame(since_id, rows, has_more)


@dataclass(frozen=True)
class MarkReadResult:
    found: bool
    #: True when this call changed a notification from unread to read.
    newly_read: bool = False
    #: The vendor's unread count after the change (set when newly_read).
    unread_total: int | None = None
    #: SEEN on: the vendor's unseen count after the change (set when newly_read).
    unseen_count: int | None = None
    #: The notification's collapse key ("" for none).
    collapse_key: str = ""
    #: How many notifications this call read (more than one for a collapsed item).
    updated: int = 0


def mark_read(vendor_id: Any, notification_id: int) -> MarkReadResult:
    """Mark one of the vendor's notifications read. Two queries whatever the outcome.

    With a collapse key, also the vendor's other unread notifications with that key and a
    lower id: all that the collapsed item stands for, but none that came after it.

    Idempotent: marking a read notification again succeeds and keeps the first ``readed_at``.
    A notification of another vendor is reported as not found and left untouched.
    """
    mine = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id)
    now = timezone.now()
    to_read = Q(pk=notification_id, vendor_id=vendor_id, is_read=False)
    if app_settings.COLLAPSE:
        to_read |= collapsing.group_of(vendor_id, notification_id)
    updated = Notification.objects.filter(to_read).update(
        is_read=True, is_recent_notification=False, readed_at=now
    )
    # The notification's key and the vendor's unread count afterwards (SEEN on: and its
    # unseen count), in one query.
    totals = {"_vn_total": _unread_total(vendor_id)}
    if app_settings.SEEN:
        totals["_vn_unseen"] = _unread_total(vendor_id, unseen=True)
    after = mine.annotate(**totals).values_list("collapse_key", *totals).first()
    if after is None:
        return MarkReadResult(found=False)
    collapse_key, total, *unseen = after
    if not app_settings.COLLAPSE:
        collapse_key = ""
    if not updated:
        return MarkReadResult(found=True, collapse_key=collapse_key)
    ids = [notification_id]
    if collapse_key and updated > 1 and signals.notification_read.has_listeners(Notification):
        ids = list(
            Notification.objects.filter(
                vendor_id=vendor_id, collapse_key=collapse_key, readed_at=now, is_read=True
            )
            .order_by("id")
            .values_list("id", flat=True)
        )
    delivery.after_commit(partial(signals.send_read, vendor_id, ids))
    return MarkReadResult(
        found=True,
        newly_read=True,
        unread_total=total or 0,
        unseen_count=(unseen[0] or 0) if unseen else None,
        collapse_key=collapse_key,
        updated=updated,
    )


def _unread_total(vendor_id: Any, unseen: bool = False) -> Subquery:
    """The vendor's unread count (with ``unseen``, its unseen count), as a subquery (NULL for
    none)."""
    unread = _unseen(vendor_id) if unseen else Notification.objects.for_vendor(vendor_id).unread()
    return Subquery(unread.order_by().values("vendor_id").annotate(n=Count("id")).values("n"))


@dataclass(frozen=True)
class MarkAllReadResult:
    #: How many notifications this call changed from unread to read.
    updated: int
    #: The vendor's unread counts afterwards.
    unread_counts: dict[str, int]


def mark_all_read(vendor_id: Any, category: str | None = None) -> MarkAllReadResult:
    """Mark every unread notification of the vendor (of one category label) read.

    Two queries: the UPDATE and the counts afterwards; one more when a receiver listens to
    ``notification_read`` (the ids it is sent).
    """
    now = timezone.now()
    unread = Notification.objects.for_vendor(vendor_id).unread()
    if category is not None:
        unread = unread.filter(category=category)
    updated = unread.update(is_read=True, is_recent_notification=False, readed_at=now)
    if updated and signals.notification_read.has_listeners(Notification):
        # Exactly the rows this UPDATE changed: the vendor's read ones stamped with ``now``.
        ids = list(
            Notification.objects.for_vendor(vendor_id)
            .filter(is_read=True, readed_at=now)
            .order_by("id")
            .values_list("id", flat=True)
        )
        delivery.after_commit(partial(signals.send_read, vendor_id, ids))
    return MarkAllReadResult(updated=updated, unread_counts=unread_counts(vendor_id))


@dataclass(frozen=True)
class ChangeResult:
    """Outcome of mark_unread, archive and unarchive."""

    found: bool
    #: The vendor's unread counts after the change, when the change moved them; else None.
    unread_counts: dict[str, int] | None = None
    #: The notification's collapse key when the change applied to a collapsed item.
    collapse_key: str = ""
    #: How many notifications the change applied to.
    updated: int = 0


def mark_unread(vendor_id: Any, notification_id: int) -> ChangeResult:
    """Make one of the vendor's notifications unread again. Two queries.

    ``readed_at`` is cleared (a later mark_read sets it anew) and ``is_recent_notification``
    restored, so both stay in step with ``is_read``. Unread already: success, nothing changes.
    """
    mine = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id)
    changed = (
        mine.filter(is_read=True).update(is_read=False, is_recent_notification=True, readed_at=None)
        == 1
    )
    if changed:
        return ChangeResult(found=True, unread_counts=unread_counts(vendor_id))
    return ChangeResult(found=mine.exists())


def archive(vendor_id: Any, notification_id: int) -> ChangeResult:
    """Archive one of the vendor's notifications: out of the unread list and counts, still
    in the history. Archiving again succeeds and keeps the first ``archived_at``."""
    return _set_archived(vendor_id, notification_id, archived=True)


def unarchive(vendor_id: Any, notification_id: int) -> ChangeResult:
    """Bring an archived notification back; an unread one counts as unread again."""
    return _set_archived(vendor_id, notification_id, archived=False)


def _set_archived(vendor_id: Any, notification_id: int, *, archived: bool) -> ChangeResult:
    # At most three queries: the row, the UPDATE, and the counts when they moved.
    mine = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id)
    row = mine.values("is_read", "archived_at", "collapse_key").first()
    if row is None:
        return ChangeResult(found=False)
    if (row["archived_at"] is not None) is archived:
        return ChangeResult(found=True)
    # Archiving an unread collapsed item archives all it stands for (none newer than it);
    # unarchive brings back the one notification.
    collapsing_now = app_settings.COLLAPSE and archived and not row["is_read"]
    collapse_key = row["collapse_key"] if collapsing_now else ""
    rows = mine.filter(archived_at__isnull=archived)
    if collapse_key:
        rows = collapsing.unread_with_key(vendor_id, collapse_key).filter(id__lte=notification_id)
    changed = rows.update(archived_at=timezone.now() if archived else None)
    if changed and not row["is_read"]:
        return ChangeResult(
            found=True,
            unread_counts=unread_counts(vendor_id),
            collapse_key=collapse_key,
            updated=changed,
        )
    return ChangeResult(found=True, updated=changed)


# --- seen and snoozed (SEEN, SNOOZE) ----------------------------------------------------


def mark_seen(vendor_id: Any, up_to_id: int) -> int:
    """Mark the vendor's unread, unseen notifications with id <= ``up_to_id`` seen: what an
    inbox showed when it was opened (the client sends the newest id it displayed). One UPDATE,
    on the partial unseen index; how many it changed. Seen again: nothing changes."""
    return _unseen(vendor_id).filter(id__lte=up_to_id).update(seen_at=timezone.now())


@dataclass(frozen=True)
class MarkSeenResult:
    updated: int
    #: The vendor's unread counts afterwards, with ``.unseen``.
    unread_counts: payloads.UnreadCounts


def mark_seen_counted(vendor_id: Any, up_to_id: int) -> MarkSeenResult:
    """mark_seen and the counts afterwards (for the reply and the other sockets). Two queries."""
    updated = mark_seen(vendor_id, up_to_id)
    return MarkSeenResult(updated, unread_counts(vendor_id))


class SnoozeError(ValueError):
    """An ``until`` snooze cannot take: not a time with an offset, past, or too far ahead."""


def snooze_until(value: Any, now: datetime.datetime | None = None) -> datetime.datetime:
    """``value`` (ISO 8601 with an offset, e.g. ``2026-12-06T09:00:00+01:00``) as an aware
    datetime later than now and at most SNOOZE_MAX ahead, or a SnoozeError saying why not."""
    from django.utils.dateparse import parse_datetime

    try:
        until = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        until = None
    if until is None or until.tzinfo is None:
        raise SnoozeError(
            "'until' must be a date and time in ISO 8601 with its UTC offset, "
            "e.g. 2026-12-06T09:00:00+01:00."
        )
    now = now or timezone.now()
    if timezone.is_naive(now):
        # USE_TZ = False: compared and stored in local time.
        until = timezone.make_naive(until)
    if until <= now:
        raise SnoozeError("'until' must be in the future.")
    limit = app_settings.SNOOZE_MAX
    if until > now + limit:
        raise SnoozeError(f"'until' must be at most {limit} ahead.")
    return until


@dataclass(frozen=True)
class SnoozeResult:
    found: bool
    snoozed_until: datetime.datetime | None = None
    #: The vendor's unread counts afterwards (when found).
    unread_counts: payloads.UnreadCounts | None = None


def snooze(vendor_id: Any, notification_id: int, until: datetime.datetime) -> SnoozeResult:
    """Snooze one of the vendor's notifications until ``until`` (checked by snooze_until):
    out of the unread snapshot and counts until it wakes. Snoozing again moves the time. Two
    queries: the UPDATE, then the counts (or, when nothing changed, whether it exists)."""
    mine = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id)
    if mine.update(snoozed_until=until) != 1:
        return SnoozeResult(found=False)
    return SnoozeResult(True, until, unread_counts(vendor_id))


@dataclass(frozen=True)
class Woken:
    """What one wake_due() call woke (only the rows this call cleared itself)."""

    #: Each vendor's notifications_woke frame: its woken unread notifications and its counts.
    frames: dict[Any, payloads.Frame] = field(default_factory=dict)
    #: How many notifications this call woke, read ones included.
    count: int = 0
    #: For one vendor: when its next snoozed notification wakes (None: none is snoozed).
    next_wake: datetime.datetime | None = None


def wake_due(
    vendor_id: Any | None = None,
    *,
    only_id: int | None = None,
    publish: bool = True,
    exclude: str | None = None,
) -> Woken:
    """Wake the snoozed notifications whose time has come (the vendor's, or every vendor's):
    clear their snoozed_until and, with ``publish``, push each vendor's woken unread ones to
    its sockets in one notifications_woke frame (after commit).

    Exactly once however many callers race (every socket of a vendor fires its timer at the
    same moment): a row is woken by the UPDATE that changes its snoozed_until from the value
    read to NULL, which only one caller can do; only the rows a caller cleared itself go into
    its frames. At most SYNC_LIMIT rows a call (``next_wake`` is now when more are due).
    ``only_id`` wakes that notification now, due or not (unsnooze).
    """
    now = timezone.now()
    snoozed = Notification.objects.filter(SNOOZED)
    if vendor_id is not None:
        snoozed = snoozed.filter(vendor_id=vendor_id)
    if only_id is not None:
        snoozed = snoozed.filter(pk=only_id)
    limit = app_settings.SYNC_LIMIT
    columns = dict.fromkeys((*payloads.item_fields(), "snoozed_until", "archived_at"))
    rows = list(snoozed.order_by("snoozed_until", "id").values(*columns)[: limit + 1])
    due = [row for row in rows if only_id is not None or row["snoozed_until"] <= now][:limit]
    later = rows[len(due) :]
    woken = [
        row
        for row in due
        if Notification.objects.filter(pk=row["id"], snoozed_until=row["snoozed_until"]).update(
            snoozed_until=None
        )
        == 1
    ]
    next_wake = None
    if later:
        next_wake = now if later[0]["snoozed_until"] <= now else later[0]["snoozed_until"]
    by_vendor: dict[Any, list[dict[str, Any]]] = {}
    for row in woken:
        row["snoozed_until"] = None
        if not row["is_read"] and row["archived_at"] is None:
            by_vendor.setdefault(row["vendor_id"], []).append(row)
    frames = {
        vendor: payloads.notifications_woke_frame(
            sorted(vendor_rows, key=lambda row: row["id"]), unread_counts(vendor)
        )
        for vendor, vendor_rows in by_vendor.items()
    }
    if publish:
        for vendor, frame in frames.items():
            event = delivery.push_event(payloads.encode(frame), exclude=exclude)
            delivery.after_commit(
                partial(delivery.send_event, delivery.vendor_group(vendor), event)
            )
    return Woken(frames, len(woken), next_wake)


def unsnooze(vendor_id: Any, notification_id: int) -> tuple[bool, Woken]:
    """Wake one of the vendor's notifications now: whether it is the vendor's, and what woke
    (its frame is not published: the caller tells the sockets). Unsnoozing one that is not
    snoozed succeeds and changes nothing."""
    woken = wake_due(vendor_id, only_id=notification_id, publish=False)
    if woken.count:
        return True, woken
    exists = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id).exists()
    return exists, woken


# --- retention -----------------------------------------------------------------------------


def older_than(cutoff: datetime.datetime) -> models.QuerySet[Notification]:
    """Every vendor's notifications created before ``cutoff``, read or not, archived or not."""
    return Notification.objects.filter(created_at__lt=cutoff)


def prune(cutoff: datetime.datetime, batch_size: int = 1000) -> Iterator[int]:
    """Delete the notifications created before ``cutoff``, ``batch_size`` at a time, yielding
    how many each batch deleted.

    Each batch is a DELETE of a range of ids, so it stays short and locks few rows while
    sockets keep reading and writing the table; two queries a batch.
    """
    old = older_than(cutoff).order_by("id")
    while True:
        boundary = list(old.values_list("id", flat=True)[batch_size - 1 : batch_size])
        batch = old.filter(id__lte=boundary[0]) if boundary else old
        deleted, _ = batch.delete()
        if deleted:
            yield deleted
        if not boundary:
            return


# --- creating notifications (the push path) ------------------------------------------------


def notify(
    vendor: models.Model | Any,
    message: str,
    *,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    collapse_key: str | None = None,
) -> Notification:
    """Create a notification for ``vendor`` and push it to the vendor's open sockets.

    ``vendor`` is a vendor instance or its primary key. The push happens after the surrounding
    transaction commits (at once outside a transaction), so a rolled-back notification is
    never shown. If the channel layer is unreachable the notification is still saved and a
    warning is logged; clients get it through ``sync`` or their next connect.

    With ``collapse_key`` (at most 100 characters) and COLLAPSE on, the vendor's unread
    notifications with the same key are shown as one item, the newest; the push carries
    ``collapsed_count``, the number of them with this one (one more query). With COLLAPSE off
    the key is stored, so turning it on later collapses what is already there.
    """
    category, context = _validated(category, context)
    collapse_key = collapsing.validated_key(collapse_key)
    vendor_id = _pk(vendor)
    notification = Notification.objects.create(
        vendor_id=vendor_id,
        category=category,
        message=message,
        context_data=context,
        collapse_key=collapse_key,
    )
    # The vendor's previous id lets a socket notice a push it never got (a full channel).
    previous_id = Notification.objects.newest_ids(vendor_id).filter(id__lt=notification.pk).first()
    row = _row(notification)
    if collapse_key and app_settings.COLLAPSE:
        row["collapsed_count"] = collapsing.unread_with_key(vendor_id, collapse_key).count()
    # Serialise once here; every socket of the vendor forwards the same text.
    event = delivery.push_event(
        payloads.encode(payloads.new_notification_frame(row)),
        notification_id=notification.pk,
        previous_id=previous_id,
        category=category,
    )
    delivery.after_commit(
        partial(publish_created, delivery.vendor_group(vendor_id), event, [notification])
    )
    return notification


def notify_many(
    vendors: Iterable[models.Model | Any] | None,
    message: str,
    *,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
    collapse_key: str | None = None,
    batch_size: int = 1000,
) -> list[Notification]:
    """Create the same notification for many vendors (``None``: every vendor) in bulk.

    One ``bulk_create`` per ``batch_size`` vendors and, after commit, one channel-layer message
    to the ``all_notifications`` group that every socket turns into its own vendor's
    ``new_notification`` frame — not one message per vendor. With ``collapse_key``, that frame
    carries the key but no ``collapsed_count`` (it differs by vendor): clients fold it into
    the item they hold with that key, one more.
    """
    category, context = _validated(category, context)
    collapse_key = collapsing.validated_key(collapse_key)
    if vendors is None:
        vendor_ids = list(get_vendor_model()._default_manager.values_list("pk", flat=True))
    else:
        vendor_ids = list(dict.fromkeys(_pk(vendor) for vendor in vendors))
    now = timezone.now()
    notifications = Notification.objects.bulk_create(
        [
            Notification(
                vendor_id=vendor_id,
                category=category,
                message=message,
                context_data=context,
                created_at=now,
                collapse_key=collapse_key,
            )
            for vendor_id in vendor_ids
        ],
        batch_size=batch_size,
    )
    if not notifications:
        return notifications
    if any(notification.pk is None for notification in notifications):
        # A database that cannot return ids from a bulk insert: fetch them back.
        ids = dict(
            Notification.objects.filter(vendor_id__in=vendor_ids, created_at=now, message=message)
            .order_by("vendor_id", "-id")
            .values_list("vendor_id", "id")
        )
        for notification in notifications:
            notification.pk = ids[notification.vendor_id]
    template_row = {**_row(notifications[0]), "id": 0, "vendor_id": 0}
    template = payloads.encode(payloads.new_notification_frame(template_row))
    template = template.replace('"id":0', f'"id":{delivery.ID_PLACEHOLDER}', 1).replace(
        '"vendor":0', f'"vendor":{delivery.VENDOR_PLACEHOLDER}', 1
    )
    event = {
        "type": delivery.BROADCAST_EVENT,
        "template": template,
        "ids": {str(n.vendor_id): n.pk for n in notifications},
        "category": category,
    }
    delivery.after_commit(
        partial(publish_created, delivery.broadcast_group(), event, notifications)
    )
    return notifications


def publish_created(group: str, event: dict[str, Any], notifications: list[Notification]) -> None:
    """Once committed: the push first, so no signal receiver (an e-mail, say) delays a socket,
    then ``notification_created`` for each notification."""
    delivery.send_event(group, event)
    signals.send_created(notifications)


def reload_unread(vendor: models.Model | Any | None = None) -> bool:
    """Make the vendor's sockets (every socket, for None) re-send their unread frame."""
    return delivery.reload_unread(None if vendor is None else _pk(vendor))


def _validated(
    category: str | None, context: Mapping[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    category = category or app_settings.DEFAULT_CATEGORY
    allowed = app_settings.CATEGORIES
    if allowed is not None and category not in allowed:
        raise ValueError(
            f"Unknown category {category!r}; {app_settings.setting_name('CATEGORIES')} "
            f"allows {list(allowed)!r}."
        )
    if context is not None and not isinstance(context, Mapping):
        raise TypeError("context must be a mapping (it is sent as a JSON object).")
    return category, dict(context or {})


def _pk(vendor: models.Model | Any) -> Any:
    return vendor.pk if isinstance(vendor, models.Model) else vendor


def _row(notification: Notification) -> dict[str, Any]:
    return {name: getattr(notification, name) for name in payloads.item_fields()}
