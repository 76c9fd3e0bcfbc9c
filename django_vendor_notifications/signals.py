"""The app's own signals for hosts, and revocation: changes to who may read a vendor's
notifications close the affected sockets.

``notification_created`` and ``notification_read`` let a host hook e-mail, mobile push or an
audit log onto the inbox without wrapping ``notify()``; both are sent after the change commits.

Revocation handlers are connected in ``AppConfig.ready()``. Each one sends a
``session.revalidate`` event (after the transaction commits) to the groups whose sockets may
have lost access; every such socket, on whichever server process holds it, re-checks its access
and closes with 4001 (the account is gone or inactive) or 4003 (no longer entitled). Hosts whose
access policy depends on other data call ``services.revalidate()`` themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal

from . import delivery
from .conf import app_settings
from .models import Notification
from .permissions import get_vendor_model

logger = logging.getLogger(__name__)

DISPATCH_PREFIX = "django_vendor_notifications.revoke"

#: Sent once per notification, after the transaction that created it commits, by notify() and
#: notify_many(). Arguments: sender=Notification, notification (the instance).
notification_created = Signal()
#: Sent when notifications become read, after that commits, by mark_read and mark_all_read.
#: Arguments: sender=Notification, vendor_id, notification_ids (a list of ints).
notification_read = Signal()


def send_created(notifications: Sequence[Notification]) -> None:
    for notification in notifications:
        _send(notification_created, "notification_created", notification=notification)


def send_read(vendor_id: Any, notification_ids: list[int]) -> None:
    if notification_ids:
        _send(
            notification_read,
            "notification_read",
            vendor_id=vendor_id,
            notification_ids=notification_ids,
        )


def _send(signal: Signal, name: str, **kwargs: Any) -> None:
    # Robust: a failing e-mail hook must neither stop an audit hook nor raise into the code
    # whose transaction just committed (the change is saved and already pushed).
    for receiver, result in signal.send_robust(sender=Notification, **kwargs):
        if isinstance(result, Exception):
            logger.error("A %s receiver (%r) failed.", name, receiver, exc_info=result)


def connect_revocation_signals() -> None:
    user_model = get_user_model()
    try:
        vendor_model = get_vendor_model()
    except ImproperlyConfigured:
        return  # The system checks report the setting.
    _connect(post_save, user_model, user_saved, "user-saved")
    _connect(post_delete, user_model, user_changed, "user-deleted")
    _connect(post_delete, vendor_model, vendor_deleted, "vendor-deleted")
    # Django permissions matter when the default policy falls back to them: the user's own,
    # their groups, and the permissions of those groups.
    for relation in ("user_permissions", "groups"):
        through = getattr(getattr(user_model, relation, None), "through", None)
        if through is not None:
            _connect(m2m_changed, through, user_relations_changed, f"user-{relation}")
    group_model = getattr(
        getattr(getattr(user_model, "groups", None), "field", None), "related_model", None
    )
    through = getattr(getattr(group_model, "permissions", None), "through", None)
    if through is not None:
        _connect(m2m_changed, through, user_relations_changed, "group-permissions")
    staff_model, vendor_attname = staff_model_of(vendor_model)
    if staff_model is not None:
        receiver = partial(staff_changed, vendor_attname=vendor_attname)
        _connect(post_save, staff_model, receiver, "staff-saved")
        _connect(post_delete, staff_model, receiver, "staff-deleted")
    role_model = role_model_of(vendor_model)
    if role_model is not None and role_model is not staff_model:
        _connect(post_save, role_model, everyone_changed, "role-saved")


def _connect(signal: Any, sender: Any, receiver: Any, name: str) -> None:
    signal.connect(receiver, sender=sender, dispatch_uid=f"{DISPATCH_PREFIX}.{name}", weak=False)


def related_path(vendor_model: type[models.Model], lookup: str | None) -> list[Any]:
    """The relation fields a lookup walks from the vendor model ("staff__role__x")."""
    fields: list[Any] = []
    model: Any = vendor_model
    for part in (lookup or "").split("__"):
        if model is None or not part:
            break
        try:
            field = model._meta.get_field(part)
        except Exception:
            break
        if not field.is_relation:
            break
        fields.append(field)
        model = field.related_model
    return fields


def staff_model_of(vendor_model: type[models.Model]) -> tuple[Any, str | None]:
    """The staff model (first hop of VENDOR_STAFF_LOOKUP) and its column pointing at the vendor."""
    path = related_path(vendor_model, app_settings.VENDOR_STAFF_LOOKUP)
    if not path or not path[0].auto_created:
        return None, None
    reverse = path[0]
    return reverse.related_model, reverse.field.attname


def role_model_of(vendor_model: type[models.Model]) -> Any:
    """The model holding the STAFF_PERMISSION_LOOKUP boolean, when it is a related model."""
    path = related_path(vendor_model, app_settings.STAFF_PERMISSION_LOOKUP)
    return path[-1].related_model if len(path) > 1 else None


def revalidate_later(group: str) -> None:
    """Ask ``group``'s sockets to re-check their access once the current transaction commits."""
    delivery.after_commit(lambda: delivery.send_event(group, {"type": delivery.REVALIDATE_EVENT}))


def user_saved(sender: Any, instance: Any, created: bool = False, **kwargs: Any) -> None:
    # Every login saves the user (last_login); only a deactivation can revoke access.
    if not created and not getattr(instance, "is_active", True):
        revalidate_later(delivery.user_group(instance.pk))


def user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    revalidate_later(delivery.user_group(instance.pk))


def user_relations_changed(sender: Any, instance: Any, action: str, **kwargs: Any) -> None:
    if action not in ("post_remove", "post_clear"):
        return
    if isinstance(instance, get_user_model()):
        revalidate_later(delivery.user_group(instance.pk))
    else:
        # A group or permission lost members: any socket may be affected.
        revalidate_later(delivery.broadcast_group())


def vendor_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    revalidate_later(delivery.vendor_group(instance.pk))


def staff_changed(
    sender: Any, instance: Any, vendor_attname: str | None = None, **kwargs: Any
) -> None:
    vendor_id = getattr(instance, vendor_attname, None) if vendor_attname else None
    group = delivery.broadcast_group() if vendor_id is None else delivery.vendor_group(vendor_id)
    revalidate_later(group)


def everyone_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    revalidate_later(delivery.broadcast_group())
