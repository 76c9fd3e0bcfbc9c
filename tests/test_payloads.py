"""The wire format of items and frames, built in one place."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from django.test import override_settings

from django_vendor_notifications import payloads, services
from django_vendor_notifications.models import Notification
from tests.conftest import vendor_settings
from tests.testapp.models import Vendor

UTC = datetime.timezone.utc
UTC_MINUS_5 = datetime.timezone(datetime.timedelta(hours=-5))
ITEM_KEYS = {
    "id",
    "vendor",
    "category",
    "message",
    "context_data",
    "is_read",
    "readed_at",
    "created_at",
}


def row(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "id": 1,
        "vendor_id": 123,
        "category": "Order Notifications",
        "message": "Order #123 has been placed.",
        "context_data": {},
        "is_read": False,
        "readed_at": None,
        "created_at": datetime.datetime(2025, 3, 12, 9, 15, tzinfo=UTC),
    }
    values.update(fields)
    return values


def test_item_matches_the_spec_example() -> None:
    assert payloads.notification_item(row()) == {
        "id": 1,
        "vendor": 123,
        "category": "Order Notifications",
        "message": "Order #123 has been placed.",
        "context_data": "{}",
        "is_read": False,
        "readed_at": None,
        # 09:15 UTC is 10:15 in Berlin in winter (CET, UTC+1).
        "created_at": "12-03-2025 10:15:00",
    }


def test_item_keys_exactly() -> None:
    assert set(payloads.notification_item(row())) == ITEM_KEYS


@pytest.mark.parametrize("empty", [{}, None])
def test_empty_context_is_the_string_braces(empty: Any) -> None:
    assert payloads.notification_item(row(context_data=empty))["context_data"] == "{}"


def test_context_data_is_a_json_string() -> None:
    context = {"order_id": 123, "items": [1, 2], "nested": {"ok": True}}
    encoded = payloads.notification_item(row(context_data=context))["context_data"]
    assert isinstance(encoded, str)
    assert json.loads(encoded) == context


def test_unicode_is_preserved_not_escaped() -> None:
    message = "Bestellung für Café ☕ — 注文"
    item = payloads.notification_item(row(message=message, context_data={"name": "Zoë"}))
    assert item["message"] == message
    assert item["context_data"] == '{"name": "Zoë"}'
    text = payloads.encode(payloads.new_notification_frame(row(message=message)))
    assert message in text
    assert "\\u" not in text


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Winter: CET is UTC+1.
        (datetime.datetime(2025, 3, 12, 9, 15, tzinfo=UTC), "12-03-2025 10:15:00"),
        # Summer: CEST is UTC+2, and the local date is already the next day.
        (datetime.datetime(2025, 7, 1, 22, 30, 5, tzinfo=UTC), "02-07-2025 00:30:05"),
        # An instant given in another zone is still rendered in Berlin time.
        (datetime.datetime(2025, 1, 5, 8, 0, tzinfo=UTC_MINUS_5), "05-01-2025 14:00:00"),
    ],
)
def test_datetimes_are_rendered_in_time_zone(instant: datetime.datetime, expected: str) -> None:
    item = payloads.notification_item(row(created_at=instant, readed_at=instant, is_read=True))
    assert item["created_at"] == expected
    assert item["readed_at"] == expected


def test_time_zone_setting_is_read_when_formatting() -> None:
    instant = datetime.datetime(2025, 3, 12, 9, 15, tzinfo=UTC)
    with override_settings(TIME_ZONE="Asia/Kolkata"):
        assert payloads.format_datetime(instant) == "12-03-2025 14:45:00"


def test_datetime_format_override() -> None:
    instant = datetime.datetime(2025, 3, 12, 9, 15, tzinfo=UTC)
    with vendor_settings(DATETIME_FORMAT="%Y-%m-%dT%H:%M%z"):
        assert payloads.notification_item(row(created_at=instant))["created_at"] == (
            "2025-03-12T10:15+0100"
        )


def test_none_datetime_stays_null() -> None:
    assert payloads.format_datetime(None) is None


def test_grouping_by_category_preserves_order() -> None:
    rows = [
        row(id=5, category="Order Notifications"),
        row(id=4, category="General Notifications"),
        row(id=3, category="Order Notifications"),
        row(id=2, category="Payout Notifications"),
        row(id=1, category="General Notifications"),
    ]
    grouped = payloads.group_by_category(rows)
    assert list(grouped) == ["Order Notifications", "General Notifications", "Payout Notifications"]
    assert [item["id"] for item in grouped["Order Notifications"]] == [5, 3]
    assert [item["id"] for item in grouped["General Notifications"]] == [4, 1]
    assert [item["id"] for item in grouped["Payout Notifications"]] == [2]


def test_frames() -> None:
    assert payloads.unread_notifications_frame([]) == {
        "action": "unread_notifications",
        "notifications": {},
    }
    assert payloads.load_more_frame(2, True, [row()]) == {
        "action": "load_more",
        "page": 2,
        "has_more": True,
        "notifications": {"Order Notifications": [payloads.notification_item(row())]},
    }
    assert payloads.mark_read_frame(7, True) == {
        "action": "mark_read",
        "notification_id": 7,
        "status": "success",
    }
    assert payloads.mark_read_frame(7, False) == {
        "action": "mark_read",
        "notification_id": 7,
        "status": "error",
        "error": "not_found",
    }
    assert payloads.error_frame("invalid_json", "Bad.") == {
        "action": "error",
        "error": "invalid_json",
        "message": "Bad.",
    }


def test_request_id_is_echoed_only_when_given() -> None:
    frame = payloads.error_frame("x", "y")
    assert payloads.with_request_id(frame, None) == frame
    assert payloads.with_request_id(frame, "r")["request_id"] == "r"
    assert payloads.with_request_id(frame, 0)["request_id"] == 0
    assert "request_id" not in frame


def test_encode_is_compact_json() -> None:
    text = payloads.encode({"action": "x", "n": [1, 2]})
    assert text == '{"action":"x","n":[1,2]}'


@pytest.mark.django_db
def test_database_row_and_push_use_the_same_item(vendor: Vendor) -> None:
    created = datetime.datetime(2025, 7, 1, 22, 30, tzinfo=UTC)
    notification = Notification.objects.create(
        vendor=vendor,
        category="Order Notifications",
        message="Café",
        context_data={"order": 1},
        created_at=created,
    )
    snapshot = services.unread_notifications(vendor.pk)
    [item] = snapshot["notifications"]["Order Notifications"]
    assert item == {
        "id": notification.pk,
        "vendor": vendor.pk,
        "category": "Order Notifications",
        "message": "Café",
        "context_data": '{"order": 1}',
        "is_read": False,
        "readed_at": None,
        "created_at": "02-07-2025 00:30:00",
    }
    # A push is built from the saved instance, a snapshot from values(): same item.
    push = payloads.new_notification_frame(services._row(notification))
    assert push == {"action": "new_notification", "notification": item}
