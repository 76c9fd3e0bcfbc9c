"""A socket's plain parts: its Feed (exactly once by id) and its bounded Inbox."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from django_vendor_notifications import delivery
from django_vendor_notifications.feed import Feed, RecentIds, Verdict
from django_vendor_notifications.inbox import BROKEN, REPAIR, Inbox


def push(notification_id: int, previous_id: int, text: str = "{}") -> dict[str, object]:
    return delivery.push_event(text, notification_id=notification_id, previous_id=previous_id)


def test_a_push_is_sent_once_and_a_gap_is_noticed() -> None:
    feed = Feed(last_id=10)
    assert feed.judge_push(push(11, 10)) is Verdict.SEND
    assert feed.judge_push(push(11, 10)) is Verdict.DROP
    assert feed.judge_push(push(14, 13)) is Verdict.FILL_GAP
    assert feed.last_id == 11


def test_unsent_rows_skip_what_was_sent_and_move_the_last_id() -> None:
    feed = Feed(last_id=10)
    feed.remember([12])
    rows = [{"id": 11}, {"id": 12}, {"id": 13}]
    assert [row["id"] for row in feed.unsent(rows)] == [11, 13]
    assert feed.last_id == 13
    assert feed.unsent(rows) == []


def test_the_feed_forgets_the_lowest_ids_beyond_its_size_in_batches() -> None:
    feed = Feed(size=4)
    feed.remember([1, 2, 3, 4, 5])
    assert all(n in feed for n in (1, 2, 3, 4, 5))  # within the slack (size // 4)
    feed.remember([6])
    assert 1 not in feed and 2 not in feed
    assert all(n in feed for n in (3, 4, 5, 6))
    assert len(feed.recent) == 4


@given(
    st.lists(st.integers(min_value=1, max_value=300), max_size=400),
    st.integers(min_value=1, max_value=40),
)
def test_recent_ids_hold_the_highest_ids_added_and_nothing_else(ids: list[int], size: int) -> None:
    recent = RecentIds(size)
    for notification_id in ids:
        recent.add(notification_id)
    held = sorted(set(ids))
    assert list(recent.ids) == sorted(recent.ids)
    assert len(recent) <= recent.trim_at
    # At least the `size` highest distinct ids, and never an id that was not added.
    assert all(n in recent for n in held[-size:])
    assert all(n not in recent for n in range(0, 302) if n not in held)


def test_a_broadcast_fills_in_the_vendors_own_id_once() -> None:
    feed = Feed()
    template = f'{{"id":{delivery.ID_PLACEHOLDER},"vendor":{delivery.VENDOR_PLACEHOLDER}}}'
    event = {"template": template, "ids": {"7": 42}}
    assert feed.broadcast_text(event, "7", "7") == '{"id":42,"vendor":7}'
    assert feed.broadcast_text(event, "7", "7") is None
    assert feed.broadcast_text(event, "8", "8") is None


async def test_an_overflowing_inbox_trades_its_pushes_for_one_repair() -> None:
    inbox = Inbox(max_frames=2, max_bytes=10_000)
    control = {"type": "session.revalidate"}
    inbox.put_event(push(1, 0))
    inbox.put_event(control)
    inbox.put_event(push(2, 1))
    inbox.put_event(push(3, 2))  # the third push: over the bound
    inbox.put_event(push(4, 3))
    assert await inbox.get() is control
    assert await inbox.get() is REPAIR
    assert (await inbox.get())["id"] == 4
    assert len(inbox) == 0
    assert inbox.overflows == 1


async def test_the_byte_bound_counts_as_well() -> None:
    inbox = Inbox(max_frames=100, max_bytes=10)
    inbox.put_event(push(1, 0, "x" * 6))
    inbox.put_event(push(2, 1, "x" * 6))
    assert await inbox.get() is REPAIR
    assert inbox.overflows == 1
    assert len(inbox) == 0


async def test_events_that_cannot_be_replayed_are_kept_until_the_inbox_breaks() -> None:
    inbox = Inbox(max_frames=2, max_bytes=10_000)
    for n in range(4):
        inbox.put_event({"type": "host.event", "n": n})
    assert [(await inbox.get())["n"] for _ in range(4)] == [0, 1, 2, 3]
    for n in range(5):
        inbox.put_event({"type": "host.event", "n": n})
    assert inbox.broken
    assert await inbox.get() is BROKEN


async def test_a_disconnect_drops_queued_events_but_not_what_the_client_sent() -> None:
    inbox = Inbox(max_frames=10, max_bytes=10_000)
    inbox.put_event(push(1, 0))
    inbox.put_client({"type": "websocket.receive", "text": "{}"})
    inbox.put_event(push(2, 1))
    inbox.put_client({"type": "websocket.disconnect", "code": 1000})
    assert [(await inbox.get())["type"] for _ in range(2)] == [
        "websocket.receive",
        "websocket.disconnect",
    ]


async def test_get_waits_for_the_next_item() -> None:
    inbox = Inbox(max_frames=10, max_bytes=10_000)
    waiting = asyncio.ensure_future(inbox.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    inbox.put_event({"type": "x"})
    assert await asyncio.wait_for(waiting, 1) == {"type": "x"}
