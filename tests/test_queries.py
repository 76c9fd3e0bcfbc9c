"""Query counts stay constant however much history a vendor has and however many categories.

Counted twice: through the real consumer (queries made in the worker thread that
``database_sync_to_async`` runs in) and by calling the same service functions directly.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connection
from django.test.utils import CaptureQueriesContext

from django_vendor_notifications import delivery, payloads, services
from django_vendor_notifications.auth import user_for_token
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import access_token_for, communicator_for
from tests.plans import analyze
from tests.testapp.models import Vendor

# The numbers this suite pins. Connect, in one thread hop: the token's user, the vendor (for
# staff with the role check in the same query), and the inbox - the vendor's newest id (where
# the socket's gap detection starts), the unread counts and the unread snapshot in one
# UNION ALL query.
OWNER_CONNECT_QUERIES = 3
STAFF_CONNECT_QUERIES = 3
# After the first frame, a socket whose groups the process had to join (it held none of them
# when the snapshot was read) catches up by id: one query, off the connect's latency path.
COLD_GROUP_CATCH_UP_QUERIES = 1
# mark_read: the UPDATE, then the unread count for the other sockets (or, when nothing changed,
# whether the notification exists at all).
MARK_READ_QUERIES = 2
LOAD_MORE_QUERIES = 1
# A before_id page: one keyset query (limit + 1 rows), at any depth.
CURSOR_PAGE_QUERIES = 1
UNREAD_COUNTS_QUERIES = 1
# mark_all_read: the UPDATE and the counts afterwards (one more with a notification_read
# receiver connected). mark_unread: the UPDATE and the counts.
MARK_ALL_READ_QUERIES = 2
MARK_UNREAD_QUERIES = 2
# archive / unarchive of an unread notification: the row, the UPDATE, and the counts.
ARCHIVE_QUERIES = 3
# A reload: the unread snapshot and the unread counts per category, in one query.
RELOAD_QUERIES = 1

ACTION_QUERIES = {
    "mark_read": MARK_READ_QUERIES,
    "load_more": LOAD_MORE_QUERIES,
    "cursor_page": CURSOR_PAGE_QUERIES,
    "get_unread_counts": UNREAD_COUNTS_QUERIES,
    "mark_unread": MARK_UNREAD_QUERIES,
    "archive": ARCHIVE_QUERIES,
    "unarchive": ARCHIVE_QUERIES,
    "mark_all_read": MARK_ALL_READ_QUERIES,
    "reload": RELOAD_QUERIES,
}

SCALES = [(10, 1), (1000, 1), (10, 20), (1000, 20)]
SCALE_IDS = [f"{count}-rows-{categories}-categories" for count, categories in SCALES]
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=datetime.timezone.utc)


def seed(vendor: Vendor, count: int, categories: int) -> list[int]:
    """``count`` notifications spread over ``categories`` labels, a third of them read."""
    Notification.objects.bulk_create(
        Notification(
            vendor=vendor,
            category=f"Category {i % categories}",
            message=f"Notification {i}",
            context_data={"i": i},
            is_read=i % 3 == 0,
            created_at=BASE + datetime.timedelta(seconds=i),
        )
        for i in range(count)
    )
    return list(Notification.objects.filter(vendor=vendor).values_list("pk", flat=True))


class WorkerQueries:
    """Captures the queries run in the thread ``database_sync_to_async`` uses.

    The connection is per thread, so the capture starts, stops and reads its result there.
    """

    def __init__(self) -> None:
        self.context = CaptureQueriesContext(connection)
        self.queries: list[dict[str, Any]] = []

    def _stop(self) -> None:
        self.context.__exit__(None, None, None)
        self.queries = self.context.captured_queries

    async def __aenter__(self) -> WorkerQueries:
        await database_sync_to_async(self.context.__enter__)()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await database_sync_to_async(self._stop)()

    @property
    def count(self) -> int:
        return len(self.queries)


async def connect_counting(token: str) -> tuple[WebsocketCommunicator, int]:
    """A connected socket and the queries its connect made, up to and after its first frame
    (a catch-up after a group the process had to join is given the time to run)."""
    communicator: WebsocketCommunicator = communicator_for(token)
    async with WorkerQueries() as queries:
        connected, _ = await communicator.connect()
        assert connected
        first = await communicator.receive_json_from(timeout=10)
        assert await communicator.receive_nothing(timeout=0.2)
    assert first["action"] == "unread_notifications"
    assert first["notifications"], "the snapshot must not be empty, or nothing is measured"
    assert first["unread_total"] > 0
    return communicator, queries.count


async def measure_socket(token: str, notification_id: int) -> dict[str, int]:
    """Query counts of connect, mark_read, load_more and a reload on one real socket.

    The connect counted is one to groups the process already holds (another socket of the
    same user is open), as most connects are; the first socket's connect makes one query more.
    """
    counts: dict[str, int] = {}
    first_socket, counts["first_connect"] = await connect_counting(token)
    communicator, counts["connect"] = await connect_counting(token)
    await first_socket.disconnect()

    one = {"notification_id": notification_id}
    steps: list[tuple[str, dict[str, Any], str]] = [
        ("mark_read", {"action": "mark_read", **one}, "mark_read"),
        ("load_more", {"action": "load_more", "page": 1}, "load_more"),
        ("cursor_page", {"action": "load_more", "before_id": MAX_ID, "limit": 50}, "load_more"),
        ("get_unread_counts", {"action": "get_unread_counts"}, "get_unread_counts"),
        ("mark_unread", {"action": "mark_unread", **one}, "mark_unread"),
        ("archive", {"action": "archive", **one}, "archive"),
        ("unarchive", {"action": "unarchive", **one}, "unarchive"),
        ("mark_all_read", {"action": "mark_all_read"}, "mark_all_read"),
    ]
    for name, message, reply_action in steps:
        async with WorkerQueries() as queries:
            await communicator.send_json_to(message)
            reply = await communicator.receive_json_from(timeout=10)
        assert reply["action"] == reply_action, reply
        assert reply.get("status", "success") == "success", reply
        counts[name] = queries.count

    async with WorkerQueries() as queries:
        await communicator.send_input({"type": delivery.RELOAD_EVENT})
        assert (await communicator.receive_json_from(timeout=10))["action"] == (
            "unread_notifications"
        )
    counts["reload"] = queries.count
    await communicator.disconnect()
    return counts


@pytest.fixture
def scaled(request: pytest.FixtureRequest, vendor: Vendor) -> list[int]:
    count, categories = request.param
    return seed(vendor, count, categories)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scaled", SCALES, ids=SCALE_IDS, indirect=True)
async def test_owner_socket_queries(owner: Any, scaled: list[int], channel_layer: Any) -> None:
    token = access_token_for(owner)
    counts = await measure_socket(token, scaled[-1])
    assert counts == {
        "first_connect": OWNER_CONNECT_QUERIES + COLD_GROUP_CATCH_UP_QUERIES,
        "connect": OWNER_CONNECT_QUERIES,
        **ACTION_QUERIES,
    }


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("scaled", SCALES, ids=SCALE_IDS, indirect=True)
async def test_staff_socket_queries(staff: Any, scaled: list[int], channel_layer: Any) -> None:
    token = access_token_for(staff)
    counts = await measure_socket(token, scaled[0])
    assert counts == {
        "first_connect": STAFF_CONNECT_QUERIES + COLD_GROUP_CATCH_UP_QUERIES,
        "connect": STAFF_CONNECT_QUERIES,
        **ACTION_QUERIES,
    }


# --- the same paths through the service functions ----------------------------------------


def connect_path(token: str) -> dict[str, Any]:
    """What the middleware and consumer do on connect, in the same order."""
    started = services.start_session(user_for_token(token))
    assert isinstance(started, services.Started)
    return payloads.unread_notifications_frame(started.unread_rows, started.session.unread_counts)


@pytest.mark.django_db
@pytest.mark.parametrize("scaled", SCALES, ids=SCALE_IDS, indirect=True)
def test_service_queries(
    owner: Any,
    staff: Any,
    vendor: Vendor,
    scaled: list[int],
    django_assert_num_queries: Callable[..., Any],
) -> None:
    with django_assert_num_queries(OWNER_CONNECT_QUERIES):
        frame = connect_path(access_token_for(owner))
    assert frame["notifications"]
    with django_assert_num_queries(STAFF_CONNECT_QUERIES):
        connect_path(access_token_for(staff))
    with django_assert_num_queries(MARK_READ_QUERIES):
        assert services.mark_read(vendor.pk, scaled[0]).found is True
    with django_assert_num_queries(LOAD_MORE_QUERIES):
        page = services.notifications_page(vendor.pk, 1)
    assert page["notifications"]
    with django_assert_num_queries(RELOAD_QUERIES):
        state = services.inbox_state(vendor.pk)
        payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)


@pytest.mark.django_db
def test_snapshot_and_page_sizes_do_not_grow_with_history(vendor: Vendor) -> None:
    seed(vendor, 1000, 20)
    snapshot = services.unread_notifications(vendor.pk)
    assert sum(len(items) for items in snapshot["notifications"].values()) == 100
    page = services.notifications_page(vendor.pk, 1)
    assert sum(len(items) for items in page["notifications"].values()) == 20
    assert page["has_more"] is True


# --- the inbox actions ---------------------------------------------------------------------

DEEP = 20_000


@pytest.mark.django_db
def test_inbox_service_queries(
    vendor: Vendor, django_assert_num_queries: Callable[..., Any]
) -> None:
    read_id = min(seed(vendor, 1000, 20))  # i = 0: read
    with django_assert_num_queries(UNREAD_COUNTS_QUERIES):
        assert services.unread_counts(vendor.pk)
    with django_assert_num_queries(MARK_ALL_READ_QUERIES):
        assert services.mark_all_read(vendor.pk, "Category 1").updated > 0
    with django_assert_num_queries(MARK_UNREAD_QUERIES):
        assert services.mark_unread(vendor.pk, read_id).unread_counts is not None
    with django_assert_num_queries(ARCHIVE_QUERIES):
        assert services.archive(vendor.pk, read_id).unread_counts is not None
    with django_assert_num_queries(ARCHIVE_QUERIES):
        assert services.unarchive(vendor.pk, read_id).unread_counts is not None
    with django_assert_num_queries(CURSOR_PAGE_QUERIES):
        services.cursor_page(vendor.pk, None, 20, category="Category 3", is_read=False)


@pytest.mark.django_db
def test_cursor_page_is_one_query_at_any_depth(
    vendor: Vendor, django_assert_num_queries: Callable[..., Any]
) -> None:
    ids = sorted(seed(vendor, DEEP, 20))
    for before_id in (None, ids[DEEP // 2], ids[60]):
        with django_assert_num_queries(CURSOR_PAGE_QUERIES) as queries:
            page = services.cursor_page(vendor.pk, before_id, 50)
        sql = queries.captured_queries[0]["sql"]
        # A keyset, never an OFFSET that would walk the skipped rows.
        assert "OFFSET" not in sql.upper()
        assert "LIMIT 51" in sql
        assert len(page["notifications"]) == 50
        assert page["has_more"] is True
        expected_first = ids[-1] if before_id is None else before_id - 1
        assert page["notifications"][0]["id"] == expected_first
    # The oldest page ends the history.
    last = services.cursor_page(vendor.pk, ids[10], 50)
    assert [item["id"] for item in last["notifications"]] == ids[:10][::-1]
    assert (last["has_more"], last["next_before_id"]) == (False, None)


@pytest.mark.django_db
def test_connect_counts_unread_without_an_extra_query(
    owner: Any, vendor: Vendor, django_assert_num_queries: Callable[..., Any]
) -> None:
    seed(vendor, DEEP, 20)
    with django_assert_num_queries(OWNER_CONNECT_QUERIES):
        frame = connect_path(access_token_for(owner))
    # seed() reads every third row: the rest are unread, spread over the twenty labels.
    assert frame["unread_total"] == DEEP - len(range(0, DEEP, 3))
    assert len(frame["unread_counts"]) == 20
    assert (
        frame["unread_counts"]["Category 1"]
        == Notification.objects.filter(vendor=vendor, category="Category 1", is_read=False).count()
    )


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a PostgreSQL query plan")
@pytest.mark.django_db
def test_newest_id_reads_the_vendors_own_index_not_everyone_elses_rows(
    vendor: Vendor, other_vendor: Vendor
) -> None:
    # A quiet vendor with a long history, then a busy one whose rows are all newer.
    created_at = datetime.datetime(2025, 3, 12, tzinfo=datetime.timezone.utc)
    for owner in (vendor, other_vendor):
        Notification.objects.bulk_create(
            Notification(vendor=owner, message="m", created_at=created_at) for _ in range(20_000)
        )
    analyze(Notification)
    expected = Notification.objects.filter(vendor=vendor).order_by("-id")[0].pk

    plans = []
    for query in (
        Notification.objects.newest_ids(vendor.pk)[:1],
        Notification.objects.newest_ids(vendor.pk).filter(id__lt=expected + 1)[:1],
    ):
        sql, params = query.query.sql_with_params()
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", params)
            plans.append(json.dumps(cursor.fetchone()[0]))
        assert list(query) == [expected]

    for plan in plans:
        # MAX(id) WHERE vendor_id = X walked the primary key past all 20,000 newer rows.
        assert '"Rows Removed by Filter"' not in plan, plan
        assert "vn_vendor_id_idx" in plan, plan
    state = services.inbox_state(vendor.pk)
    assert (state.newest_id, state.unread_counts) == (
        expected,
        {"General Notifications": 20_000},
    )
