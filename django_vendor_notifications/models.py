"""The one table the app owns. The database is the source of truth; sockets carry it live."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from .conf import app_settings

#: What "unread" means everywhere: not read and not archived. The partial indexes' condition.
UNREAD = Q(is_read=False, archived_at__isnull=True)
#: Unread and not seen yet (SEEN on): the condition of the partial index that counts them.
UNSEEN = Q(UNREAD, seen_at__isnull=True)
#: Snoozed (SNOOZE on): out of the unread snapshot and counts until it wakes.
SNOOZED = Q(snoozed_until__isnull=False)


def unread_condition() -> Q:
    """UNREAD, and with SNOOZE on also not snoozed.

    UNREAD itself stays the partial indexes' condition: a query whose WHERE holds every term
    of an index's WHERE can use it (PostgreSQL and SQLite both), so the extra term keeps the
    snapshot and counts on those indexes, and with SNOOZE off the SQL is what it always was.
    """
    if app_settings.SNOOZE:
        return UNREAD & ~SNOOZED
    return UNREAD


#: Unread and carrying a collapse key: the rows a collapsed item stands for. The condition of
#: the partial (vendor, collapse_key, id) index, so the collapsing queries can use it.
UNREAD_KEYED = UNREAD & ~Q(collapse_key="")


def unread_keyed_condition() -> Q:
    """UNREAD_KEYED, and with SNOOZE on also not snoozed: a snoozed notification stands for
    no collapsed item until it wakes. A superset of the index's condition, so still indexed."""
    if app_settings.SNOOZE:
        return UNREAD_KEYED & ~SNOOZED
    return UNREAD_KEYED


#: The longest collapse key notify() accepts.
COLLAPSE_KEY_MAX_LENGTH = 100


def default_category() -> str:
    return app_settings.DEFAULT_CATEGORY


class NotificationQuerySet(models.QuerySet["Notification"]):
    def for_vendor(self, vendor_id: Any) -> NotificationQuerySet:
        return self.filter(vendor_id=vendor_id)

    def newest_ids(self, vendor_id: Any) -> NotificationQuerySet:
        """The vendor's ids, newest first, read from the (vendor, id) index.

        Not ``MAX(id) WHERE vendor_id = X``: PostgreSQL may answer that by walking the primary
        key backwards past every newer row of other vendors (20 ms for a quiet large vendor).
        The range and the two-column ordering make it walk the vendor's own index instead."""
        return (
            self.filter(vendor_id__gte=vendor_id, vendor_id__lte=vendor_id)
            .order_by("-vendor_id", "-id")
            .values_list("id", flat=True)
        )

    def unread(self) -> NotificationQuerySet:
        """Unread and in the inbox: archived notifications are neither listed nor counted.

        The same condition as the partial unread indexes, so queries can use them; with SNOOZE
        on, snoozed ones are left out too (see ``unread_condition``).
        """
        return self.filter(unread_condition())

    def newest_first(self) -> NotificationQuerySet:
        return self.order_by("-created_at", "-id")


class Notification(models.Model):
    # 64-bit ids: ids only grow and are part of the protocol (clients page and recover by id).
    id = models.BigAutoField(primary_key=True)
    # The target is the host's vendor model, named by VENDOR_NOTIFICATIONS["VENDOR_MODEL"], so
    # this app never imports the host's models.
    vendor = models.ForeignKey(
        app_settings.VENDOR_MODEL,
        on_delete=models.CASCADE,
        related_name="vendor_notifications",
    )
    # The label the wire format groups by, e.g. "Order Notifications".
    category = models.CharField(max_length=100, default=default_category)
    message = models.TextField()
    context_data = models.JSONField(default=dict, blank=True)
    is_read = models.BooleanField(default=False)
    # Kept for the spec: cleared together with is_read.
    is_recent_notification = models.BooleanField(default=True)
    readed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    # Set when archived: out of unread lists and counts, still in the history.
    archived_at = models.DateTimeField(null=True, blank=True)
    # SEEN: when an inbox that showed it was opened. Unseen is unread and not seen yet.
    seen_at = models.DateTimeField(null=True, blank=True)
    # SNOOZE: out of the unread snapshot and counts until then; cleared when it wakes.
    snoozed_until = models.DateTimeField(null=True, blank=True)
    # Unread notifications of a vendor with the same key are shown as one item (the newest);
    # "" for none, so a row without a key behaves as before the field existed.
    collapse_key = models.CharField(max_length=COLLAPSE_KEY_MAX_LENGTH, blank=True, default="")

    objects = NotificationQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            # The unread snapshot sent on every connect: a vendor's unread rows, newest first.
            # Partial, so it stays small however much history a vendor has.
            models.Index(
                fields=["vendor", "-created_at", "-id"],
                condition=UNREAD,
                name="vn_vendor_unread_idx",
            ),
            # Unread counts per category, sent on connect and after every change to them.
            models.Index(
                fields=["vendor", "category"],
                condition=UNREAD,
                name="vn_vendor_unread_category_idx",
            ),
            # load_more pages over the whole history, newest first.
            models.Index(fields=["vendor", "-created_at", "-id"], name="vn_vendor_history_idx"),
            # sync and gap recovery: a vendor's notifications after an id, oldest first.
            models.Index(fields=["vendor", "id"], name="vn_vendor_id_idx"),
            # SEEN: the unseen count of the badge, and mark_seen's UPDATE by id.
            models.Index(fields=["vendor", "id"], condition=UNSEEN, name="vn_vendor_unseen_idx"),
            # SNOOZE: a vendor's next wake, and the rows due.
            models.Index(
                fields=["vendor", "snoozed_until"],
                condition=SNOOZED,
                name="vn_vendor_snoozed_idx",
            ),
            # Collapsed notifications: is there a newer unread one with the same key, how many
            # unread share a key, which ones a mark_read of a collapsed item reads. Partial,
            # so rows without a key (most of them) are not in it at all.
            models.Index(
                fields=["vendor", "collapse_key", "id"],
                condition=UNREAD_KEYED,
                name="vn_vendor_unread_collapse_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.message[:50]}"


#: The values of a preference, as the wire format spells them.
DELIVERY_VALUES = ("live", "muted", "digest")


class Delivery(models.TextChoices):
    """How a category's notifications reach a user's sockets."""

    #: Pushed live to the user's sockets.
    LIVE = "live"
    #: Stored, counted and listed, but not pushed live to the user's sockets.
    MUTED = "muted"
    #: Not pushed live either; meant for a summary the user reads later.
    DIGEST = "digest"


class NotificationPreference(models.Model):
    """What one user chose for one category. Sparse: only choices are stored, and a category
    without a row has the default of PREFERENCE_DEFAULTS (see ``preferences``)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="vendor_notification_preferences",
    )
    category = models.CharField(max_length=100)
    delivery = models.CharField(max_length=10, choices=Delivery.choices)

    class Meta:
        constraints = [
            # Also the index a connect reads a user's choices with.
            models.UniqueConstraint(fields=["user", "category"], name="vn_preference_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.category}: {self.delivery}"


class UserPresence(models.Model):
    """When a user last had a socket open, and what their email digests have covered (DIGESTS).

    One row per user who has connected with DIGESTS on. ``last_seen_at`` is written on connect,
    on disconnect and by an open socket's periodic revalidation, never per message: a user
    whose ``last_seen_at`` is older than DIGEST_AFTER (longer than REVALIDATE_INTERVAL) has no
    open socket in any server process (see ``presence``)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="vendor_notification_presence",
    )
    last_seen_at = models.DateTimeField()
    #: The newest notification id a digest has covered: none up to it is emailed again.
    digested_up_to = models.BigIntegerField(default=0)
    #: The user's own choice to get no digests at all.
    digest_opt_out = models.BooleanField(default=False)

    class Meta:
        verbose_name_plural = "user presences"
        indexes = [
            # The digest command's batches: users away since a time, in id order.
            models.Index(fields=["last_seen_at"], name="vn_presence_last_seen_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.user}: last seen {self.last_seen_at:%Y-%m-%d %H:%M}"
