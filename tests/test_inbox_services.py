"""The inbox services without a socket, and the signals hosts hook onto them."""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.test import override_settings

from django_vendor_notifications import payloads, services
from django_vendor_notifications.models import Notification
from django_vendor_notifications.signals import notification_created, notification_read
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

UTC = datetime.timezone.utc
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
MakeNotification = Callable[..., Notification]


def newest_id_and_counts(vendor_id: Any) -> tuple[int, dict[str, int]]:
    state = services.inbox_state(vendor_id)
    return state.newest_id, state.unread_counts


@pytest.fixture
def received() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """What the two signals were sent, by a real receiver connected for the test."""
    calls: dict[str, list[dict[str, Any]]] = {"created": [], "read": []}

    def on_created(sender: Any, signal: Any, **kwargs: Any) -> None:
        assert signal is notification_created
        calls["created"].append({"sender": sender, **kwargs})

    def on_read(sender: Any, signal: Any, **kwargs: Any) -> None:
        assert signal is notification_read
        calls["read"].append({"sender": sender, **kwargs})

    notification_created.connect(on_created)
    notification_read.connect(on_read)
    yield calls
    notification_created.disconnect(on_created)
    notification_read.disconnect(on_read)


# --- counts --------------------------------------------------------------------------------


def test_unread_counts_leave_out_read_archived_and_other_vendors(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    make_notification(vendor, category="B")
    make_notification(vendor, category="B")
    make_notification(vendor, category="A")
    make_notification(vendor, category="C", is_read=True)
    make_notification(vendor, category="D", archived_at=BASE)
    make_notification(other_vendor, category="A")
    assert services.unread_counts(vendor.pk) == {"A": 1, "B": 2}
    # Sorted by label, whatever order the database groups in.
    assert list(services.unread_counts(vendor.pk)) == ["A", "B"]
    newest = make_notification(vendor, category="C", is_read=True)
    assert newest_id_and_counts(vendor.pk) == (newest.pk, {"A": 1, "B": 2})


def test_newest_id_and_counts_of_an_empty_inbox(vendor: Vendor) -> None:
    assert newest_id_and_counts(vendor.pk) == (0, {})
    assert services.unread_counts(vendor.pk) == {}


def test_newest_id_counts_read_notifications_too(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    read = make_notification(vendor, is_read=True)
    assert newest_id_and_counts(vendor.pk) == (read.pk, {})


def test_archived_unread_leaves_the_snapshot(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    kept = make_notification(vendor)
    archived = make_notification(vendor)
    assert services.archive(vendor.pk, archived.pk).unread_counts == {"General Notifications": 1}
    assert [row["id"] for row in services.unread_rows(vendor.pk)] == [kept.pk]
    # Still in the spec's page history.
    page = services.notifications_page(vendor.pk, 1)
    assert archived.pk in [i["id"] for items in page["notifications"].values() for i in items]


def separate_queries(vendor_id: Any) -> services.InboxState:
    """What inbox_state() answers in one query, read the long way."""
    newest_id = Notification.objects.newest_ids(vendor_id).first() or 0
    counts = services.unread_counts(vendor_id)
    return services.InboxState(newest_id, counts, services.unread_rows(vendor_id))


def test_inbox_state_is_one_query_for_what_three_would_read(
    vendor: Vendor,
    other_vendor: Vendor,
    make_notification: MakeNotification,
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with django_assert_num_queries(1):
        assert services.inbox_state(vendor.pk) == services.InboxState(0, {}, [])
    # More unread than the snapshot holds, over categories, some read, archived, another
    # vendor's, and timestamps out of id order.
    for i in range(200):
        make_notification(
            vendor,
            category=f"Category {i % 3}",
            context_data={"i": i, "nested": {"list": [1, "two"]}},
            is_read=i % 5 == 0,
            archived_at=BASE if i % 7 == 0 else None,
            created_at=BASE + datetime.timedelta(seconds=(i * 37) % 200),
        )
        make_notification(other_vendor, category="Other")
    newest_read = make_notification(vendor, category="Category 9", is_read=True)
    with django_assert_num_queries(1):
        state = services.inbox_state(vendor.pk)
    assert state == separate_queries(vendor.pk)
    assert state.newest_id == newest_read.pk
    assert len(state.unread_rows) == 100
    assert sum(state.unread_counts.values()) > 100
    assert {row["vendor_id"] for row in state.unread_rows} == {vendor.pk}
    assert isinstance(state.unread_rows[0]["context_data"], dict)
    assert isinstance(state.unread_rows[0]["created_at"], datetime.datetime)


def test_inbox_state_of_an_inbox_with_nothing_unread(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    read = make_notification(vendor, is_read=True)
    assert services.inbox_state(vendor.pk) == services.InboxState(read.pk, {}, [])


# --- the changes ---------------------------------------------------------------------------


def test_mark_all_read_reports_what_it_changed(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    make_notification(vendor, category="A")
    make_notification(vendor, category="B")
    make_notification(vendor, category="B", is_read=True, readed_at=BASE)
    foreign = make_notification(other_vendor, category="B")
    result = services.mark_all_read(vendor.pk, "B")
    assert (result.updated, result.unread_counts) == (1, {"A": 1})
    result = services.mark_all_read(vendor.pk)
    assert (result.updated, result.unread_counts) == (1, {})
    # The one read before keeps its first readed_at; the other vendor's is untouched.
    assert Notification.objects.filter(readed_at=BASE).count() == 1
    foreign.refresh_from_db()
    assert foreign.is_read is False


def test_mark_unread_and_archive_of_another_vendor(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    foreign = make_notification(other_vendor, is_read=True, readed_at=BASE)
    for change in (services.mark_unread, services.archive, services.unarchive):
        assert change(vendor.pk, foreign.pk) == services.ChangeResult(found=False)
    foreign.refresh_from_db()
    assert (foreign.is_read, foreign.readed_at, foreign.archived_at) == (True, BASE, None)


def test_unarchive_of_a_notification_never_archived(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    notification = make_notification(vendor)
    assert services.unarchive(vendor.pk, notification.pk) == services.ChangeResult(found=True)


def test_cursor_page_never_shows_another_vendor(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    mine = [make_notification(vendor).pk for _ in range(3)]
    make_notification(other_vendor)
    page = services.cursor_page(vendor.pk, None, 10)
    assert [item["id"] for item in page["notifications"]] == mine[::-1]
    assert page["has_more"] is False


# --- signals -------------------------------------------------------------------------------


def test_notification_created_is_sent_after_commit(
    vendor: Vendor,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        notification = services.notify(vendor, "Order #1")
        # Not yet: a rolled-back notification must never be mailed.
        assert received["created"] == []
    [call] = received["created"]
    assert call["sender"] is Notification
    assert call["notification"].pk == notification.pk


def test_notification_created_is_not_sent_on_rollback(
    vendor: Vendor, received: dict[str, list[dict[str, Any]]]
) -> None:
    from django.db import transaction

    with pytest.raises(RuntimeError), transaction.atomic():
        services.notify(vendor, "never")
        raise RuntimeError("rolled back")
    assert received["created"] == []


def test_notification_created_once_per_notification_of_notify_many(
    vendor: Vendor,
    other_vendor: Vendor,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        created = services.notify_many([vendor, other_vendor], "Maintenance tonight")
    assert sorted(c["notification"].pk for c in received["created"]) == sorted(
        n.pk for n in created
    )
    assert {c["notification"].vendor_id for c in received["created"]} == {
        vendor.pk,
        other_vendor.pk,
    }


def test_notification_read_by_mark_read(
    vendor: Vendor,
    make_notification: MakeNotification,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    notification = make_notification(vendor)
    with django_capture_on_commit_callbacks(execute=True):
        services.mark_read(vendor.pk, notification.pk)
        # Marking it again changes nothing and sends nothing.
        services.mark_read(vendor.pk, notification.pk)
    assert received["read"] == [
        {"sender": Notification, "vendor_id": vendor.pk, "notification_ids": [notification.pk]}
    ]


def test_notification_read_by_mark_all_read_names_exactly_the_changed_ids(
    vendor: Vendor,
    other_vendor: Vendor,
    make_notification: MakeNotification,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
) -> None:
    unread = [make_notification(vendor, category="A").pk for _ in range(3)]
    make_notification(vendor, category="B")
    make_notification(vendor, category="A", is_read=True, readed_at=BASE)
    make_notification(other_vendor, category="A")
    with django_capture_on_commit_callbacks(execute=True):
        services.mark_all_read(vendor.pk, "A")
        # Nothing left in A: no second signal.
        services.mark_all_read(vendor.pk, "A")
    assert received["read"] == [
        {"sender": Notification, "vendor_id": vendor.pk, "notification_ids": unread}
    ]


def test_a_failing_receiver_is_logged_and_others_still_run(
    vendor: Vendor,
    received: dict[str, list[dict[str, Any]]],
    django_capture_on_commit_callbacks: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(sender: Any, **kwargs: Any) -> None:
        raise ConnectionError("SMTP is down")

    notification_created.connect(broken)
    try:
        with caplog.at_level(logging.ERROR), django_capture_on_commit_callbacks(execute=True):
            notification = services.notify(vendor, "still saved")
    finally:
        notification_created.disconnect(broken)
    assert [c["notification"].pk for c in received["created"]] == [notification.pk]
    [record] = [r for r in caplog.records if "notification_created" in r.getMessage()]
    assert record.exc_info is not None
    assert "SMTP is down" in str(record.exc_info[1])


# --- ISO timestamps ------------------------------------------------------------------------


def test_iso_datetime_carries_the_offset_of_time_zone() -> None:
    summer = datetime.datetime(2025, 7, 1, 12, 0, tzinfo=UTC)
    assert payloads.iso_datetime(summer) == "2025-07-01T14:00:00+02:00"
    assert payloads.iso_datetime(BASE) == "2025-03-12T10:00:00+01:00"
    assert payloads.iso_datetime(None) is None


@override_settings(USE_TZ=False)
def test_iso_datetime_of_a_naive_value_is_read_in_time_zone() -> None:
    assert payloads.iso_datetime(datetime.datetime(2025, 3, 12, 10, 0)) == (
        "2025-03-12T10:00:00+01:00"
    )


def test_items_have_no_iso_keys_by_default(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    make_notification(vendor)
    [row] = services.unread_rows(vendor.pk)
    assert "created_at_iso" not in payloads.notification_item(row)
