"""How frames reach sockets: group names, channel-layer events, and publishing that never hangs.

The database is the source of truth; everything here is the fast path on top of it. A publish
that fails (Redis away, a slow network) is logged and reported as False, never raised into the
host's code: clients recover what they missed from the table (``sync``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.apps import apps
from django.db import router, transaction

from .conf import app_settings

logger = logging.getLogger(__name__)

#: A ready-made frame for every socket of a group: {"text": frame, "exclude": channel?,
#: "id": notification id?, "previous_id": the vendor's previous notification id?,
#: "sent_at": the publisher's time.time() when it carries an id, "category": its label?}.
PUSH_EVENT = "notification.push"
#: One frame for many vendors (notify_many to all_notifications): {"template": text with
#: placeholders, "ids": {str(vendor_id): notification id}, "category": its label}.
BROADCAST_EVENT = "notification.broadcast"
#: Makes a socket re-send its unread_notifications frame.
RELOAD_EVENT = "reload_unread_notifications"
#: Makes a socket re-check its access and close (4001/4003) when it has lost it.
REVALIDATE_EVENT = "session.revalidate"

#: A user changed their preferences: {"text": the preferences_changed frame, "quiet": the
#: categories no longer pushed live to that user's sockets, "exclude": channel?}.
PREFERENCES_EVENT = "notification.preferences"

#: Placeholders a broadcast template carries where each vendor's own values go.
ID_PLACEHOLDER = '"@@vn-id@@"'
VENDOR_PLACEHOLDER = '"@@vn-vendor@@"'


def user_group(user_id: Any) -> str:
    return app_settings.USER_GROUP.format(user_id=user_id)


def vendor_group(vendor_id: Any) -> str:
    return app_settings.VENDOR_GROUP.format(vendor_id=vendor_id)


def broadcast_group() -> str:
    return app_settings.BROADCAST_GROUP


def after_commit(callback: Any) -> None:
    """Run ``callback`` once the notification table's transaction commits (now, outside one):
    a push must never announce a row that a rollback takes back."""
    # Looked up, not imported: this module stays importable before the app registry is ready.
    notification_model = apps.get_model("django_vendor_notifications", "Notification")
    transaction.on_commit(callback, using=router.db_for_write(notification_model))


def channel_layer() -> Any:
    return get_channel_layer(app_settings.CHANNEL_LAYER)


async def asend_event(group: str, event: dict[str, Any]) -> bool:
    """Send ``event`` to ``group`` within PUBLISH_TIMEOUT; False (and a warning) on failure."""
    layer = channel_layer()
    if layer is None:
        logger.warning(
            "No channel layer %r in CHANNEL_LAYERS; event for %s not sent.",
            app_settings.CHANNEL_LAYER,
            group,
        )
        return False
    try:
        await asyncio.wait_for(layer.group_send(group, event), app_settings.PUBLISH_TIMEOUT)
    except Exception as exc:
        # The row is committed already and clients catch up with sync; a push failure must
        # never break the host's request.
        logger.warning("Could not publish to group %s: %r", group, exc)
        return False
    return True


def send_event(group: str, event: dict[str, Any]) -> bool:
    """Synchronous asend_event, for code that runs outside an event loop (views, tasks)."""
    return bool(async_to_sync(asend_event)(group, event))


def push_event(
    frame_text: str,
    *,
    notification_id: int | None = None,
    previous_id: int | None = None,
    category: str | None = None,
    exclude: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": PUSH_EVENT, "text": frame_text}
    if category is not None:
        # Lets a socket leave out a category its user muted without decoding the frame.
        event["category"] = category
    if notification_id is not None:
        event["id"] = notification_id
        event["previous_id"] = previous_id or 0
        # Lets a socket notice that its channel was backlogged (and may have overflowed).
        event["sent_at"] = time.time()
    if exclude is not None:
        event["exclude"] = exclude
    return event


def reload_unread(vendor_id: Any | None = None) -> bool:
    """Make the vendor's sockets (or every socket, for None) re-send their unread frame."""
    group = broadcast_group() if vendor_id is None else vendor_group(vendor_id)
    return send_event(group, {"type": RELOAD_EVENT})


def preferences_event(
    frame_text: str, quiet: Iterable[str], exclude: str | None = None
) -> dict[str, Any]:
    event: dict[str, Any] = {"type": PREFERENCES_EVENT, "text": frame_text, "quiet": sorted(quiet)}
    if exclude is not None:
        event["exclude"] = exclude
    return event
