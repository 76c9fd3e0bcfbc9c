"""The Python API: notify, the snapshot, pages, mark_read, sessions and publishing."""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.db import connection, transaction
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_vendor_notifications import delivery, payloads, services
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import vendor_settings
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
UNREACHABLE_REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # Port 1 on localhost: nothing listens there, so every connect is refused.
        "CONFIG": {"hosts": [("127.0.0.1", 1)]},
    }
}

MakeNotification = Callable[..., Notification]


def ids(frame: dict[str, Any]) -> list[int]:
    """Item ids of a grouped frame, in the order the items were sent across categories."""
    items = [item for group in frame["notifications"].values() for item in group]
    return [item["id"] for item in sorted(items, key=lambda item: -item["id"])]


def ids_in_frame_order(frame: dict[str, Any]) -> list[int]:
    return [item["id"] for group in frame["notifications"].values() for item in group]


def listen(layer: Any, group: str) -> str:
    channel: str = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group, channel)
    return channel


def receive_now(layer: Any, channel: str) -> dict[str, Any] | None:
    """The next message on ``channel``, or None when nothing is waiting."""

    async def receive() -> dict[str, Any] | None:
        try:
            return await asyncio.wait_for(layer.receive(channel), timeout=0.2)  # type: ignore[no-any-return]
        except asyncio.TimeoutError:
            return None

    return async_to_sync(receive)()


# --- notify ------------------------------------------------------------------------------


def test_notify_with_instance(vendor: Vendor) -> None:
    notification = services.notify(
        vendor, "Order #1 placed", category="Order Notifications", context={"order": 1}
    )
    notification.refresh_from_db()
    assert notification.vendor_id == vendor.pk
    assert notification.category == "Order Notifications"
    assert notification.message == "Order #1 placed"
    assert notification.context_data == {"order": 1}
    assert notification.is_read is False
    assert notification.is_recent_notification is True
    assert notification.readed_at is None


def test_notify_with_primary_key(vendor: Vendor) -> None:
    notification = services.notify(vendor.pk, "hello")
    assert Notification.objects.get(pk=notification.pk).vendor_id == vendor.pk


def test_notify_default_category(vendor: Vendor) -> None:
    assert services.notify(vendor, "x").category == "General Notifications"
    with vendor_settings(DEFAULT_CATEGORY="Misc"):
        assert services.notify(vendor, "y").category == "Misc"
        assert Notification.objects.create(vendor=vendor, message="z").category == "Misc"


def test_notify_empty_context_is_stored_as_object(vendor: Vendor) -> None:
    notification = services.notify(vendor, "x")
    notification.refresh_from_db()
    assert notification.context_data == {}


def test_notify_refuses_category_outside_categories(vendor: Vendor) -> None:
    with vendor_settings(CATEGORIES=["General Notifications", "Order Notifications"]):
        services.notify(vendor, "ok", category="Order Notifications")
        with pytest.raises(ValueError, match="Payout"):
            services.notify(vendor, "no", category="Payout")
    assert list(Notification.objects.values_list("message", flat=True)) == ["ok"]


@pytest.mark.parametrize("context", [["a"], "text", 1, ("a", 1)])
def test_notify_refuses_non_mapping_context(vendor: Vendor, context: Any) -> None:
    with pytest.raises(TypeError):
        services.notify(vendor, "x", context=context)
    assert not Notification.objects.exists()


def test_notify_pushes_after_commit(
    vendor: Vendor, channel_layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channel = listen(channel_layer, delivery.vendor_group(vendor.pk))
    with django_capture_on_commit_callbacks() as callbacks:
        notification = services.notify(vendor, "Café", category="Orders", context={"a": 1})
        # Inside the transaction nothing has been pushed yet.
        assert receive_now(channel_layer, channel) is None
    assert len(callbacks) == 1
    callbacks[0]()
    message = receive_now(channel_layer, channel)
    assert message is not None
    assert message["type"] == delivery.PUSH_EVENT
    notification.refresh_from_db()
    assert json.loads(message["text"]) == {
        "action": "new_notification",
        "notification": payloads.notification_item(services._row(notification)),
    }
    assert json.loads(message["text"])["notification"]["message"] == "Café"


def test_notify_pushes_to_that_vendor_only(
    vendor: Vendor,
    other_vendor: Vendor,
    channel_layer: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    mine = listen(channel_layer, delivery.vendor_group(vendor.pk))
    theirs = listen(channel_layer, delivery.vendor_group(other_vendor.pk))
    with django_capture_on_commit_callbacks(execute=True):
        services.notify(vendor, "x")
    assert receive_now(channel_layer, mine) is not None
    assert receive_now(channel_layer, theirs) is None


def test_rolled_back_notification_is_never_pushed(
    vendor: Vendor, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        services.notify(vendor, "x")
        raise RuntimeError("roll back")
    assert callbacks == []
    assert not Notification.objects.exists()


# --- unread_notifications ----------------------------------------------------------------


def test_unread_only_newest_first_for_that_vendor(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    oldest = make_notification(vendor, created_at=BASE)
    # Same created_at: the higher id is newer.
    tie_low = make_notification(vendor, created_at=BASE + datetime.timedelta(minutes=5))
    tie_high = make_notification(vendor, created_at=BASE + datetime.timedelta(minutes=5))
    # Inserted last but created earliest: order follows created_at, not insertion.
    backdated = make_notification(vendor, created_at=BASE - datetime.timedelta(days=1))
    newest = make_notification(vendor, created_at=BASE + datetime.timedelta(hours=1))
    make_notification(vendor, is_read=True, created_at=BASE + datetime.timedelta(hours=2))
    make_notification(other_vendor, created_at=BASE + datetime.timedelta(hours=3))

    frame = services.unread_notifications(vendor.pk)
    assert frame["action"] == "unread_notifications"
    assert ids_in_frame_order(frame) == [
        newest.pk,
        tie_high.pk,
        tie_low.pk,
        oldest.pk,
        backdated.pk,
    ]


def order_by_columns(sql: str) -> list[tuple[str, str]]:
    """(column, direction) of a SELECT's ORDER BY, resolving positional terms like "8 DESC"."""
    selected = sql[sql.index("SELECT") + len("SELECT") : sql.index(" FROM ")].split(",")
    terms = sql.rsplit("ORDER BY", 1)[1].split(" LIMIT")[0].split(",")
    columns = []
    for term in terms:
        expression, direction = term.strip().rsplit(" ", 1)
        if expression.isdigit():
            expression = selected[int(expression) - 1].split(" AS ")[0]
        columns.append((expression.strip().rsplit(".", 1)[-1].strip('"'), direction))
    return columns


def test_snapshot_and_page_order_is_total(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    # Rows sharing a created_at must still come in one defined order (id descending), even
    # where the database would happen to return them in that order without being asked.
    make_notification(vendor)
    for fetch in (
        lambda: services.unread_notifications(vendor.pk),
        lambda: services.notifications_page(vendor.pk, 1),
    ):
        with CaptureQueriesContext(connection) as queries:
            fetch()
        [query] = queries.captured_queries
        assert order_by_columns(query["sql"]) == [("created_at", "DESC"), ("id", "DESC")]


def test_unread_grouped_by_category(vendor: Vendor, make_notification: MakeNotification) -> None:
    general = make_notification(vendor, category="General Notifications", created_at=BASE)
    order = make_notification(
        vendor, category="Order Notifications", created_at=BASE + datetime.timedelta(minutes=1)
    )
    frame = services.unread_notifications(vendor.pk)
    assert list(frame["notifications"]) == ["Order Notifications", "General Notifications"]
    assert frame["notifications"]["Order Notifications"][0]["id"] == order.pk
    assert frame["notifications"]["General Notifications"][0]["id"] == general.pk


def test_unread_capped_at_unread_limit(vendor: Vendor, make_notification: MakeNotification) -> None:
    created = [
        make_notification(vendor, created_at=BASE + datetime.timedelta(minutes=i)) for i in range(5)
    ]
    with vendor_settings(UNREAD_LIMIT=3):
        frame = services.unread_notifications(vendor.pk)
    assert ids_in_frame_order(frame) == [n.pk for n in reversed(created)][:3]


def test_unread_empty(vendor: Vendor) -> None:
    assert services.unread_notifications(vendor.pk) == {
        "action": "unread_notifications",
        "notifications": {},
    }


# --- notifications_page ------------------------------------------------------------------


@pytest.fixture
def history(vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification) -> list[int]:
    """Seven notifications of ``vendor``, read and unread, newest first by id."""
    rows = [
        make_notification(
            vendor,
            category="Order Notifications" if i % 2 else "General Notifications",
            is_read=i % 3 == 0,
            created_at=BASE + datetime.timedelta(minutes=i),
        )
        for i in range(7)
    ]
    make_notification(other_vendor, created_at=BASE + datetime.timedelta(days=1))
    return [n.pk for n in reversed(rows)]


def test_pages(vendor: Vendor, history: list[int]) -> None:
    with vendor_settings(PAGE_SIZE=3):
        pages = [services.notifications_page(vendor.pk, page) for page in (1, 2, 3)]
    assert [(p["page"], p["has_more"]) for p in pages] == [(1, True), (2, True), (3, False)]
    assert [ids(p) for p in pages] == [history[0:3], history[3:6], history[6:7]]
    assert all(p["action"] == "load_more" for p in pages)


def test_page_holds_read_and_unread(vendor: Vendor, history: list[int]) -> None:
    with vendor_settings(PAGE_SIZE=20):
        page = services.notifications_page(vendor.pk, 1)
    items = [item for group in page["notifications"].values() for item in group]
    assert sorted(item["id"] for item in items) == sorted(history)
    assert {item["is_read"] for item in items} == {True, False}
    assert page["has_more"] is False


def test_exactly_full_last_page_has_no_more(vendor: Vendor, history: list[int]) -> None:
    with vendor_settings(PAGE_SIZE=7):
        page = services.notifications_page(vendor.pk, 1)
    assert ids(page) == history
    assert page["has_more"] is False


@pytest.mark.parametrize("page", [4, 5, 1000])
def test_page_past_the_end_is_empty(vendor: Vendor, history: list[int], page: int) -> None:
    with vendor_settings(PAGE_SIZE=3):
        frame = services.notifications_page(vendor.pk, page)
    assert frame == {"action": "load_more", "page": page, "has_more": False, "notifications": {}}


@pytest.mark.parametrize(
    "page",
    [
        10**18,
        MAX_ID,
        # The last page whose OFFSET still fits a signed 64-bit integer reaches the database.
        MAX_ID // 20,
        MAX_ID // 20 + 1,
    ],
)
def test_huge_page_is_empty_without_error(vendor: Vendor, history: list[int], page: int) -> None:
    frame = services.notifications_page(vendor.pk, page)
    assert frame == {"action": "load_more", "page": page, "has_more": False, "notifications": {}}


# --- mark_read ---------------------------------------------------------------------------


def test_mark_read(vendor: Vendor, make_notification: MakeNotification) -> None:
    notification = make_notification(vendor)
    before = timezone.now()
    assert services.mark_read(vendor.pk, notification.pk).found is True
    notification.refresh_from_db()
    assert notification.is_read is True
    assert notification.is_recent_notification is False
    assert notification.readed_at is not None
    assert before <= notification.readed_at <= timezone.now()


def test_mark_read_is_idempotent_and_keeps_first_readed_at(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    first_read = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    notification = make_notification(
        vendor, is_read=True, is_recent_notification=False, readed_at=first_read
    )
    assert services.mark_read(vendor.pk, notification.pk).found is True
    notification.refresh_from_db()
    assert notification.readed_at == first_read

    fresh = make_notification(vendor)
    assert services.mark_read(vendor.pk, fresh.pk).found is True
    fresh.refresh_from_db()
    stamped = fresh.readed_at
    assert services.mark_read(vendor.pk, fresh.pk).found is True
    fresh.refresh_from_db()
    assert fresh.readed_at == stamped


def test_mark_read_refuses_other_vendors_notification(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    theirs = make_notification(other_vendor)
    assert services.mark_read(vendor.pk, theirs.pk).found is False
    theirs.refresh_from_db()
    assert theirs.is_read is False
    assert theirs.is_recent_notification is True
    assert theirs.readed_at is None


def test_mark_read_nonexistent(vendor: Vendor) -> None:
    assert services.mark_read(vendor.pk, 999_999).found is False
    assert services.mark_read(vendor.pk, MAX_ID).found is False


# --- sessions and groups -----------------------------------------------------------------


def test_open_session_for_owner(owner: Any, vendor: Vendor) -> None:
    session = services.open_session(owner)
    assert session == services.Session(user_id=owner.pk, vendor_id=vendor.pk)
    assert session.groups == (
        f"notifications_{owner.pk}",
        "all_notifications",
        f"vendor_notifications_{vendor.pk}",
    )


def test_open_session_for_permitted_staff(staff: Any, vendor: Vendor) -> None:
    assert services.open_session(staff) == services.Session(user_id=staff.pk, vendor_id=vendor.pk)


def test_no_session_for_staff_without_permission(staff_without_permission: Any) -> None:
    assert services.open_session(staff_without_permission) is None


def test_no_session_for_customer(customer: Any, vendor: Vendor) -> None:
    assert services.open_session(customer) is None


def test_group_name_overrides(owner: Any, vendor: Vendor) -> None:
    with vendor_settings(
        USER_GROUP="shop.user.{user_id}",
        BROADCAST_GROUP="shop.all",
        VENDOR_GROUP="shop.vendor-{vendor_id}",
    ):
        assert delivery.user_group(5) == "shop.user.5"
        assert delivery.vendor_group(6) == "shop.vendor-6"
        assert delivery.broadcast_group() == "shop.all"
        session = services.open_session(owner)
        assert session is not None
        assert session.groups == (
            f"shop.user.{owner.pk}",
            "shop.all",
            f"shop.vendor-{vendor.pk}",
        )


# --- publishing --------------------------------------------------------------------------


def test_reload_unread_targets_vendor_or_everyone(
    vendor: Vendor, other_vendor: Vendor, channel_layer: Any
) -> None:
    mine = listen(channel_layer, delivery.vendor_group(vendor.pk))
    everyone = listen(channel_layer, delivery.broadcast_group())
    assert services.reload_unread(vendor) is True
    assert receive_now(channel_layer, mine) == {"type": delivery.RELOAD_EVENT}
    assert receive_now(channel_layer, everyone) is None
    assert services.reload_unread() is True
    assert receive_now(channel_layer, everyone) == {"type": delivery.RELOAD_EVENT}
    assert services.reload_unread(other_vendor.pk) is True
    assert receive_now(channel_layer, mine) is None


def test_send_event_without_configured_layer_warns(caplog: pytest.LogCaptureFixture) -> None:
    with vendor_settings(CHANNEL_LAYER="missing"), caplog.at_level(logging.WARNING):
        assert delivery.send_event("g", {"type": "x"}) is False
    assert "missing" in caplog.text


def test_send_event_with_unreachable_layer_warns(caplog: pytest.LogCaptureFixture) -> None:
    with override_settings(CHANNEL_LAYERS=UNREACHABLE_REDIS), caplog.at_level(logging.WARNING):
        assert delivery.send_event("vendor_notifications_1", {"type": "x"}) is False
    [record] = [r for r in caplog.records if r.name == "django_vendor_notifications.delivery"]
    assert record.levelno == logging.WARNING
    assert "vendor_notifications_1" in record.getMessage()
    # The reason is in the line; a traceback per failed publish would flood the log.
    assert "Error" in record.getMessage()


def test_notify_with_unreachable_layer_saves_and_does_not_raise(
    vendor: Vendor, caplog: pytest.LogCaptureFixture, django_capture_on_commit_callbacks: Any
) -> None:
    with (
        override_settings(CHANNEL_LAYERS=UNREACHABLE_REDIS),
        caplog.at_level(logging.WARNING),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        notification = services.notify(vendor, "still saved")
    assert len(callbacks) == 1
    assert Notification.objects.get(pk=notification.pk).message == "still saved"
    assert "Could not publish" in caplog.text
