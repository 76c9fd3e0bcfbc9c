"""Per-socket and per-process limits: plain objects, tested without a socket."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from typing import Any


class TokenBucket:
    """Allows ``rate`` events per second on average, with bursts of up to ``burst``."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = float(burst)
        self.updated = clock()

    def allow(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class OpenSockets:
    """How many sockets each user holds in this process (the consumer counts them)."""

    def __init__(self) -> None:
        self.counts: Counter[Any] = Counter()

    def acquire(self, user_id: Any, limit: int) -> bool:
        if self.counts[user_id] >= limit:
            return False
        self.counts[user_id] += 1
        return True

    def release(self, user_id: Any) -> None:
        self.counts[user_id] -= 1
        if self.counts[user_id] <= 0:
            del self.counts[user_id]


#: The process-wide counter. Consumers of one process share an event loop, so no lock is needed.
open_sockets = OpenSockets()


class PendingConnects:
    """Connects of this process between accept and first frame: admission control for a
    reconnect storm. Past the limit a connect is turned away at once (4013, the client backs
    off) instead of waiting behind hundreds of others for the one database thread."""

    def __init__(self) -> None:
        self.count = 0

    def enter(self, limit: int | None) -> bool:
        if limit is not None and self.count >= limit:
            return False
        self.count += 1
        return True

    def leave(self) -> None:
        self.count -= 1


pending_connects = PendingConnects()
