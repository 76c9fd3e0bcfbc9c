from __future__ import annotations

from django.contrib import admin

from .models import Vendor, VendorRole, VendorStaff


class VendorStaffInline(admin.TabularInline):
    model = VendorStaff
    extra = 0
    raw_id_fields = ("user",)


@admin.register(Vendor)
class VendorAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "user")
    search_fields = ("name", "user__username")
    raw_id_fields = ("user",)
    inlines = (VendorStaffInline,)


@admin.register(VendorRole)
class VendorRoleAdmin(admin.ModelAdmin):
    list_display = ("name", "can_view_notifications")
    list_filter = ("can_view_notifications",)


@admin.register(VendorStaff)
class VendorStaffAdmin(admin.ModelAdmin):
    list_display = ("user", "vendor", "role")
    list_filter = ("role",)
    raw_id_fields = ("user", "vendor")
