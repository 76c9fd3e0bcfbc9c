"""Collapsed notifications (docs/collapsed-notifications.md): a vendor's unread notifications
with the same collapse_key are one item, the newest, with collapsed_count, in the snapshot,
pages and pushes; counts count notifications; mark_read / archive of a collapsed item apply to
all it stands for and to none that came after it. Every frame here is validated against
docs/asyncapi.yaml by tests/frames.py."""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_vendor_notifications import delivery, payloads, services, signals
from django_vendor_notifications.collapsing import CollapseKeyError
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import access_token_for, connect, settle, vendor_settings
from tests.plans import analyze, query_plan
from tests.test_queries import OWNER_CONNECT_QUERIES, connect_path
from tests.testapp.models import Vendor

ORDERS = "Order Notifications"
GENERAL = "General Notifications"
KEY = "new-order"
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=datetime.timezone.utc)


@pytest.fixture(autouse=True)
def collapse_on() -> Iterator[None]:
    with vendor_settings(COLLAPSE=True):
        yield


def add(
    vendor: Vendor, n: int, *, key: str = "", category: str = ORDERS, **fields: Any
) -> list[int]:
    """``n`` notifications, one second apart after the newest so far, oldest first."""
    start = Notification.objects.filter(vendor=vendor).count()
    Notification.objects.bulk_create(
        Notification(
            vendor=vendor,
            category=category,
            message=f"Order #{start + i}",
            collapse_key=key,
            created_at=BASE + datetime.timedelta(seconds=start + i),
            **fields,
        )
        for i in range(n)
    )
    return list(
        Notification.objects.filter(vendor=vendor).order_by("-id").values_list("pk", flat=True)[:n]
    )[::-1]


def items(frame: dict[str, Any]) -> list[dict[str, Any]]:
    return [item for group in frame["notifications"].values() for item in group]


def snapshot(vendor: Vendor) -> dict[str, Any]:
    state = services.inbox_state(vendor.pk)
    return payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)


# --- notify --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key", "error"),
    [("k" * 101, CollapseKeyError), ("a\x00b", CollapseKeyError), (7, TypeError)],
)
def test_notify_refuses_a_key_it_cannot_store(vendor: Vendor, key: Any, error: type) -> None:
    with pytest.raises(error, match="collapse_key"):
        services.notify(vendor, "Order #1", collapse_key=key)
    with pytest.raises(error, match="collapse_key"):
        services.notify_many([vendor], "Order #1", collapse_key=key)
    assert not Notification.objects.exists()


@pytest.mark.django_db
def test_a_key_of_100_characters_and_no_key_are_stored(vendor: Vendor) -> None:
    assert services.notify(vendor, "a", collapse_key="k" * 100).collapse_key == "k" * 100
    assert services.notify(vendor, "b").collapse_key == ""
    assert services.notify(vendor, "c", collapse_key="").collapse_key == ""


# --- the snapshot --------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_snapshot_shows_a_key_as_its_newest_notification(vendor: Vendor) -> None:
    keyed = add(vendor, 3, key=KEY)
    plain = add(vendor, 2, category=GENERAL)
    add(vendor, 1, key=KEY, is_read=True)  # read: no part of the collapsed item

    frame = snapshot(vendor)

    shown = items(frame)
    assert [item["id"] for item in shown] == [*plain[::-1], keyed[-1]]
    head = frame["notifications"][ORDERS][0]
    assert (head["collapse_key"], head["collapsed_count"]) == (KEY, 3)
    assert head["message"] == "Order #2"
    # Items without a key carry no new field; counts count notifications, not items.
    assert all("collapse_key" not in item for item in frame["notifications"][GENERAL])
    assert frame["unread_counts"] == {GENERAL: 2, ORDERS: 3}
    assert frame["unread_total"] == 5
    assert services.unread_rows(vendor.pk) == services.inbox_state(vendor.pk).unread_rows


@pytest.mark.django_db
def test_keys_are_per_vendor_and_per_key(vendor: Vendor, other_vendor: Vendor) -> None:
    mine = add(vendor, 2, key=KEY)
    other_key = add(vendor, 2, key="low-stock")
    add(other_vendor, 5, key=KEY)

    rows = services.inbox_state(vendor.pk).unread_rows

    assert [(row["id"], row["collapsed_count"]) for row in rows] == [
        (other_key[-1], 2),
        (mine[-1], 2),
    ]


@pytest.mark.django_db
def test_a_collapsed_group_takes_one_place_of_unread_limit(vendor: Vendor) -> None:
    add(vendor, 300, key=KEY)
    plain = add(vendor, 4, category=GENERAL)

    with vendor_settings(UNREAD_LIMIT=5):
        frame = snapshot(vendor)
        ids, counts = services.unread_version(vendor.pk)

    assert [item["id"] for item in frame["notifications"][GENERAL]] == plain[::-1]
    [orders] = frame["notifications"][ORDERS]
    assert orders["collapsed_count"] == 300
    assert frame["unread_total"] == 304
    assert ids == {orders["id"], *plain}
    assert counts == {GENERAL: 4, ORDERS: 300}


@pytest.mark.django_db
def test_frames_without_keys_are_the_spec_bytes(vendor: Vendor) -> None:
    notification = Notification.objects.create(
        vendor=vendor, message="Order #123 has been placed.", created_at=BASE
    )
    expected_item = (
        f'{{"id":{notification.pk},"vendor":{vendor.pk},"category":"General Notifications",'
        '"message":"Order #123 has been placed.","context_data":"{}","is_read":false,'
        '"readed_at":null,"created_at":"12-03-2025 10:00:00"}'
    )
    assert payloads.encode(snapshot(vendor)) == (
        '{"action":"unread_notifications","notifications":{"General Notifications":['
        + expected_item
        + ']},"unread_counts":{"General Notifications":1},"unread_total":1}'
    )
    assert payloads.encode(services.notifications_page(vendor.pk, 1)) == (
        '{"action":"load_more","page":1,"has_more":false,"notifications":'
        '{"General Notifications":[' + expected_item + "]}}"
    )
    assert payloads.encode(services.sync(vendor.pk, 0)) == (
        '{"action":"sync","since_id":0,"notifications":[' + expected_item + '],"has_more":false}'
    )


# --- pages and sync ------------------------------------------------------------------------


@pytest.mark.django_db
def test_pages_collapse_unread_ones_and_list_read_ones(vendor: Vendor) -> None:
    read = add(vendor, 2, key=KEY, is_read=True)
    unread = add(vendor, 3, key=KEY)

    page = services.notifications_page(vendor.pk, 1)
    cursor = services.cursor_page(vendor.pk, None)
    history = services.cursor_page(vendor.pk, MAX_ID, 50)

    assert [item["id"] for item in items(page)] == [unread[-1], *read[::-1]]
    for frame_items in (items(page), cursor["notifications"], history["notifications"]):
        head, *older = frame_items
        assert (head["id"], head["collapsed_count"]) == (unread[-1], 3)
        # Read ones are listed one by one: their key is told, nothing stands for them.
        assert [(item["collapse_key"], "collapsed_count" in item) for item in older] == [
            (KEY, False),
            (KEY, False),
        ]


@pytest.mark.django_db
def test_sync_is_raw_by_id_with_the_key_on_each_item(vendor: Vendor) -> None:
    keyed = add(vendor, 3, key=KEY)

    frame = services.sync(vendor.pk, 0)

    assert [item["id"] for item in frame["notifications"]] == keyed
    assert all(item["collapse_key"] == KEY for item in frame["notifications"])
    assert all("collapsed_count" not in item for item in frame["notifications"])


# --- changes -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_mark_read_of_a_collapsed_item_reads_what_it_stands_for_not_a_newer_one(
    vendor: Vendor,
) -> None:
    seen = add(vendor, 3, key=KEY)
    add(vendor, 1, category=GENERAL)
    newer = services.notify(vendor, "Order #9", category=ORDERS, collapse_key=KEY)

    result = services.mark_read(vendor.pk, seen[-1])

    assert (result.found, result.newly_read, result.updated) == (True, True, 3)
    assert (result.collapse_key, result.unread_total) == (KEY, 2)
    unread = Notification.objects.filter(vendor=vendor).unread()
    assert sorted(unread.values_list("pk", flat=True)) == sorted([newer.pk, seen[-1] + 1])
    rows = services.inbox_state(vendor.pk).unread_rows
    assert [(row["id"], row["collapsed_count"]) for row in rows] == [
        (newer.pk, 1),
        (seen[-1] + 1, None),
    ]
    # Again: nothing left to read up to that id.
    again = services.mark_read(vendor.pk, seen[-1])
    assert (again.found, again.newly_read, again.updated) == (True, False, 0)


@pytest.mark.django_db
def test_mark_read_of_an_older_one_reads_it_and_older_ones_only(vendor: Vendor) -> None:
    keyed = add(vendor, 4, key=KEY)

    result = services.mark_read(vendor.pk, keyed[1])

    assert result.updated == 2
    assert sorted(Notification.objects.unread().values_list("pk", flat=True)) == keyed[2:]


@pytest.mark.django_db
def test_mark_read_without_a_key_reads_one(vendor: Vendor) -> None:
    plain = add(vendor, 3)

    result = services.mark_read(vendor.pk, plain[-1])

    assert (result.updated, result.collapse_key, result.unread_total) == (1, "", 2)
    assert payloads.mark_read_frame(plain[-1], True) == {
        "action": "mark_read",
        "notification_id": plain[-1],
        "status": "success",
    }


@pytest.mark.django_db
def test_archive_of_a_collapsed_item_archives_what_it_stands_for(vendor: Vendor) -> None:
    seen = add(vendor, 3, key=KEY)
    newer = add(vendor, 1, key=KEY)

    result = services.archive(vendor.pk, seen[-1])

    assert (result.found, result.updated, result.collapse_key) == (True, 3, KEY)
    assert result.unread_counts == {ORDERS: 1}
    assert list(Notification.objects.unread().values_list("pk", flat=True)) == newer
    # unarchive brings back the one notification.
    back = services.unarchive(vendor.pk, seen[0])
    assert (back.updated, back.collapse_key, back.unread_counts) == (1, "", {ORDERS: 2})


@pytest.mark.django_db
def test_mark_unread_acts_on_the_one_id(vendor: Vendor) -> None:
    keyed = add(vendor, 3, key=KEY, is_read=True)

    assert services.mark_unread(vendor.pk, keyed[-1]).unread_counts == {ORDERS: 1}
    [row] = services.inbox_state(vendor.pk).unread_rows
    assert (row["id"], row["collapsed_count"]) == (keyed[-1], 1)


@pytest.mark.django_db
def test_another_vendors_id_is_not_found_and_reads_nothing(
    vendor: Vendor, other_vendor: Vendor
) -> None:
    theirs = add(other_vendor, 3, key=KEY)

    assert services.mark_read(vendor.pk, theirs[-1]).found is False
    assert services.archive(vendor.pk, theirs[-1]).found is False
    assert Notification.objects.unread().count() == 3


# --- constant query counts -----------------------------------------------------------------


def measure(
    owner: Any, vendor: Vendor, assert_num_queries: Callable[..., Any], keyed: int
) -> dict[str, Any]:
    ids = add(vendor, keyed, key=KEY)
    add(vendor, 3, category=GENERAL)
    with assert_num_queries(OWNER_CONNECT_QUERIES):
        frame = connect_path(access_token_for(owner))
    with assert_num_queries(1):
        services.notifications_page(vendor.pk, 1)
    with assert_num_queries(1):
        services.cursor_page(vendor.pk, MAX_ID, 50)
    with assert_num_queries(3):  # the INSERT, the previous id, the count of its key
        services.notify(vendor, "Order", category=ORDERS, collapse_key=KEY)
    with assert_num_queries(2):  # the UPDATE, and the key with the unread count
        read = services.mark_read(vendor.pk, ids[-1])
    with assert_num_queries(3):  # the row, the UPDATE, the counts
        archived = services.archive(vendor.pk, ids[-1] + 4)
    return {"frame": frame, "read": read.updated, "archived": archived.updated}


@pytest.mark.django_db
def test_queries_are_as_many_for_3_keyed_as_for_300(
    owner: Any, vendor: Vendor, other_vendor: Vendor, django_assert_num_queries: Any
) -> None:
    small = measure(owner, vendor, django_assert_num_queries, 3)
    assert (small["read"], small["archived"]) == (3, 1)
    assert small["frame"]["unread_total"] == 6
    Notification.objects.all().delete()
    large = measure(owner, vendor, django_assert_num_queries, 300)
    assert (large["read"], large["archived"]) == (300, 1)
    assert large["frame"]["unread_total"] == 303


@pytest.mark.django_db
def test_collapsing_reads_the_partial_collapse_index(vendor: Vendor, other_vendor: Vendor) -> None:
    for owner in (vendor, other_vendor):
        Notification.objects.bulk_create(
            Notification(vendor=owner, message="m", collapse_key=f"k{i % 50}", is_read=i % 4 > 0)
            for i in range(20_000)
        )
    analyze(Notification)
    query = Notification.objects.for_vendor(vendor.pk).unread()
    rows = query.filter(services.collapsing.shown(vendor.pk)).annotate(
        n=services.collapsing.collapsed_count()
    )
    plan = query_plan(rows.values("id", "n"))
    assert "vn_vendor_unread_collapse_idx" in plan, plan
    state = services.inbox_state(vendor.pk)
    # Unread are the rows with i % 4 == 0: 25 of the 50 keys, 200 each.
    assert len(state.unread_rows) == 25
    assert sum(row["collapsed_count"] for row in state.unread_rows) == 5_000


# --- over a socket -------------------------------------------------------------------------


async def settled_socket(owner: Any) -> tuple[Any, dict[str, Any]]:
    """A connected owner socket, done with its connect, and its first frame."""
    communicator, first = await connect(await database_sync_to_async(access_token_for)(owner))
    await settle(communicator)
    return communicator, first


@pytest.mark.django_db(transaction=True)
async def test_pushes_carry_the_count_and_mark_read_tells_the_other_sockets(
    owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    socket, first = await settled_socket(owner)
    tab, _ = await settled_socket(owner)
    assert first["notifications"] == {}

    notify = database_sync_to_async(services.notify)
    sent = [
        await notify(vendor, f"Order #{i}", category=ORDERS, collapse_key=KEY) for i in range(3)
    ]
    plain = await notify(vendor, "Hello")
    for ws in (socket, tab):
        pushed = [(await ws.receive_json_from(timeout=5))["notification"] for _ in range(4)]
        assert [item.get("collapsed_count") for item in pushed] == [1, 2, 3, None]
        assert [item["id"] for item in pushed] == [*(n.pk for n in sent), plain.pk]
        assert "collapse_key" not in pushed[-1]

    again, frame = await settled_socket(owner)
    assert [(item["id"], item.get("collapsed_count")) for item in items(frame)] == [
        (plain.pk, None),
        (sent[-1].pk, 3),
    ]
    await again.disconnect()

    await socket.send_json_to({"action": "mark_read", "notification_id": sent[-1].pk})
    reply = await socket.receive_json_from(timeout=5)
    assert reply == {
        "action": "mark_read",
        "notification_id": sent[-1].pk,
        "status": "success",
        "collapse_key": KEY,
        "updated": 3,
    }
    assert await tab.receive_json_from(timeout=5) == {
        "action": "notification_read",
        "notification_id": sent[-1].pk,
        "unread_total": 1,
        "collapse_key": KEY,
        "updated": 3,
    }
    await socket.send_json_to({"action": "archive", "notification_id": plain.pk})
    assert await socket.receive_json_from(timeout=5) == {
        "action": "archive",
        "notification_id": plain.pk,
        "status": "success",
    }
    assert (await tab.receive_json_from(timeout=5))["unread_total"] == 0
    for ws in (socket, tab):
        assert await ws.receive_nothing(timeout=0.1)
        await ws.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_broadcast_with_a_key_carries_the_key(
    owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    socket, _ = await settled_socket(owner)

    await database_sync_to_async(services.notify_many)([vendor], "Sale", collapse_key="sale")

    item = (await socket.receive_json_from(timeout=5))["notification"]
    assert (item["collapse_key"], "collapsed_count" in item) == ("sale", False)
    await socket.disconnect()


@pytest.mark.django_db(transaction=True)
def test_the_http_api_reads_a_collapsed_item(
    vendor: Vendor, owner: Any, channel_layer: Any
) -> None:
    from django.urls import reverse
    from rest_framework.test import APIClient

    group = delivery.vendor_group(vendor.pk)
    channel = async_to_sync(channel_layer.new_channel)()
    async_to_sync(channel_layer.group_add)(group, channel)
    keyed = add(vendor, 2, key=KEY)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(owner)}")

    response = api.post(reverse("vendor_notifications:notification-mark-read", args=[keyed[-1]]))

    assert response.json() == {
        "action": "mark_read",
        "notification_id": keyed[-1],
        "status": "success",
        "collapse_key": KEY,
        "updated": 2,
    }
    event = async_to_sync(channel_layer.receive)(channel)
    assert json.loads(event["text"]) == {
        "action": "notification_read",
        "notification_id": keyed[-1],
        "unread_total": 0,
        "collapse_key": KEY,
        "updated": 2,
    }


@pytest.mark.django_db
def test_the_read_signal_names_every_notification_a_collapsed_item_read(
    vendor: Vendor, django_capture_on_commit_callbacks: Any
) -> None:
    keyed = add(vendor, 3, key=KEY)
    heard: list[list[int]] = []

    def receiver(sender: Any, notification_ids: list[int], **kwargs: Any) -> None:
        heard.append(notification_ids)

    signals.notification_read.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            services.mark_read(vendor.pk, keyed[-1])
    finally:
        signals.notification_read.disconnect(receiver)
    assert heard == [keyed]


# --- with SEEN and SNOOZE on ---------------------------------------------------------------


def snooze_ahead(vendor: Vendor, notification_id: int) -> None:
    until = services.snooze_until(
        (datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)).isoformat()
    )
    assert services.snooze(vendor.pk, notification_id, until).found


@pytest.mark.django_db
def test_a_snoozed_notification_stands_for_no_collapsed_item_until_it_wakes(
    vendor: Vendor,
) -> None:
    ids = add(vendor, 3, key=KEY)
    with vendor_settings(SNOOZE=True):
        snooze_ahead(vendor, ids[-1])
        (shown,) = items(snapshot(vendor))
        # The newest awake one of the key shows the group, counting only the awake ones.
        assert (shown["id"], shown["collapsed_count"]) == (ids[1], 2)
        assert services.unread_counts(vendor.pk) == {ORDERS: 2}
        # History shows the snoozed one on its own, and the group once.
        page = services.notifications_page(vendor.pk, 1)
        assert [(i["id"], i.get("collapsed_count")) for i in items(page)] == [
            (ids[2], None),
            (ids[1], 2),
        ]
        # mark_read of the item reads what it stands for, not the snoozed one.
        result = services.mark_read(vendor.pk, ids[1])
        assert (result.updated, result.unread_total) == (2, 0)
        assert not Notification.objects.get(pk=ids[2]).is_read

        woken = services.unsnooze(vendor.pk, ids[2])
        assert woken[0] and woken[1].count == 1
        (shown,) = items(snapshot(vendor))
        assert (shown["id"], shown["collapsed_count"]) == (ids[2], 1)


@pytest.mark.django_db
def test_mark_read_of_a_collapsed_item_reports_the_unseen_count_with_seen_on(
    vendor: Vendor,
) -> None:
    ids = add(vendor, 3, key=KEY)
    add(vendor, 2, category=GENERAL)
    with vendor_settings(SEEN=True):
        services.mark_seen(vendor.pk, ids[0])
        outcome = services.mark_read(vendor.pk, ids[-1])
        assert (outcome.updated, outcome.unread_total, outcome.unseen_count) == (3, 2, 2)
        frame = payloads.notification_read_frame(
            ids[-1],
            outcome.unread_total,
            outcome.unseen_count,
            payloads.collapse_fields(outcome.collapse_key, outcome.updated),
        )
        assert frame["unseen_count"] == 2
        assert (frame["collapse_key"], frame["updated"]) == (KEY, 3)
    with vendor_settings(SEEN=False):
        assert services.mark_read(vendor.pk, ids[-1]).unseen_count is None


# --- COLLAPSE off (the default) ------------------------------------------------------------


@pytest.mark.django_db
def test_with_collapse_off_keys_are_stored_and_every_notification_is_its_own_item(
    vendor: Vendor,
) -> None:
    with vendor_settings(COLLAPSE=False):
        ids = [
            services.notify(vendor, f"Order #{n}", category=ORDERS, collapse_key=KEY).pk
            for n in range(3)
        ]
        assert set(Notification.objects.values_list("collapse_key", flat=True)) == {KEY}
        frame = snapshot(vendor)
        assert sorted(item["id"] for item in items(frame)) == ids
        assert "collapse" not in json.dumps(frame)
        page = services.notifications_page(vendor.pk, 1)
        assert "collapse" not in json.dumps(page)
        row = services._row(Notification.objects.get(pk=ids[0]))
        assert "collapse" not in json.dumps(payloads.new_notification_frame(row))

        result = services.mark_read(vendor.pk, ids[-1])
        assert (result.updated, result.unread_total, result.collapse_key) == (1, 2, "")
        archived = services.archive(vendor.pk, ids[-2])
        assert (archived.updated, archived.collapse_key) == (1, "")
    # Turned on, what is stored collapses.
    (shown,) = items(snapshot(vendor))
    assert (shown["id"], shown["collapsed_count"]) == (ids[0], 1)


@pytest.mark.django_db
def test_with_collapse_off_the_inbox_query_reads_nothing_of_it(vendor: Vendor) -> None:
    add(vendor, 3, key=KEY)
    with vendor_settings(COLLAPSE=False), CaptureQueriesContext(connection) as captured:
        services.inbox_state(vendor.pk)
    assert "collapse_key" not in captured.captured_queries[0]["sql"]
