"""Who may read which vendor's notifications, in plain ORM code for this marketplace's models.

Named by ``VENDOR_NOTIFICATIONS["ACCESS_POLICY"]`` in settings. The methods run in a worker
thread on every WebSocket connect, so they stay to one or two small queries and never assume a
request.
"""

from __future__ import annotations

from typing import Any

from django_vendor_notifications.permissions import VendorAccessPolicy

from .models import Vendor, VendorStaff


class MarketplaceAccessPolicy(VendorAccessPolicy):
    def get_vendor(self, user: Any) -> Vendor | None:
        """An owner acts for their own vendor; anyone else for the vendor they work for."""
        vendor = Vendor.objects.filter(user=user).first()
        if vendor is not None:
            return vendor
        staff = (
            VendorStaff.objects.filter(user=user).select_related("vendor").order_by("pk").first()
        )
        return staff.vendor if staff is not None else None

    def is_owner(self, user: Any, vendor: Any) -> bool:
        return bool(vendor.user_id == user.pk)

    def has_vendor_role_permission(self, user: Any, vendor: Any) -> bool:
        """Staff may read the notifications only when their role says so."""
        return VendorStaff.objects.filter(
            vendor=vendor, user=user, role__can_view_notifications=True
        ).exists()
