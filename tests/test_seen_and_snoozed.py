"""Seen and snoozed (SEEN, SNOOZE): the services, the socket's actions and pushes, the wake
(exactly once however many callers), the HTTP API, and that off nothing changes."""

from __future__ import annotations

import asyncio
import datetime
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from io import StringIO
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command
from django.db import connection, models
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from django_vendor_notifications import payloads, services
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import ErrorCode
from tests.conftest import access_token_for, connect, settle, vendor_settings
from tests.plans import analyze, index_scans_preferred, query_plan
from tests.test_queries import OWNER_CONNECT_QUERIES, connect_counting
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = "Order Notifications"
GENERAL = "General Notifications"


@pytest.fixture
def seen_on() -> Iterator[None]:
    with vendor_settings(SEEN=True):
        yield


@pytest.fixture
def snooze_on() -> Iterator[None]:
    with vendor_settings(SNOOZE=True):
        yield


@pytest.fixture
def both_on() -> Iterator[None]:
    with vendor_settings(SEEN=True, SNOOZE=True):
        yield


def make(vendor: Vendor, n: int, category: str = ORDERS, **fields: Any) -> list[int]:
    return [
        Notification.objects.create(vendor=vendor, message=f"m{i}", category=category, **fields).pk
        for i in range(n)
    ]


def later(seconds: float) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(seconds=seconds)


def iso(value: datetime.datetime) -> str:
    return value.isoformat()


async def receive(communicator: WebsocketCommunicator, timeout: float = 5) -> dict[str, Any]:
    frame: dict[str, Any] = await communicator.receive_json_from(timeout=timeout)
    return frame


async def two_sockets(
    owner: Any,
) -> tuple[WebsocketCommunicator, WebsocketCommunicator, dict[str, Any]]:
    """Two settled sockets of the owner, and the first one's snapshot."""
    token = access_token_for(owner)
    first, snapshot = await connect(token)
    second, _ = await connect(token)
    await settle(first)
    await settle(second)
    return first, second, snapshot


# --- seen: services ------------------------------------------------------------------------


def test_mark_seen_is_one_update_and_counts_exactly(
    seen_on: None, vendor: Vendor, other_vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 4)
    read = make(vendor, 1, is_read=True)[0]
    theirs = make(other_vendor, 2)
    assert services.unread_counts(vendor.pk).unseen == 4

    with django_assert_num_queries(1):
        assert services.mark_seen(vendor.pk, ids[2]) == 3

    counts = services.unread_counts(vendor.pk)
    assert counts == {ORDERS: 4} and counts.unseen == 1
    seen = set(Notification.objects.filter(seen_at__isnull=False).values_list("pk", flat=True))
    assert seen == set(ids[:3])
    assert read not in seen and not seen & set(theirs)
    assert services.unread_counts(other_vendor.pk).unseen == 2
    # Seen again: nothing changes, the first seen_at stays.
    first = Notification.objects.get(pk=ids[0]).seen_at
    assert services.mark_seen(vendor.pk, ids[2]) == 0
    assert Notification.objects.get(pk=ids[0]).seen_at == first


def test_the_inbox_state_counts_unseen_in_its_one_query(
    seen_on: None, vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 3) + make(vendor, 2, category=GENERAL)
    services.mark_seen(vendor.pk, ids[1])
    with django_assert_num_queries(1):
        state = services.inbox_state(vendor.pk)
    assert state.unread_counts == {GENERAL: 2, ORDERS: 3}
    assert state.unread_counts.unseen == 3
    frame = payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)
    assert frame["unseen_count"] == 3
    seen = {
        item["id"]: item["seen_at"] for items in frame["notifications"].values() for item in items
    }
    assert seen[ids[0]] is not None and seen[ids[4]] is None


def test_reading_takes_a_notification_out_of_the_unseen_count_in_two_queries(
    seen_on: None, vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 3)
    with django_assert_num_queries(2):
        result = services.mark_read(vendor.pk, ids[0])
    assert (result.unread_total, result.unseen_count) == (2, 2)


def test_off_no_field_is_added_and_nothing_more_is_read(
    vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 2)
    state = services.inbox_state(vendor.pk)
    frame = payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)
    assert set(frame) == {"action", "notifications", "unread_counts", "unread_total"}
    item = frame["notifications"][ORDERS][0]
    assert "seen_at" not in item and "snoozed_until" not in item
    assert state.next_wake is None
    with django_assert_num_queries(2):
        services.mark_read(vendor.pk, ids[0])
    assert "unseen_count" not in payloads.notification_read_frame(ids[0], 1, 1)


# --- snooze: services ----------------------------------------------------------------------


def test_a_snoozed_notification_leaves_the_snapshot_and_counts(
    both_on: None, vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 3)
    until = later(3600)
    with django_assert_num_queries(2):
        result = services.snooze(vendor.pk, ids[1], until)
    assert result.found and result.unread_counts == {ORDERS: 2}
    assert result.unread_counts.unseen == 2
    state = services.inbox_state(vendor.pk)
    assert [row["id"] for row in state.unread_rows] == [ids[2], ids[0]]
    assert state.unread_counts == {ORDERS: 2} and state.unread_counts.unseen == 2
    assert state.next_wake == until
    # Out of mark_seen and mark_all_read too: it comes back unread and unseen.
    services.mark_seen(vendor.pk, ids[2])
    services.mark_all_read(vendor.pk)
    row = Notification.objects.get(pk=ids[1])
    assert (row.is_read, row.seen_at, row.snoozed_until) == (False, None, until)
    # Still in the history, with its time.
    page = services.cursor_page(vendor.pk, None)
    assert [item["snoozed_until"] for item in page["notifications"]][1] == iso(
        timezone.localtime(until)
    )


def test_snoozing_another_vendors_notification_is_not_found(
    snooze_on: None, vendor: Vendor, other_vendor: Vendor
) -> None:
    theirs = make(other_vendor, 1)[0]
    assert services.snooze(vendor.pk, theirs, later(60)) == services.SnoozeResult(found=False)
    assert Notification.objects.get(pk=theirs).snoozed_until is None
    assert services.unsnooze(vendor.pk, theirs)[0] is False


@pytest.mark.parametrize(
    "until",
    [
        None,
        5,
        "",
        "tomorrow",
        "2026-13-01T10:00:00+01:00",
        "2030-01-01T10:00:00",  # no offset
        "2000-01-01T10:00:00+00:00",  # past
        "2999-01-01T10:00:00Z",  # beyond SNOOZE_MAX
    ],
    ids=repr,
)
def test_snooze_until_refuses_what_it_cannot_take(until: Any) -> None:
    with pytest.raises(services.SnoozeError):
        services.snooze_until(until)


def test_snooze_until_takes_an_offset_or_z_within_snooze_max() -> None:
    now = timezone.now()
    soon = (now + datetime.timedelta(hours=2)).astimezone(datetime.timezone.utc)
    text = soon.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert services.snooze_until(text, now) == soon.replace(microsecond=0)
    with (
        vendor_settings(SNOOZE_MAX=datetime.timedelta(hours=1)),
        pytest.raises(services.SnoozeError, match="at most 1:00:00 ahead"),
    ):
        services.snooze_until(text, now)


def test_wake_due_wakes_each_notification_once(snooze_on: None, vendor: Vendor) -> None:
    ids = make(vendor, 3)
    Notification.objects.filter(pk__in=ids[:2]).update(snoozed_until=later(-1))
    Notification.objects.filter(pk=ids[2]).update(snoozed_until=later(3600))
    first = services.wake_due(vendor.pk, publish=False)
    second = services.wake_due(vendor.pk, publish=False)
    assert first.count == 2 and second.count == 0 and second.frames == {}
    frame = first.frames[vendor.pk]
    assert [item["id"] for item in frame["notifications"]] == ids[:2]
    assert frame["unread_counts"] == {ORDERS: 2}
    assert all(item["snoozed_until"] is None for item in frame["notifications"])
    assert first.next_wake == second.next_wake == Notification.objects.get(pk=ids[2]).snoozed_until


def test_wake_due_called_concurrently_wakes_each_notification_once(
    snooze_on: None, vendor: Vendor
) -> None:
    ids = make(vendor, 5)
    Notification.objects.filter(pk__in=ids).update(snoozed_until=later(-1))
    start = threading.Barrier(4)

    def wake() -> list[int]:
        try:
            start.wait()
            woken = services.wake_due(vendor.pk, publish=False)
            frame = woken.frames.get(vendor.pk)
            return [item["id"] for item in frame["notifications"]] if frame else []
        finally:
            connection.close()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: wake(), range(4)))
    woken = sorted(i for result in results for i in result)
    assert woken == ids
    assert not Notification.objects.filter(snoozed_until__isnull=False).exists()


def test_the_query_counts_of_seen_snooze_and_a_wake(
    both_on: None, vendor: Vendor, django_assert_num_queries: Any
) -> None:
    ids = make(vendor, 2)
    # The UPDATE and the counts (with the unseen count, in the same query).
    with django_assert_num_queries(2):
        services.mark_seen_counted(vendor.pk, ids[0])
    with django_assert_num_queries(2):
        services.snooze(vendor.pk, ids[1], later(3600))
    # A timer that finds nothing due: one read, which also gives the next wake.
    with django_assert_num_queries(1):
        assert services.wake_due(vendor.pk, publish=False).count == 0
    # Unsnooze: the read, the UPDATE that clears it, the counts.
    with django_assert_num_queries(3):
        assert services.unsnooze(vendor.pk, ids[1])[0] is True


def test_a_woken_read_notification_is_not_pushed(snooze_on: None, vendor: Vendor) -> None:
    ids = make(vendor, 1, is_read=True)
    Notification.objects.filter(pk=ids[0]).update(snoozed_until=later(-1))
    woken = services.wake_due(publish=False)
    assert woken.count == 1 and woken.frames == {}


def test_the_command_wakes_every_vendor(
    snooze_on: None, vendor: Vendor, other_vendor: Vendor
) -> None:
    ids = make(vendor, 2) + make(other_vendor, 1)
    Notification.objects.filter(pk__in=ids).update(snoozed_until=later(-1))
    out = StringIO()
    call_command("wake_snoozed_notifications", stdout=out)
    assert out.getvalue().strip() == "Woke 3 snoozed notifications."
    assert not Notification.objects.filter(snoozed_until__isnull=False).exists()


def test_the_partial_indexes_serve_the_unread_unseen_and_wake_queries(
    both_on: None, vendor: Vendor
) -> None:
    """The extra term SNOOZE adds (snoozed_until IS NULL) keeps the unread partial indexes
    usable; unseen and the next wake have their own. Where the planner may pick between two
    partial indexes of the vendor's unread rows (by table bloat on PostgreSQL, by its own
    rules on SQLite), either is accepted: both keep the cost off the read history."""
    Notification.objects.bulk_create(
        Notification(vendor=vendor, message="m", is_read=i >= 40) for i in range(5000)
    )
    ids = sorted(Notification.objects.filter(is_read=False).values_list("pk", flat=True))
    Notification.objects.filter(pk__in=ids[:5]).update(snoozed_until=later(3600))
    services.mark_seen(vendor.pk, ids[10])
    analyze(Notification)
    unread = Notification.objects.for_vendor(vendor.pk).unread()
    unseen_indexes = ["vn_vendor_unseen_idx"]
    if connection.vendor == "sqlite":
        unseen_indexes.append("vn_vendor_unread_idx")
    queries: dict[str, tuple[list[str], Any]] = {
        "unread": (
            ["vn_vendor_unread_idx", "vn_vendor_unread_category_idx"],
            unread.newest_first().values("id")[:100],
        ),
        "counts": (
            ["vn_vendor_unread_category_idx"],
            unread.order_by().values("category").annotate(n=models.Count("id")),
        ),
        "unseen": (
            unseen_indexes,
            services._unseen(vendor.pk).filter(id__lte=ids[-1]).values("id"),
        ),
        "next wake": (
            ["vn_vendor_snoozed_idx"],
            Notification.objects.for_vendor(vendor.pk)
            .filter(snoozed_until__isnull=False)
            .order_by("snoozed_until")
            .values("id")[:1],
        ),
    }
    with index_scans_preferred():
        for name, (indexes, query) in queries.items():
            plan = query_plan(query)
            assert any(index in plan for index in indexes), f"{name}: {plan}"
    state = services.inbox_state(vendor.pk)
    assert state.unread_counts == {"General Notifications": 35}
    assert state.unread_counts.unseen == 35 - 6


# --- on the socket -------------------------------------------------------------------------


async def test_off_the_new_actions_are_unknown(
    owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    await database_sync_to_async(make)(vendor, 1)
    socket, first = await connect(access_token_for(owner))
    assert "unseen_count" not in first
    for message in (
        {"action": "mark_seen", "up_to_id": 1},
        {"action": "snooze", "notification_id": 1, "until": iso(later(60))},
        {"action": "unsnooze", "notification_id": 1},
    ):
        await socket.send_json_to(message)
        reply = await receive(socket)
        assert reply["error"] == ErrorCode.UNKNOWN_ACTION
        assert "mark_seen" not in reply["message"] and "snooze" not in reply["message"]
    await socket.disconnect()


async def test_mark_seen_on_one_socket_zeroes_the_badge_on_another(
    seen_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 3)
    first, second, snapshot = await two_sockets(owner)
    assert snapshot["unseen_count"] == 3
    assert all(item["seen_at"] is None for item in snapshot["notifications"][ORDERS])

    await first.send_json_to({"action": "mark_seen", "up_to_id": ids[-1], "request_id": 1})
    reply = await receive(first)
    assert reply == {
        "action": "mark_seen",
        "status": "success",
        "up_to_id": ids[-1],
        "updated": 3,
        "unread_counts": {ORDERS: 3},
        "unread_total": 3,
        "unseen_count": 0,
        "request_id": 1,
    }
    pushed = await receive(second)
    assert pushed == {
        "action": "unread_count_changed",
        "unread_counts": {ORDERS: 3},
        "unread_total": 3,
        "unseen_count": 0,
    }
    # Nothing more to mark: the reply says so and the other socket hears nothing.
    await first.send_json_to({"action": "mark_seen", "up_to_id": ids[-1]})
    assert (await receive(first))["updated"] == 0
    assert await second.receive_nothing(timeout=0.2)
    await first.disconnect()
    await second.disconnect()


@pytest.mark.invalid_client_frames
async def test_snooze_errors_name_the_field(
    snooze_on: None, owner: Any, vendor: Vendor, other_vendor: Vendor, channel_layer: Any
) -> None:
    mine = (await database_sync_to_async(make)(vendor, 1))[0]
    theirs = (await database_sync_to_async(make)(other_vendor, 1))[0]
    socket, _ = await connect(access_token_for(owner))
    for until in ("soon", iso(later(-60)), iso(later(86400 * 365)), "2030-01-01T10:00:00"):
        await socket.send_json_to(
            {"action": "snooze", "notification_id": mine, "until": until, "request_id": "x"}
        )
        reply = await receive(socket)
        assert reply["error"] == ErrorCode.INVALID_FIELD and "'until'" in reply["message"]
        assert reply["request_id"] == "x"
    await socket.send_json_to(
        {"action": "snooze", "notification_id": theirs, "until": iso(later(60))}
    )
    assert (await receive(socket))["error"] == "not_found"
    await socket.send_json_to({"action": "unsnooze", "notification_id": theirs})
    assert (await receive(socket))["error"] == "not_found"
    await socket.disconnect()


async def test_a_snooze_hides_it_everywhere_and_it_comes_back_once_when_it_wakes(
    both_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 2)
    first, second, _ = await two_sockets(owner)

    until = later(1.0)
    await first.send_json_to({"action": "snooze", "notification_id": ids[0], "until": iso(until)})
    reply = await receive(first)
    assert reply["status"] == "success" and reply["unread_total"] == 1
    pushed = await receive(second)
    assert pushed["action"] == "notification_snoozed"
    assert (pushed["notification_id"], pushed["unread_total"], pushed["unseen_count"]) == (
        ids[0],
        1,
        1,
    )
    # A connect meanwhile does not list it.
    third, snapshot = await connect(access_token_for(owner))
    assert [item["id"] for item in snapshot["notifications"][ORDERS]] == [ids[1]]
    await settle(third)

    # Every socket's timer fires; the notification comes back to each socket exactly once.
    for socket in (first, second, third):
        woke = await receive(socket, timeout=5)
        assert woke["action"] == "notifications_woke"
        assert [item["id"] for item in woke["notifications"]] == [ids[0]]
        assert woke["unread_total"] == 2 and woke["unseen_count"] == 2
    for socket in (first, second, third):
        assert await socket.receive_nothing(timeout=0.5)
        await socket.disconnect()


async def test_after_a_wake_the_socket_sets_its_timer_for_the_next_one(
    snooze_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 3)

    def snooze_two() -> None:
        Notification.objects.filter(pk=ids[0]).update(snoozed_until=later(0.5))
        Notification.objects.filter(pk=ids[1]).update(snoozed_until=later(1.2))

    await database_sync_to_async(snooze_two)()
    socket, snapshot = await connect(access_token_for(owner))
    assert snapshot["unread_total"] == 1
    woken = []
    for _ in range(2):
        frame = await receive(socket, timeout=5)
        assert frame["action"] == "notifications_woke"
        woken += [item["id"] for item in frame["notifications"]]
    assert woken == ids[:2] and frame["unread_total"] == 3
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_unsnooze_brings_it_back_to_every_socket(
    snooze_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 1)
    first, second, _ = await two_sockets(owner)
    await first.send_json_to(
        {"action": "snooze", "notification_id": ids[0], "until": iso(later(3600))}
    )
    assert (await receive(first))["status"] == "success"
    assert (await receive(second))["action"] == "notification_snoozed"

    await first.send_json_to({"action": "unsnooze", "notification_id": ids[0], "request_id": "u"})
    frames = [await receive(first), await receive(first)]
    assert {frame["action"] for frame in frames} == {"unsnooze", "notifications_woke"}
    woke = await receive(second)
    assert woke["action"] == "notifications_woke" and woke["unread_total"] == 1
    # Not snoozed any more: success, nothing pushed.
    await first.send_json_to({"action": "unsnooze", "notification_id": ids[0]})
    assert (await receive(first))["status"] == "success"
    assert await second.receive_nothing(timeout=0.2)
    await first.disconnect()
    await second.disconnect()


async def test_a_connect_wakes_what_is_due_before_its_snapshot(
    snooze_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 2)
    token = access_token_for(owner)
    first, _ = await connect(token)
    await settle(first)

    def snooze_past() -> None:
        Notification.objects.filter(pk=ids[0]).update(snoozed_until=later(-1))

    await database_sync_to_async(snooze_past)()
    second, snapshot = await connect(token)
    assert sorted(item["id"] for item in snapshot["notifications"][ORDERS]) == ids
    assert snapshot["unread_total"] == 2
    # The socket that was open gets it pushed; the connecting one has it in its snapshot.
    woke = await receive(first)
    assert woke["action"] == "notifications_woke"
    assert [item["id"] for item in woke["notifications"]] == [ids[0]]
    await settle(second)
    assert await second.receive_nothing(timeout=0.3)
    await first.disconnect()
    await second.disconnect()


@pytest.mark.parametrize(
    "settings", [{"SEEN": True}, {"SNOOZE": True}, {"SEEN": True, "SNOOZE": True}], ids=repr
)
async def test_connect_query_count_is_unchanged_with_the_settings_on(
    settings: dict[str, Any], owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 3)
    with vendor_settings(**settings):
        if settings.get("SNOOZE"):
            await database_sync_to_async(services.snooze)(vendor.pk, ids[0], later(3600))
        token = access_token_for(owner)
        first, _ = await connect_counting(token)
        second, queries = await connect_counting(token)
    assert queries == OWNER_CONNECT_QUERIES
    await first.disconnect()
    await second.disconnect()


# --- over HTTP -----------------------------------------------------------------------------


@pytest.fixture
def api(owner: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(owner)}")
    return client


def test_http_off_answers_404(api: APIClient, vendor: Vendor) -> None:
    pk = make(vendor, 1)[0]
    assert (
        api.post(
            reverse("vendor_notifications:notification-mark-seen"), {"up_to_id": pk}
        ).status_code
        == 404
    )
    url = reverse("vendor_notifications:notification-snooze", args=[pk])
    assert api.post(url, {"until": iso(later(60))}).status_code == 404
    assert (
        api.post(reverse("vendor_notifications:notification-unsnooze", args=[pk])).status_code
        == 404
    )


def test_http_mark_seen_snooze_and_unsnooze(both_on: None, api: APIClient, vendor: Vendor) -> None:
    ids = make(vendor, 2)
    response = api.post(
        reverse("vendor_notifications:notification-mark-seen"), {"up_to_id": ids[0]}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["updated"] == 1 and response.json()["unseen_count"] == 1

    url = reverse("vendor_notifications:notification-snooze", args=[ids[1]])
    assert api.post(url, {"until": "yesterday"}, format="json").status_code == 400
    response = api.post(url, {"until": iso(later(3600))}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["unread_total"] == 1
    assert services.unread_counts(vendor.pk) == {ORDERS: 1}

    response = api.post(reverse("vendor_notifications:notification-unsnooze", args=[ids[1]]))
    assert response.status_code == 200 and response.json()["status"] == "success"
    assert services.unread_counts(vendor.pk) == {ORDERS: 2}
    missing = reverse("vendor_notifications:notification-unsnooze", args=[ids[1] + 100])
    assert api.post(missing).status_code == 404


@pytest.mark.parametrize("path", ["unread", "counts"])
def test_http_etags_change_when_only_the_unseen_count_does(
    seen_on: None, api: APIClient, vendor: Vendor, path: str
) -> None:
    ids = make(vendor, 2)
    url = reverse(f"vendor_notifications:notification-{path}")
    first = api.get(url)
    tag = first.headers["ETag"]
    assert first.json()["unseen_count"] == 2
    assert api.get(url, HTTP_IF_NONE_MATCH=tag).status_code == 304
    services.mark_seen(vendor.pk, ids[-1])
    again = api.get(url, HTTP_IF_NONE_MATCH=tag)
    assert again.status_code == 200 and again.json()["unseen_count"] == 0
    with vendor_settings(SEEN=False):
        assert api.get(url).headers["ETag"] != again.headers["ETag"]


async def test_a_snooze_over_http_sets_the_open_sockets_timers(
    snooze_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    ids = await database_sync_to_async(make)(vendor, 1)
    socket, _ = await connect(access_token_for(owner))
    await settle(socket)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(owner)}")
    url = reverse("vendor_notifications:notification-snooze", args=[ids[0]])
    response = await database_sync_to_async(client.post)(
        url, {"until": iso(later(0.8))}, format="json"
    )
    assert response.status_code == 200, response.content
    assert (await receive(socket))["action"] == "notification_snoozed"
    woke = await receive(socket, timeout=5)
    assert woke["action"] == "notifications_woke" and woke["unread_total"] == 1
    assert await socket.receive_nothing(timeout=0.3)
    await socket.disconnect()


async def test_asyncio_timers_are_left_none_behind(
    snooze_on: None, owner: Any, vendor: Vendor, channel_layer: Any
) -> None:
    """A socket closed before its wake leaves no timer running."""
    ids = await database_sync_to_async(make)(vendor, 1)
    await database_sync_to_async(services.snooze)(vendor.pk, ids[0], later(0.3))
    socket, _ = await connect(access_token_for(owner))
    await socket.disconnect()
    await asyncio.sleep(0.5)
    row = await database_sync_to_async(Notification.objects.get)(pk=ids[0])
    assert row.snoozed_until is not None
