from __future__ import annotations

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from .models import Notification, NotificationPreference, UserPresence


@admin.register(Notification)
class NotificationAdmin(admin.ModelAdmin):
    list_display = ("id", "vendor", "category", "short_message", "is_read", "created_at")
    list_filter = ("is_read", "category", "created_at")
    search_fields = ("message",)
    raw_id_fields = ("vendor",)
    date_hierarchy = "created_at"
    # Set by the app (mark_seen, snooze): an edit here would reach no socket.
    readonly_fields = ("readed_at", "seen_at", "snoozed_until")
    actions = ("mark_as_read",)

    @admin.display(description="message")
    def short_message(self, notification: Notification) -> str:
        return notification.message[:80]

    @admin.action(description="Mark selected notifications as read")
    def mark_as_read(self, request: HttpRequest, queryset: QuerySet[Notification]) -> None:
        # Only unread rows, so readed_at keeps the first time a notification was read.
        updated = queryset.filter(is_read=False).update(
            is_read=True, is_recent_notification=False, readed_at=timezone.now()
        )
        self.message_user(request, f"{updated} notification(s) marked as read.")


@admin.register(NotificationPreference)
class NotificationPreferenceAdmin(admin.ModelAdmin):
    """Users' own choices; a category without a row has its PREFERENCE_DEFAULTS value. Sockets
    open when a row is changed here follow it on their next connect."""

    list_display = ("user", "category", "delivery")
    list_filter = ("delivery", "category")
    search_fields = ("category",)
    raw_id_fields = ("user",)


@admin.register(UserPresence)
class UserPresenceAdmin(admin.ModelAdmin):
    """When each user was last present and what their email digests have covered (DIGESTS).
    Written by the sockets and the digest command; only the opt-out is a user's choice."""

    list_display = ("user", "last_seen_at", "digested_up_to", "digest_opt_out")
    list_filter = ("digest_opt_out",)
    raw_id_fields = ("user",)
    readonly_fields = ("last_seen_at", "digested_up_to")

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A row is made when its user first connects (or opts out through the API).
        return False
