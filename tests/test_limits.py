"""The per-socket token bucket and the per-process socket and connect counts."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from django_vendor_notifications import consumers, services
from django_vendor_notifications.database import in_thread
from django_vendor_notifications.limits import OpenSockets, PendingConnects, TokenBucket
from django_vendor_notifications.protocol import CloseCode
from tests.conftest import communicator_for, connect, vendor_settings


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def allowed(bucket: TokenBucket, attempts: int) -> int:
    return sum(bucket.allow() for _ in range(attempts))


def test_burst_is_allowed_at_once_then_refused() -> None:
    bucket = TokenBucket(rate=10, burst=20, clock=FakeClock())
    assert allowed(bucket, 25) == 20
    assert bucket.allow() is False


def test_tokens_refill_at_the_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    allowed(bucket, 20)
    clock.now += 0.5
    assert allowed(bucket, 10) == 5
    clock.now += 0.09
    assert bucket.allow() is False
    clock.now += 0.01
    assert bucket.allow() is True


def test_refill_never_exceeds_the_burst() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=20, clock=clock)
    clock.now += 3600
    assert allowed(bucket, 100) == 20


def test_sustained_rate_is_allowed() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=10, burst=1, clock=clock)
    results = []
    for _ in range(100):
        results.append(bucket.allow())
        clock.now += 0.1
    assert all(results)


def test_refused_attempts_cost_nothing() -> None:
    clock = FakeClock()
    bucket = TokenBucket(rate=1, burst=1, clock=clock)
    assert bucket.allow() is True
    assert allowed(bucket, 1000) == 0
    clock.now += 1
    assert bucket.allow() is True


def test_a_clock_that_does_not_move_gives_nothing_back() -> None:
    bucket = TokenBucket(rate=1000, burst=2, clock=FakeClock())
    assert allowed(bucket, 3) == 2


def test_open_sockets_counts_per_user() -> None:
    sockets = OpenSockets()
    assert all(sockets.acquire("alice", 3) for _ in range(3))
    assert sockets.acquire("alice", 3) is False
    assert sockets.acquire("bob", 3) is True
    sockets.release("alice")
    assert sockets.acquire("alice", 3) is True
    assert sockets.acquire("alice", 3) is False


def test_open_sockets_forgets_users_without_sockets() -> None:
    sockets = OpenSockets()
    sockets.acquire(1, 10)
    sockets.acquire(1, 10)
    sockets.release(1)
    sockets.release(1)
    assert 1 not in sockets.counts
    # An extra release (a disconnect counted twice) cannot give a user extra sockets.
    sockets.release(1)
    assert 1 not in sockets.counts
    assert sum(sockets.acquire(1, 2) for _ in range(3)) == 2


@pytest.mark.parametrize("limit", [0, -1])
def test_open_sockets_limit_below_one_refuses(limit: int) -> None:
    assert OpenSockets().acquire(1, limit) is False


def test_pending_connects_admit_up_to_the_limit_and_free_a_place_on_leave() -> None:
    pending = PendingConnects()
    assert [pending.enter(2) for _ in range(3)] == [True, True, False]
    pending.leave()
    assert pending.enter(2) is True
    assert all(pending.enter(None) for _ in range(100))  # None: no limit


@pytest.mark.django_db(transaction=True)
async def test_a_connect_past_max_pending_connects_is_closed_4013_at_once(
    access_token: str, channel_layer: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One connect waits for its database hop; with a limit of 1 the next is turned away
    before any database work, and the first still gets its snapshot."""
    release = threading.Event()
    start_session = consumers.start_session
    monkeypatch.setattr(
        consumers,
        "start_session",
        in_thread(lambda user: release.wait(5) and services.start_session(user)),
    )
    with vendor_settings(MAX_PENDING_CONNECTS=1):
        first = communicator_for(access_token)
        assert (await first.connect())[0]
        while consumers.pending_connects.count < 1:
            await asyncio.sleep(0.01)
        second = communicator_for(access_token)
        assert (await second.connect())[0]
        assert await second.receive_output(timeout=1) == {
            "type": "websocket.close",
            "code": CloseCode.TRY_AGAIN_LATER,
        }
        release.set()
        assert (await first.receive_json_from(timeout=5))["action"] == "unread_notifications"
        assert consumers.pending_connects.count == 0
        monkeypatch.setattr(consumers, "start_session", start_session)
        third, _ = await connect(access_token)
    for socket in (first, second, third):
        await socket.disconnect()
