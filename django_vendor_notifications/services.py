"""The app's Python API: creating, reading and publishing notifications.

Every function here is synchronous, plain Django: a host calls ``notify()`` from a view, a task or
a shell, and the consumer calls the rest through ``database_sync_to_async``. None of them needs a
socket, so each is tested on its own.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import models, router, transaction
from django.db.models.functions import Coalesce
from django.utils import timezone

from . import payloads
from .conf import app_settings
from .models import Notification
from .permissions import get_access_policy
from .protocol import MAX_ID

logger = logging.getLogger(__name__)

#: Channel-layer event type of a push; the consumer forwards its "text" as it is.
PUSH_EVENT = "notification.push"
#: Channel-layer event type that makes a socket re-send its unread_notifications frame.
RELOAD_EVENT = "reload_unread_notifications"


# --- group names ---------------------------------------------------------------------------


def user_group(user_id: Any) -> str:
    return app_settings.USER_GROUP.format(user_id=user_id)


def vendor_group(vendor_id: Any) -> str:
    return app_settings.VENDOR_GROUP.format(vendor_id=vendor_id)


def broadcast_group() -> str:
    return app_settings.BROADCAST_GROUP


# --- the connect path ----------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    """What an accepted socket acts for, decided once on connect."""

    user_id: Any
    vendor_id: Any

    @property
    def groups(self) -> tuple[str, ...]:
        return (user_group(self.user_id), broadcast_group(), vendor_group(self.vendor_id))


def open_session(user: Any) -> Session | None:
    """The Session for an authenticated user, or None when they may not read notifications."""
    policy = get_access_policy()
    vendor = policy.get_vendor(user)
    if vendor is None or not policy.can_access(user, vendor):
        return None
    return Session(user_id=user.pk, vendor_id=vendor.pk)


def unread_notifications(vendor_id: Any) -> payloads.Frame:
    """The unread_notifications frame: unread, newest first, at most UNREAD_LIMIT. One query."""
    rows = (
        Notification.objects.for_vendor(vendor_id)
        .unread()
        .newest_first()
        .values(*payloads.ITEM_FIELDS)[: app_settings.UNREAD_LIMIT]
    )
    return payloads.unread_notifications_frame(rows)


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
        Notification.objects.for_vendor(vendor_id)
        .newest_first()
        .values(*payloads.ITEM_FIELDS)[offset : offset + size + 1]
    )
    return payloads.load_more_frame(page, len(rows) > size, rows[:size])


def mark_read(vendor_id: Any, notification_id: int) -> bool:
    """Mark one of the vendor's notifications read; False when it is not the vendor's.

    One UPDATE. Idempotent: marking a read notification again succeeds and keeps the first
    ``readed_at``.
    """
    updated = Notification.objects.filter(pk=notification_id, vendor_id=vendor_id).update(
        is_read=True,
        is_recent_notification=False,
        readed_at=Coalesce(models.F("readed_at"), models.Value(timezone.now())),
    )
    return updated == 1


# --- the push path -------------------------------------------------------------------------


def notify(
    vendor: models.Model | Any,
    message: str,
    *,
    category: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> Notification:
    """Create a notification for ``vendor`` and push it to the vendor's open sockets.

    ``vendor`` is a vendor instance or its primary key. The push happens after the surrounding
    transaction commits (at once outside a transaction), so a rolled-back notification is
    never shown. If the channel layer is unreachable the notification is still saved and a
    warning is logged; clients see it on their next connect.
    """
    category = category or app_settings.DEFAULT_CATEGORY
    allowed = app_settings.CATEGORIES
    if allowed is not None and category not in allowed:
        raise ValueError(
            f"Unknown category {category!r}; {app_settings.setting_name('CATEGORIES')} "
            f"allows {list(allowed)!r}."
        )
    if context is not None and not isinstance(context, Mapping):
        raise TypeError("context must be a mapping (it is sent as a JSON object).")
    vendor_id = vendor.pk if isinstance(vendor, models.Model) else vendor
    notification = Notification.objects.create(
        vendor_id=vendor_id,
        category=category,
        message=message,
        context_data=dict(context or {}),
    )
    # Serialise once here; every socket of the vendor forwards the same text.
    frame = payloads.encode(payloads.new_notification_frame(_row(notification)))
    using = router.db_for_write(Notification)
    transaction.on_commit(partial(publish_frame, vendor_group(vendor_id), frame), using=using)
    return notification


def publish_frame(group: str, frame_text: str) -> bool:
    """Send an encoded frame to every socket in ``group``; False (and a warning) on failure."""
    return send_event(group, {"type": PUSH_EVENT, "text": frame_text})


def reload_unread(vendor: models.Model | Any | None = None) -> bool:
    """Make the vendor's sockets (or every socket, for None) re-send their unread frame."""
    if vendor is None:
        group = broadcast_group()
    else:
        group = vendor_group(vendor.pk if isinstance(vendor, models.Model) else vendor)
    return send_event(group, {"type": RELOAD_EVENT})


def send_event(group: str, event: dict[str, Any]) -> bool:
    layer = get_channel_layer(app_settings.CHANNEL_LAYER)
    if layer is None:
        logger.warning(
            "No channel layer %r in CHANNEL_LAYERS; event for %s not sent.",
            app_settings.CHANNEL_LAYER,
            group,
        )
        return False
    try:
        async_to_sync(layer.group_send)(group, event)
    except Exception:
        # The row is committed already; the database is the source of truth and clients
        # catch up on reconnect. A push failure must never break the host's request.
        logger.warning("Could not publish to group %s.", group, exc_info=True)
        return False
    return True


def _row(notification: Notification) -> dict[str, Any]:
    return {name: getattr(notification, name) for name in payloads.ITEM_FIELDS}
