"""Who may read which vendor's notifications: the access policy a host configures.

The policy is an adapter (django-allauth style): a class with small overridable methods,
named by ``VENDOR_NOTIFICATIONS["ACCESS_POLICY"]`` and loaded by :func:`get_access_policy`.
Its methods run in a worker thread under ``database_sync_to_async``: they may query the
database, and they must not assume a request.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.exceptions import ImproperlyConfigured
from django.db import models
from django.db.models import BooleanField, Exists, ExpressionWrapper, F, OuterRef, Q

from .conf import app_settings

NOTIFICATION_PERMISSION = "django_vendor_notifications.view_notification"


def get_vendor_model() -> type[models.Model]:
    """The host's vendor model, named by VENDOR_NOTIFICATIONS["VENDOR_MODEL"]."""
    label = app_settings.VENDOR_MODEL
    try:
        return apps.get_model(label, require_ready=False)
    except (LookupError, ValueError) as exc:
        raise ImproperlyConfigured(
            f"{app_settings.setting_name('VENDOR_MODEL')} refers to {label!r}, "
            "which is not an installed model."
        ) from exc


class VendorAccessPolicy:
    """The default policy, driven by settings.

    - A user acts for the vendor whose ``VENDOR_OWNER_FIELD`` points at them (the owner), or
      failing that, for a vendor they are staff of through ``VENDOR_STAFF_LOOKUP``.
    - Owners may always read their vendor's notifications.
    - Staff may when their role allows it (the spec's ``has_vendor_role_permission``): the
      boolean at ``STAFF_PERMISSION_LOOKUP`` is true for their staff row or, when that setting
      is None, the user has the ``view_notification`` permission of this app.

    Override any method in a subclass to fit a different data model.
    """

    def get_vendor(self, user: Any) -> models.Model | None:
        """The vendor ``user`` acts for, or None."""
        vendor_model = get_vendor_model()
        owner_field = app_settings.VENDOR_OWNER_FIELD
        staff_lookup = app_settings.VENDOR_STAFF_LOOKUP
        owns = Q(**{owner_field: user})
        if staff_lookup is None:
            return vendor_model._default_manager.filter(owns).order_by("pk").first()
        # One query for both cases; a user who owns a vendor acts for it even if they are
        # also staff somewhere else.
        vendors = (
            vendor_model._default_manager.filter(owns | Q(**{staff_lookup: user}))
            .annotate(_vn_owned=ExpressionWrapper(owns, output_field=BooleanField()))
            .order_by("-_vn_owned", "pk")
        )
        permission_lookup = app_settings.STAFF_PERMISSION_LOOKUP
        if permission_lookup is not None:
            # The role check rides along, so a staff member's connect costs no extra query
            # (read back by has_vendor_role_permission).
            role_allows = vendor_model._default_manager.filter(
                pk=OuterRef("pk"), **{staff_lookup: user, permission_lookup: True}
            )
            vendors = vendors.annotate(_vn_role_allows=Exists(role_allows))
        vendor = vendors.first()
        if vendor is not None:
            vendor._vn_checked_for = user.pk
        return vendor

    def is_owner(self, user: Any, vendor: models.Model) -> bool:
        owner_field = vendor._meta.get_field(app_settings.VENDOR_OWNER_FIELD)
        return getattr(vendor, owner_field.attname) == user.pk  # type: ignore[union-attr]

    def has_vendor_role_permission(self, user: Any, vendor: models.Model) -> bool:
        """Whether a staff member's role lets them read this vendor's notifications."""
        staff_lookup = app_settings.VENDOR_STAFF_LOOKUP
        if staff_lookup is None:
            return False
        if getattr(vendor, "_vn_checked_for", None) == user.pk:
            answered = getattr(vendor, "_vn_role_allows", None)
            if answered is not None:
                return bool(answered)
        permission_lookup = app_settings.STAFF_PERMISSION_LOOKUP
        vendors = type(vendor)._default_manager.filter(pk=vendor.pk)
        if permission_lookup is None:
            return vendors.filter(**{staff_lookup: user}).exists() and user.has_perm(
                NOTIFICATION_PERMISSION
            )
        # Both conditions in one filter() call, so they apply to the same staff row.
        return vendors.filter(**{staff_lookup: user, permission_lookup: True}).exists()

    def can_access(self, user: Any, vendor: models.Model) -> bool:
        """Whether ``user`` may receive and manage ``vendor``'s notifications."""
        return self.is_owner(user, vendor) or self.has_vendor_role_permission(user, vendor)

    def get_vendors(self, users: list[Any]) -> dict[Any, models.Model]:
        """{user pk: the vendor they may read} for many users at once (the email digest),
        users who may read none left out.

        Owners, and staff whose role is read through STAFF_PERMISSION_LOOKUP, in two queries
        whatever their number. The rest (staff checked by Django permission) and every user
        of a subclass that overrides the per-user methods, through those methods, one user at
        a time, so that a custom policy is never bypassed."""
        if any(
            getattr(type(self), name) is not getattr(VendorAccessPolicy, name)
            for name in ("get_vendor", "is_owner", "has_vendor_role_permission", "can_access")
        ):
            return self._get_vendors_one_by_one(users)
        vendor_model = get_vendor_model()
        manager = vendor_model._default_manager
        owner_field = vendor_model._meta.get_field(app_settings.VENDOR_OWNER_FIELD)
        owner_column = owner_field.attname  # type: ignore[union-attr]
        found: dict[Any, models.Model] = {}
        for vendor in manager.filter(**{f"{owner_column}__in": [u.pk for u in users]}).order_by(
            "-pk"
        ):
            # Descending, so the lowest pk wins, as in get_vendor().
            found[getattr(vendor, owner_column)] = vendor
        rest = [user for user in users if user.pk not in found]
        staff_lookup = app_settings.VENDOR_STAFF_LOOKUP
        permission_lookup = app_settings.STAFF_PERMISSION_LOOKUP
        if not rest or staff_lookup is None:
            return found
        if permission_lookup is None:
            return {**found, **self._get_vendors_one_by_one(rest)}
        # As get_vendor(): the lowest pk of the vendors a user is staff of, then whether the
        # role of that staff row allows it (the annotations reuse the filter's join).
        staff_of = (
            manager.filter(**{f"{staff_lookup}__in": [u.pk for u in rest]})
            .annotate(_vn_user=F(staff_lookup), _vn_role_allows=F(permission_lookup))
            .order_by("pk")
        )
        first: dict[Any, models.Model] = {}
        for vendor in staff_of:
            first.setdefault(vendor._vn_user, vendor)
        found.update(
            (user_pk, vendor)
            for user_pk, vendor in first.items()
            if vendor._vn_role_allows  # type: ignore[attr-defined]
        )
        return found

    def _get_vendors_one_by_one(self, users: list[Any]) -> dict[Any, models.Model]:
        found = {}
        for user in users:
            vendor = self.get_vendor(user)
            if vendor is not None and self.can_access(user, vendor):
                found[user.pk] = vendor
        return found


def get_access_policy() -> VendorAccessPolicy:
    """An instance of the configured ``ACCESS_POLICY`` class."""
    policy_class = app_settings.import_setting("ACCESS_POLICY")
    return policy_class()
