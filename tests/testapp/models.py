"""A host's data model as the tests see it: vendors, staff, and roles."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class Vendor(models.Model):
    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    name = models.CharField(max_length=100)

    def __str__(self) -> str:
        return self.name


class Role(models.Model):
    name = models.CharField(max_length=50)
    can_view_notifications = models.BooleanField(default=False)

    def __str__(self) -> str:
        return self.name


class Staff(models.Model):
    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="staff")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    role = models.ForeignKey(Role, on_delete=models.PROTECT)

    def __str__(self) -> str:
        return f"{self.user} at {self.vendor}"
