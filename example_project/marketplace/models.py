"""A host's data model, kept small: vendors, the staff who work for them, and staff roles."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Vendor(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vendor"
    )
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class VendorRole(models.Model):
    name = models.CharField(max_length=50, unique=True)
    can_view_notifications = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class VendorStaff(models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="vendor_staff"
    )
    # PROTECT: deleting a role must not silently remove the people who hold it.
    role = models.ForeignKey(VendorRole, on_delete=models.PROTECT, related_name="staff")

    class Meta:
        verbose_name_plural = "vendor staff"
        constraints = [
            models.UniqueConstraint(fields=["vendor", "user"], name="marketplace_unique_staff")
        ]

    def __str__(self) -> str:
        return f"{self.user} at {self.vendor} ({self.role})"
