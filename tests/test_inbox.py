"""The inbox actions through the ASGI stack a host uses: counts, mark_all_read, mark_unread,
before_id pages and archive, each on the vendor's own notifications only."""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID
from tests.conftest import access_token_for, connect, vendor_settings
from tests.test_consumer import reload, send
from tests.test_payloads import ITEM_KEYS
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db(transaction=True)

UTC = datetime.timezone.utc
BASE = datetime.datetime(2025, 3, 12, 9, 0, tzinfo=UTC)
ORDERS = "Order Notifications"
GENERAL = "General Notifications"


@pytest.fixture
def inbox(vendor: Vendor, other_vendor: Vendor) -> dict[str, Notification]:
    """Six notifications of ``vendor`` (ids in creation order) and one of another vendor."""

    def make(vendor: Vendor, message: str, minutes: int, **fields: Any) -> Notification:
        created_at = BASE + datetime.timedelta(minutes=minutes)
        return Notification.objects.create(
            vendor=vendor, message=message, created_at=created_at, **fields
        )

    return {
        "order1": make(vendor, "Order #1", 0, category=ORDERS),
        "order2": make(vendor, "Order #2", 1, category=ORDERS),
        "general": make(vendor, "Hello", 2, category=GENERAL),
        "read": make(vendor, "Seen", 3, category=GENERAL, is_read=True, readed_at=BASE),
        "archived": make(vendor, "Filed", 4, category=ORDERS, archived_at=BASE),
        "order3": make(vendor, "Order #3", 5, category=ORDERS),
        "foreign": make(other_vendor, "Not yours", 6, category=ORDERS),
    }


@pytest.fixture
async def pair(
    access_token: str, staff: Any, channel_layer: Any
) -> AsyncIterator[tuple[WebsocketCommunicator, WebsocketCommunicator, dict[str, Any]]]:
    """The owner's socket, a staff member's socket of the same vendor, and the first frame."""
    first, frame = await connect(access_token)
    second, _ = await connect(access_token_for(staff))
    yield first, second, frame
    await first.disconnect()
    await second.disconnect()


async def counts_pushed(socket: WebsocketCommunicator) -> dict[str, Any]:
    frame: dict[str, Any] = await socket.receive_json_from(timeout=5)
    assert frame["action"] == "unread_count_changed"
    assert set(frame) == {"action", "unread_counts", "unread_total"}
    return frame


def state(notification: Notification) -> tuple[bool, Any, Any]:
    return notification.is_read, notification.readed_at, notification.archived_at


# --- unread counts -------------------------------------------------------------------------


async def test_first_frame_counts_unread_of_this_vendor_only(
    inbox: dict[str, Notification], pair: Any
) -> None:
    _, _, first = pair
    # The read one, the archived one and the other vendor's are not counted.
    assert first["unread_counts"] == {GENERAL: 1, ORDERS: 3}
    assert first["unread_total"] == 4
    listed = {item["id"] for items in first["notifications"].values() for item in items}
    assert listed == {inbox[key].pk for key in ("order1", "order2", "general", "order3")}


async def test_get_unread_counts(inbox: dict[str, Notification], pair: Any) -> None:
    first, second, _ = pair
    reply = await send(first, {"action": "get_unread_counts", "request_id": "c1"})
    assert reply == {
        "action": "get_unread_counts",
        "status": "success",
        "unread_counts": {GENERAL: 1, ORDERS: 3},
        "unread_total": 4,
        "request_id": "c1",
    }
    # Asking changes nothing, so no other socket hears of it.
    assert await second.receive_nothing()


# --- mark_all_read ---------------------------------------------------------------------------


async def test_mark_all_read(inbox: dict[str, Notification], pair: Any) -> None:
    first, second, _ = pair
    reply = await send(first, {"action": "mark_all_read", "request_id": 5})
    assert reply == {
        "action": "mark_all_read",
        "status": "success",
        "updated": 4,
        "unread_total": 0,
        "request_id": 5,
    }
    assert await counts_pushed(second) == {
        "action": "unread_count_changed",
        "unread_counts": {},
        "unread_total": 0,
    }
    # The socket that asked gets its reply, not the push.
    assert await first.receive_nothing()
    for key in ("order1", "order2", "general", "order3"):
        notification = await reload(inbox[key])
        assert notification.is_read is True
        assert notification.is_recent_notification is False
        assert notification.readed_at is not None
    # The archived one stays unread in the archive; the other vendor's is untouched.
    assert (await reload(inbox["archived"])).is_read is False
    foreign = await reload(inbox["foreign"])
    assert (foreign.is_read, foreign.readed_at) == (False, None)
    # Nothing left: a second call changes nothing and pushes nothing.
    again = await send(first, {"action": "mark_all_read"})
    assert (again["updated"], again["unread_total"]) == (0, 0)
    assert await second.receive_nothing()


async def test_mark_all_read_of_one_category(inbox: dict[str, Notification], pair: Any) -> None:
    first, second, _ = pair
    reply = await send(first, {"action": "mark_all_read", "category": ORDERS})
    assert reply == {
        "action": "mark_all_read",
        "status": "success",
        "category": ORDERS,
        "updated": 3,
        "unread_total": 1,
    }
    assert (await counts_pushed(second))["unread_counts"] == {GENERAL: 1}
    assert (await reload(inbox["general"])).is_read is False
    assert (await reload(inbox["foreign"])).is_read is False
    # A label with no unread notifications is not an error.
    reply = await send(first, {"action": "mark_all_read", "category": "Payouts"})
    assert (reply["status"], reply["updated"], reply["unread_total"]) == ("success", 0, 1)


# --- mark_unread ---------------------------------------------------------------------------


async def test_mark_unread(inbox: dict[str, Notification], pair: Any) -> None:
    first, second, _ = pair
    read = inbox["read"]
    reply = await send(first, {"action": "mark_unread", "notification_id": read.pk})
    assert reply == {"action": "mark_unread", "notification_id": read.pk, "status": "success"}
    read = await reload(read)
    assert (read.is_read, read.readed_at, read.is_recent_notification) == (False, None, True)
    assert await counts_pushed(second) == {
        "action": "unread_count_changed",
        "unread_counts": {GENERAL: 2, ORDERS: 3},
        "unread_total": 5,
    }
    assert await first.receive_nothing()
    # Unread already: success again, and no push since nothing changed.
    reply = await send(first, {"action": "mark_unread", "notification_id": read.pk})
    assert reply["status"] == "success"
    assert await second.receive_nothing()


# --- archive -------------------------------------------------------------------------------


async def test_archive_and_unarchive(inbox: dict[str, Notification], pair: Any) -> None:
    first, second, _ = pair
    order = inbox["order1"]
    reply = await send(first, {"action": "archive", "notification_id": order.pk})
    assert reply == {"action": "archive", "notification_id": order.pk, "status": "success"}
    archived_at = (await reload(order)).archived_at
    assert archived_at is not None
    assert (await counts_pushed(second))["unread_counts"] == {GENERAL: 1, ORDERS: 2}
    # Out of the unread list and counts...
    counts = await send(first, {"action": "get_unread_counts"})
    assert counts["unread_total"] == 3
    # ...but still in the history, with archived: true.
    page = await send(first, {"action": "load_more", "before_id": None, "archived": True})
    assert [item["id"] for item in page["notifications"]] == [inbox["archived"].pk, order.pk]
    # Archiving again succeeds, keeps the first archived_at, and pushes nothing.
    again = await send(first, {"action": "archive", "notification_id": order.pk})
    assert again["status"] == "success"
    assert (await reload(order)).archived_at == archived_at
    assert await second.receive_nothing()

    reply = await send(first, {"action": "unarchive", "notification_id": order.pk})
    assert reply == {"action": "unarchive", "notification_id": order.pk, "status": "success"}
    assert (await reload(order)).archived_at is None
    assert (await counts_pushed(second))["unread_total"] == 4


async def test_archiving_a_read_notification_moves_no_count(
    inbox: dict[str, Notification], pair: Any
) -> None:
    first, second, _ = pair
    reply = await send(first, {"action": "archive", "notification_id": inbox["read"].pk})
    assert reply["status"] == "success"
    assert (await reload(inbox["read"])).archived_at is not None
    assert await second.receive_nothing()


# --- another vendor's notifications --------------------------------------------------------


@pytest.mark.parametrize("action", ["mark_unread", "archive", "unarchive"])
async def test_another_vendors_notification_is_not_found(
    inbox: dict[str, Notification], pair: Any, action: str
) -> None:
    first, second, _ = pair
    foreign = inbox["foreign"]
    await database_sync_to_async(Notification.objects.filter(pk=foreign.pk).update)(
        is_read=True, readed_at=BASE, archived_at=BASE if action == "unarchive" else None
    )
    before = state(await reload(foreign))
    reply = await send(first, {"action": action, "notification_id": foreign.pk, "request_id": "x"})
    assert reply == {
        "action": action,
        "notification_id": foreign.pk,
        "status": "error",
        "error": "not_found",
        "request_id": "x",
    }
    assert state(await reload(foreign)) == before
    assert await second.receive_nothing()


@pytest.mark.parametrize("action", ["mark_unread", "archive", "unarchive"])
async def test_missing_notification_is_not_found(pair: Any, action: str) -> None:
    first, _, _ = pair
    reply = await send(first, {"action": action, "notification_id": MAX_ID})
    assert (reply["status"], reply["error"]) == ("error", "not_found")


async def test_mark_all_read_never_touches_another_vendor(
    inbox: dict[str, Notification], pair: Any
) -> None:
    first, _, _ = pair
    reply = await send(first, {"action": "mark_all_read", "category": ORDERS})
    assert reply["updated"] == 3
    assert state(await reload(inbox["foreign"])) == (False, None, None)


# --- load_more with before_id --------------------------------------------------------------


def ids_of(frame: dict[str, Any]) -> list[int]:
    return [item["id"] for item in frame["notifications"]]


async def test_cursor_pages_walk_the_history_newest_first(
    inbox: dict[str, Notification], pair: Any
) -> None:
    first, _, _ = pair
    mine = sorted((n.pk for key, n in inbox.items() if key != "foreign"), reverse=True)
    page1 = await send(
        first, {"action": "load_more", "before_id": MAX_ID, "limit": 4, "request_id": "p"}
    )
    assert page1["request_id"] == "p"
    assert (page1["action"], page1["before_id"]) == ("load_more", MAX_ID)
    assert ids_of(page1) == mine[:4]
    assert (page1["has_more"], page1["next_before_id"]) == (True, mine[3])
    # Items are whole items, the same as everywhere else.
    assert set(page1["notifications"][0]) == ITEM_KEYS
    page2 = await send(
        first, {"action": "load_more", "before_id": page1["next_before_id"], "limit": 4}
    )
    assert ids_of(page2) == mine[4:]
    assert (page2["has_more"], page2["next_before_id"]) == (False, None)
    # Past the end: an empty page.
    end = await send(first, {"action": "load_more", "before_id": min(mine), "limit": 4})
    assert (ids_of(end), end["has_more"], end["next_before_id"]) == ([], False, None)


async def test_cursor_page_defaults_and_cap(inbox: dict[str, Notification], pair: Any) -> None:
    first, _, _ = pair
    with vendor_settings(PAGE_SIZE=2, MAX_PAGE_SIZE=3):
        default = await send(first, {"action": "load_more", "before_id": None})
        capped = await send(first, {"action": "load_more", "before_id": None, "limit": 1000})
    assert len(default["notifications"]) == 2
    assert len(capped["notifications"]) == 3
    assert capped["has_more"] is True
    assert default["before_id"] is None


@pytest.mark.parametrize(
    ("filters", "keys"),
    [
        ({"category": ORDERS}, ["order3", "archived", "order2", "order1"]),
        ({"is_read": True}, ["read"]),
        ({"is_read": False}, ["order3", "archived", "general", "order2", "order1"]),
        ({"archived": True}, ["archived"]),
        ({"archived": False}, ["order3", "read", "general", "order2", "order1"]),
        ({"category": ORDERS, "is_read": False, "archived": False}, ["order3", "order2", "order1"]),
        ({"category": "Payouts"}, []),
    ],
    ids=repr,
)
async def test_cursor_page_filters(
    inbox: dict[str, Notification], pair: Any, filters: dict[str, Any], keys: list[str]
) -> None:
    first, _, _ = pair
    page = await send(first, {"action": "load_more", "before_id": None, **filters})
    assert ids_of(page) == [inbox[key].pk for key in keys]
    assert inbox["foreign"].pk not in ids_of(page)


# --- bad input -----------------------------------------------------------------------------

BAD_INBOX_INPUTS: list[dict[str, Any]] = [
    {"action": "mark_unread"},
    {"action": "mark_unread", "notification_id": "1"},
    {"action": "archive", "notification_id": 0},
    {"action": "archive", "notification_id": True},
    {"action": "unarchive", "notification_id": 2**63},
    {"action": "unarchive", "notification_id": [1]},
    {"action": "mark_all_read", "category": 3},
    {"action": "mark_all_read", "category": ""},
    {"action": "mark_all_read", "category": "x" * 101},
    {"action": "mark_all_read", "category": ["Order Notifications"]},
    # Text PostgreSQL cannot hold (NUL) or UTF-8 cannot spell (a lone surrogate).
    {"action": "mark_all_read", "category": "Order\u0000Notifications"},
    {"action": "mark_all_read", "category": "\ud800"},
    {"action": "load_more", "before_id": "5"},
    {"action": "load_more", "before_id": 0},
    {"action": "load_more", "before_id": -3},
    {"action": "load_more", "before_id": 5, "limit": 0},
    {"action": "load_more", "before_id": 5, "limit": "10"},
    {"action": "load_more", "before_id": 5, "limit": 2.0},
    {"action": "load_more", "before_id": 5, "is_read": "yes"},
    {"action": "load_more", "before_id": 5, "is_read": 0},
    {"action": "load_more", "before_id": 5, "archived": 1},
    {"action": "load_more", "before_id": 5, "category": 7},
    {"action": "load_more", "before_id": 5, "category": "\u0000"},
    {"action": "load_more", "before_id": 5, "page": 1},
]


@pytest.mark.invalid_client_frames
@pytest.mark.parametrize("message", BAD_INBOX_INPUTS, ids=repr)
async def test_bad_inbox_input_gets_invalid_field(
    inbox: dict[str, Notification], pair: Any, message: dict[str, Any]
) -> None:
    first, second, _ = pair
    reply = await send(first, {**message, "request_id": "bad"})
    assert reply["action"] == "error"
    assert reply["error"] == "invalid_field"
    assert reply["request_id"] == "bad"
    assert reply["message"]
    # Nothing changed, nobody was told, and the socket serves on.
    assert await second.receive_nothing()
    counts = await send(first, {"action": "get_unread_counts"})
    assert counts["unread_total"] == 4


@pytest.mark.invalid_client_frames
async def test_unknown_action_lists_the_inbox_actions(pair: Any) -> None:
    first, _, _ = pair
    reply = await send(first, {"action": "delete_all"})
    assert reply["error"] == "unknown_action"
    for action in ("archive", "get_unread_counts", "mark_all_read", "mark_unread", "unarchive"):
        assert f"'{action}'" in reply["message"]


# --- ISO timestamps ------------------------------------------------------------------------


async def test_iso_timestamps_beside_the_spec_keys(
    inbox: dict[str, Notification], access_token: str, channel_layer: Any
) -> None:
    with vendor_settings(ISO_TIMESTAMPS=True):
        communicator, first = await connect(access_token)
        try:
            page = await send(communicator, {"action": "load_more", "before_id": None})
        finally:
            await communicator.disconnect()
    [order1] = [i for i in first["notifications"][ORDERS] if i["id"] == inbox["order1"].pk]
    # 09:00 UTC is 10:00 in Europe/Berlin (TIME_ZONE) in March.
    assert order1["created_at"] == "12-03-2025 10:00:00"
    assert order1["created_at_iso"] == "2025-03-12T10:00:00+01:00"
    assert order1["readed_at_iso"] is None
    [read] = [i for i in page["notifications"] if i["id"] == inbox["read"].pk]
    assert read["readed_at_iso"] == "2025-03-12T10:00:00+01:00"
    assert read["readed_at"] == "12-03-2025 10:00:00"
