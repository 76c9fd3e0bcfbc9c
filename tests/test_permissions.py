"""The access policy: who acts for which vendor, and who may read its notifications."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.exceptions import ImproperlyConfigured
from django.db import models

from django_vendor_notifications import services
from django_vendor_notifications.permissions import (
    VendorAccessPolicy,
    get_access_policy,
    get_vendor_model,
)
from tests.conftest import make_user, vendor_settings
from tests.testapp.models import Role, Staff, Vendor

pytestmark = pytest.mark.django_db


class OwnersOnlyPolicy(VendorAccessPolicy):
    """A host policy: staff never see notifications, whatever their role says."""

    def can_access(self, user: Any, vendor: models.Model) -> bool:
        return self.is_owner(user, vendor)


def staff_of(vendor: Vendor, user: Any, *, allowed: bool) -> Staff:
    role = Role.objects.create(name=f"role-{allowed}", can_view_notifications=allowed)
    return Staff.objects.create(vendor=vendor, user=user, role=role)


def grant_view_permission(user: Any) -> Any:
    user.user_permissions.add(
        Permission.objects.get(
            content_type__app_label="django_vendor_notifications", codename="view_notification"
        )
    )
    # has_perm caches permissions on the instance: reload it.
    return type(user).objects.get(pk=user.pk)


def test_vendor_model() -> None:
    assert get_vendor_model() is Vendor


@pytest.mark.parametrize("label", ["testapp.Nope", "nope.Vendor"])
def test_vendor_model_not_installed(label: str) -> None:
    with vendor_settings(VENDOR_MODEL=label), pytest.raises(ImproperlyConfigured, match=label):
        get_vendor_model()


def test_owner(owner: Any, vendor: Vendor) -> None:
    policy = VendorAccessPolicy()
    assert policy.get_vendor(owner) == vendor
    assert policy.is_owner(owner, vendor) is True
    assert policy.can_access(owner, vendor) is True


def test_permitted_staff(staff: Any, vendor: Vendor) -> None:
    policy = VendorAccessPolicy()
    assert policy.get_vendor(staff) == vendor
    assert policy.is_owner(staff, vendor) is False
    assert policy.has_vendor_role_permission(staff, vendor) is True
    assert policy.can_access(staff, vendor) is True


def test_staff_without_permission(staff_without_permission: Any, vendor: Vendor) -> None:
    policy = VendorAccessPolicy()
    assert policy.get_vendor(staff_without_permission) == vendor
    assert policy.can_access(staff_without_permission, vendor) is False


def test_customer(customer: Any, vendor: Vendor) -> None:
    assert VendorAccessPolicy().get_vendor(customer) is None


def test_staff_not_allowed_for_another_vendor(staff: Any, other_vendor: Vendor) -> None:
    assert VendorAccessPolicy().can_access(staff, other_vendor) is False


def test_permission_and_membership_must_be_the_same_staff_row(db: Any) -> None:
    first = Vendor.objects.create(user=make_user(), name="first")
    second = Vendor.objects.create(user=make_user(), name="second")
    user = make_user()
    # Allowed at the second vendor only; the user acts for the first (lowest pk).
    staff_of(first, user, allowed=False)
    staff_of(second, user, allowed=True)
    # A colleague at the first vendor is allowed: their role must not count for this user.
    staff_of(first, make_user(), allowed=True)
    policy = VendorAccessPolicy()
    assert policy.get_vendor(user) == first
    assert policy.can_access(user, first) is False
    assert policy.can_access(user, second) is True


def test_owner_who_is_also_staff_elsewhere_acts_for_own_vendor(db: Any) -> None:
    # Created first, so it has the lower pk and would win a plain order_by("pk").
    elsewhere = Vendor.objects.create(user=make_user(), name="elsewhere")
    owner = make_user()
    own = Vendor.objects.create(user=owner, name="own")
    staff_of(elsewhere, owner, allowed=True)
    assert VendorAccessPolicy().get_vendor(owner) == own
    assert services.open_session(owner) == services.Session(user_id=owner.pk, vendor_id=own.pk)


def test_without_staff_lookup_staff_act_for_nobody(staff: Any, vendor: Vendor) -> None:
    with vendor_settings(VENDOR_STAFF_LOOKUP=None, STAFF_PERMISSION_LOOKUP=None):
        policy = VendorAccessPolicy()
        assert policy.get_vendor(staff) is None
        assert policy.has_vendor_role_permission(staff, vendor) is False
        assert policy.get_vendor(vendor.user) == vendor


class TestDjangoPermissionFallback:
    """STAFF_PERMISSION_LOOKUP None: staff need the app's view_notification permission."""

    def test_staff_without_django_permission(self, staff: Any, vendor: Vendor) -> None:
        # The role allows it, but the role is not consulted any more.
        with vendor_settings(STAFF_PERMISSION_LOOKUP=None):
            assert VendorAccessPolicy().can_access(staff, vendor) is False
            assert services.open_session(staff) is None

    def test_staff_with_django_permission(
        self, staff_without_permission: Any, vendor: Vendor
    ) -> None:
        user = grant_view_permission(staff_without_permission)
        with vendor_settings(STAFF_PERMISSION_LOOKUP=None):
            assert VendorAccessPolicy().can_access(user, vendor) is True
            assert services.open_session(user) == services.Session(
                user_id=user.pk, vendor_id=vendor.pk
            )

    def test_django_permission_without_membership(self, customer: Any, vendor: Vendor) -> None:
        user = grant_view_permission(customer)
        with vendor_settings(STAFF_PERMISSION_LOOKUP=None):
            assert VendorAccessPolicy().has_vendor_role_permission(user, vendor) is False

    def test_superuser_staff_member(self, vendor: Vendor) -> None:
        user = make_user(is_superuser=True)
        staff_of(vendor, user, allowed=False)
        with vendor_settings(STAFF_PERMISSION_LOOKUP=None):
            assert VendorAccessPolicy().can_access(user, vendor) is True


def test_default_policy_class() -> None:
    assert type(get_access_policy()) is VendorAccessPolicy


def test_custom_policy_is_used(owner: Any, staff: Any, vendor: Vendor) -> None:
    with vendor_settings(ACCESS_POLICY=f"{__name__}.OwnersOnlyPolicy"):
        assert isinstance(get_access_policy(), OwnersOnlyPolicy)
        assert services.open_session(staff) is None
        assert services.open_session(owner) == services.Session(
            user_id=owner.pk, vendor_id=vendor.pk
        )


def test_unimportable_policy_names_the_setting() -> None:
    with (
        vendor_settings(ACCESS_POLICY="tests.nowhere.Policy"),
        pytest.raises(ImproperlyConfigured, match=r'VENDOR_NOTIFICATIONS\["ACCESS_POLICY"\]'),
    ):
        get_access_policy()
