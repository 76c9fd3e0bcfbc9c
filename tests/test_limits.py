"""The per-socket token bucket and the per-process socket count, without a socket."""

from __future__ import annotations

import pytest

from django_vendor_notifications.limits import OpenSockets, TokenBucket


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
