"""Validation of the HTTP API's input: query parameters and request bodies.

Input only: what the API sends is built by ``payloads``, like every socket frame, so a
notification looks the same over HTTP and over the socket. The rules are the socket's
(``protocol``): ids are 64-bit, labels are what the database can store.
"""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from .protocol import MAX_ID, MAX_LABEL_LENGTH, is_label


class LabelField(serializers.CharField):
    """A category label, as the socket accepts it (no NUL, valid Unicode, 1 to 100 chars)."""

    default_error_messages = {
        "invalid_label": _("A category label of 1 to {max_length} characters."),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", MAX_LABEL_LENGTH)
        kwargs.setdefault("required", False)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not is_label(data):
            self.fail("invalid_label", max_length=MAX_LABEL_LENGTH)
        return str(super().to_internal_value(data))


def id_field(*, minimum: int = 1, **kwargs: Any) -> serializers.IntegerField:
    return serializers.IntegerField(min_value=minimum, max_value=MAX_ID, **kwargs)


class VendorQuery(serializers.Serializer):
    """Every request may name the vendor it acts for; by default the policy's vendor."""

    vendor = serializers.CharField(
        required=False,
        max_length=255,
        help_text="Primary key of the vendor to act for (staff of several vendors). "
        "Default: the vendor the access policy gives the user. A vendor the user may not "
        "read is a 404.",
    )


class HistoryQuery(VendorQuery):
    page = id_field(required=False, help_text="The spec's page number, from 1 (PAGE_SIZE each).")
    before_id = id_field(
        required=False,
        help_text="Cursor: only notifications with a smaller id. Leave it out for the newest.",
    )
    limit = id_field(
        required=False,
        help_text="Items per cursor page (PAGE_SIZE by default, MAX_PAGE_SIZE at most).",
    )
    category = LabelField(help_text="Only this category label.")
    is_read = serializers.BooleanField(required=False, allow_null=True, default=None)
    archived = serializers.BooleanField(
        required=False,
        allow_null=True,
        default=None,
        help_text="true: only archived ones; false: none of them; absent: all.",
    )

    #: What only the before_id cursor accepts; the spec's pages take no filters.
    CURSOR_ONLY = ("limit", "category", "is_read", "archived")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("page") is not None:
            errors = {
                name: [_("Only with before_id pages, not with page.")]
                for name in ("before_id", *self.CURSOR_ONLY)
                if attrs.get(name) is not None
            }
            if errors:
                raise serializers.ValidationError(errors)
        return attrs


class SyncQuery(VendorQuery):
    since_id = id_field(
        minimum=0, help_text="The newest id the client has; 0 for everything (SYNC_LIMIT at most)."
    )


class MarkAllReadBody(serializers.Serializer):
    category = LabelField(
        allow_null=True, default=None, help_text="Only this category; every one by default."
    )


class NotificationId(serializers.Serializer):
    """The id in a notification's URL: a 64-bit id, as on the socket."""

    id = id_field()


class PreferencesField(serializers.Field):
    """{label: "live" | "muted" | "digest", or null for the default}, checked by
    ``preferences.validated`` as on the socket; an error is one message, not one per label."""

    def to_internal_value(self, data: Any) -> dict[str, str | None]:
        from . import preferences

        try:
            return preferences.validated(data)
        except preferences.PreferenceError as error:
            raise serializers.ValidationError(error.message, code=error.code) from None

    def to_representation(self, value: Any) -> Any:
        return value


class PreferencesBody(serializers.Serializer):
    """A set_preferences body."""

    preferences = PreferencesField(
        help_text="Category label to 'live', 'muted' or 'digest'; null goes back to the default."
    )


class MarkSeenBody(serializers.Serializer):
    """A mark-seen body (SEEN)."""

    up_to_id = id_field(help_text="The newest id the inbox displayed.")


class SnoozeBody(serializers.Serializer):
    """A snooze body (SNOOZE): ``until`` checked by ``services.snooze_until`` as on the socket."""

    until = serializers.CharField(
        help_text="ISO 8601 with the UTC offset, in the future and at most SNOOZE_MAX ahead."
    )

    def validate_until(self, value: str) -> Any:
        from . import services

        try:
            return services.snooze_until(value)
        except services.SnoozeError as error:
            raise serializers.ValidationError(str(error), code="invalid") from None
