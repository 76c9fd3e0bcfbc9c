"""The email digest for users who are away (DIGESTS): who is due, what goes in, sending it.

A user is due when their ``last_seen_at`` (``presence``) is older than DIGEST_AFTER: no socket
of theirs has been open since. Their digest holds their vendor's notifications that are

- still unread when the email is built (and, with SNOOZE on, not snoozed),
- created after the user was last seen and at least DIGEST_AFTER ago,
- newer than the user's ``digested_up_to`` (never the same notification twice),
- in a category whose effective preference for the user is not ``muted`` (PREFERENCES on):
  ``live`` and ``digest`` categories are emailed, a muted one is neither pushed nor emailed,

unless the user opted out of digests altogether (``UserPresence.digest_opt_out``) or has no
email address. Users are read in batches of presence rows, with a constant number of queries
per batch (for owners and role-checked staff of the default access policy).

Never twice, at most once: a batch's ``digested_up_to`` marks are saved, in the transaction
that read the rows (locked on PostgreSQL, so two runs never take the same user), before any of
its emails is sent. A crash or a refused email after the commit loses that digest; it is
never sent twice.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core import mail as django_mail
from django.core.mail import EmailMultiAlternatives
from django.db import connection, transaction
from django.db.models import Count, F, IntegerField, Max, Subquery, Value
from django.template.loader import render_to_string
from django.utils import timezone

from . import preferences, presence
from .conf import app_settings
from .models import Delivery, Notification, NotificationPreference, UserPresence
from .permissions import get_access_policy

logger = logging.getLogger(__name__)

#: The templates a host may override (in its own templates directory, same paths).
SUBJECT_TEMPLATE = "django_vendor_notifications/digest/subject.txt"
TEXT_TEMPLATE = "django_vendor_notifications/digest/body.txt"
HTML_TEMPLATE = "django_vendor_notifications/digest/body.html"

#: Users per batch: SQLite allows at most 500 arms in one UNION ALL, and each user is one.
MAX_BATCH_SIZE = 500


@dataclass(frozen=True)
class Digest:
    """One user's email: their vendor's counts per category and the newest items."""

    user: Any
    vendor: Any
    #: {category label: unread notifications}, every one this digest covers.
    counts: dict[str, int]
    #: The newest of them, newest first, at most DIGEST_MAX_ITEMS.
    items: list[dict[str, Any]] = field(default_factory=list)
    #: The newest id covered: the user's next digest starts after it.
    up_to: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def email(self) -> str:
        return str(getattr(self.user, get_user_model().get_email_field_name(), "") or "")


def cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """Users last seen before it are away; notifications created after it are left for later."""
    return (now or timezone.now()) - app_settings.DIGEST_AFTER


def due(before: datetime.datetime) -> Any:
    """The presence rows of users away since before ``before`` who did not opt out."""
    return presence.away_since(before).filter(digest_opt_out=False)


def take_batch(
    before: datetime.datetime, after: Any, size: int, *, dry_run: bool
) -> tuple[list[UserPresence], list[Digest]]:
    """The next ``size`` due rows after pk ``after`` (a keyset, never an OFFSET) and their
    digests, the marks saved (unless ``dry_run``) in the transaction that read the rows.

    On a database that can (PostgreSQL), the rows are locked until the marks are saved and
    rows another run holds are skipped, so two runs at once never take the same user. Seven
    queries whatever ``size``: the rows with their users, the five of build(), the marks."""
    with transaction.atomic():
        rows = due(before).filter(pk__gt=after).select_related("user").order_by("pk")
        if not dry_run and connection.features.has_select_for_update_skip_locked:
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        batch = list(rows[:size])
        digests = build(batch, before) if batch else []
        if not dry_run:
            mark(digests, batch)
    return batch, digests


def build(rows: list[UserPresence], before: datetime.datetime) -> list[Digest]:
    """The digests of these users that have anything to say. Five queries whatever their
    number: the vendors (owners, staff), the preferences (PREFERENCES on), the counts and the
    newest items."""
    email_field = get_user_model().get_email_field_name()
    users = [
        row.user
        for row in rows
        if getattr(row.user, "is_active", True) and getattr(row.user, email_field, "")
    ]
    if not users:
        return []
    vendors = get_access_policy().get_vendors(users)
    seen_at = {row.user_id: row.last_seen_at for row in rows}
    marks = {row.user_id: row.digested_up_to for row in rows}
    muted = _muted_categories([user.pk for user in users if user.pk in vendors])
    windows = []
    for user in users:
        if user.pk not in vendors:
            continue
        window = (
            Notification.objects.for_vendor(vendors[user.pk].pk)
            .unread()
            .filter(id__gt=marks[user.pk], created_at__gt=seen_at[user.pk], created_at__lt=before)
        )
        if muted.get(user.pk):
            window = window.exclude(category__in=muted[user.pk])
        windows.append((user, window))
    if not windows:
        return []
    counts, newest = _counts(windows), _newest_items(windows)
    return [
        Digest(
            user=user,
            vendor=vendors[user.pk],
            counts={label: n for label, (n, _) in sorted(counts[i].items())},
            items=newest.get(i, []),
            up_to=max(top for _, top in counts[i].values()),
        )
        for i, (user, _) in enumerate(windows)
        if i in counts
    ]


def _muted_categories(user_ids: list[Any]) -> dict[Any, set[str]]:
    """{user pk: the categories they muted, by their choice or by default}. One query; none
    while PREFERENCES is off, when every category reaches every user, live and by email."""
    if not app_settings.PREFERENCES:
        return {}
    choices: dict[Any, dict[str, str]] = {user_id: {} for user_id in user_ids}
    rows = NotificationPreference.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "category", "delivery"
    )
    for user_id, category, value in rows:
        choices[user_id][category] = value
    return {
        user_id: {
            label
            for label, value in preferences.effective(chosen).items()
            if value == Delivery.MUTED
        }
        for user_id, chosen in choices.items()
    }


_COUNT_COLUMNS = ("_vn_i", "_vn_label", "_vn_n", "_vn_top")
_ITEM_COLUMNS = ("_vn_i", "_vn_id", "_vn_label", "_vn_message", "_vn_created_at")


def _counts(windows: list[tuple[Any, Any]]) -> dict[int, dict[str, tuple[int, int]]]:
    """{window index: {label: (count, newest id)}}, windows with nothing left out. One UNION
    ALL query, an arm per window on the partial (vendor, category) unread index."""
    arms = [
        window.order_by()
        .values("category")
        .annotate(
            _vn_i=Value(i, output_field=IntegerField()),
            _vn_label=F("category"),
            _vn_n=Count("id"),
            _vn_top=Max("id"),
        )
        .values_list(*_COUNT_COLUMNS)
        for i, (_, window) in enumerate(windows)
    ]
    result: dict[int, dict[str, tuple[int, int]]] = {}
    for i, label, n, top in _union(arms):
        result.setdefault(i, {})[label] = (n, top)
    return result


def _newest_items(windows: list[tuple[Any, Any]]) -> dict[int, list[dict[str, Any]]]:
    """{window index: its newest DIGEST_MAX_ITEMS notifications, newest first}. One query."""
    limit = app_settings.DIGEST_MAX_ITEMS
    arms = [
        # Picked by id: a LIMIT inside a union arm is not portable (SQLite refuses it).
        Notification.objects.filter(pk__in=Subquery(window.newest_first().values("id")[:limit]))
        .order_by()
        .annotate(
            _vn_i=Value(i, output_field=IntegerField()),
            _vn_id=F("id"),
            _vn_label=F("category"),
            _vn_message=F("message"),
            _vn_created_at=F("created_at"),
        )
        .values_list(*_ITEM_COLUMNS)
        for i, (_, window) in enumerate(windows)
    ]
    result: dict[int, list[dict[str, Any]]] = {}
    for i, pk, label, message, created_at in _union(arms):
        item = {"id": pk, "category": label, "message": message, "created_at": created_at}
        result.setdefault(i, []).append(item)
    for items in result.values():
        items.sort(key=lambda item: (item["created_at"], item["id"]), reverse=True)
    return result


def _union(arms: list[Any]) -> Any:
    # order_by() on the union: Django 6.1 would order it by Meta.ordering, which no arm selects.
    return arms[0].union(*arms[1:], all=True).order_by() if len(arms) > 1 else arms[0]


def mark(digests: list[Digest], rows: list[UserPresence]) -> None:
    """Save each digest's ``up_to`` as its user's mark, before any is sent. One query."""
    by_user = {row.user_id: row for row in rows}
    changed = []
    for digest in digests:
        row = by_user[digest.user.pk]
        row.digested_up_to = digest.up_to
        changed.append(row)
    if changed:
        UserPresence.objects.bulk_update(changed, ["digested_up_to"])


def message(digest: Digest) -> EmailMultiAlternatives:
    """The email of one digest, from the templates (text and HTML) a host may override."""
    context = {
        "user": digest.user,
        "vendor": digest.vendor,
        "counts": [{"category": label, "count": n} for label, n in digest.counts.items()],
        "total": digest.total,
        "items": digest.items,
        "more": digest.total - len(digest.items),
    }
    # One line, whatever the template's whitespace: a newline in a subject is refused.
    subject = " ".join(render_to_string(SUBJECT_TEMPLATE, context).split())
    email = EmailMultiAlternatives(
        subject,
        render_to_string(TEXT_TEMPLATE, context),
        app_settings.DIGEST_FROM_EMAIL or settings.DEFAULT_FROM_EMAIL,
        [digest.email],
    )
    email.attach_alternative(render_to_string(HTML_TEMPLATE, context), "text/html")
    return email


@dataclass
class Outcome:
    """What happened to one due user's digest."""

    user: Any
    digest: Digest | None
    #: "sent", "failed", "would_send" (a dry run) or "nothing" (nothing to say).
    status: str


def run(
    now: datetime.datetime | None = None,
    *,
    batch_size: int = 100,
    limit: int | None = None,
    dry_run: bool = False,
) -> Iterator[Outcome]:
    """Build and send the digests of every due user (at most ``limit``), an Outcome each.

    A dry run builds them and sends and changes nothing. An email that fails is logged and
    reported as "failed"; the others go on."""
    before = cutoff(now)
    size = min(batch_size, MAX_BATCH_SIZE)
    mailer = None if dry_run else _default_mailer()
    after, handled = 0, 0
    while limit is None or handled < limit:
        if limit is not None:
            size = min(size, limit - handled)
        rows, digests = take_batch(before, after, size, dry_run=dry_run)
        if not rows:
            return
        after, handled = rows[-1].pk, handled + len(rows)
        # The marks are committed: from here on, a failure loses a digest, never repeats one.
        by_user = {digest.user.pk: digest for digest in digests}
        for row in rows:
            digest = by_user.get(row.user_id)
            if digest is None:
                yield Outcome(row.user, None, "nothing")
            elif dry_run:
                yield Outcome(row.user, digest, "would_send")
            else:
                yield Outcome(row.user, digest, _send(digest, mailer))


def _default_mailer() -> Any:
    """The email backend the digests go through: Django's default mailer (``MAILERS``, Django
    6.1 and later), else the backend ``EMAIL_BACKEND`` names. One per run, so an SMTP backend
    keeps its connection open across the run's emails."""
    mailers = getattr(django_mail, "mailers", None)
    return mailers.default if mailers is not None else django_mail.get_connection()


def _send(digest: Digest, mailer: Any) -> str:
    try:
        mailer.send_messages([message(digest)])
    except Exception:
        logger.exception("The notification digest of user %s could not be sent.", digest.user.pk)
        return "failed"
    return "sent"
