"""A client that reconnects as docs/protocol.md's recovery rules ask, for the reconnect storm.

It keeps the newest notification id it received (from new_notification and sync frames; the
unread snapshot does not move it), and when its socket closes it waits a random jitter, then
reconnects with ``?since=<newest id>``, retrying a failed handshake with exponential back-off,
and sends ``sync`` again while a reply says ``has_more``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from bench.harness.env import CONNECT_CONCURRENCY

#: A client's first reconnect waits up to this long, so the clients do not arrive in one burst.
JITTER_S = 1.0
#: The back-off of the package's browser client (static/django_vendor_notifications/client.js):
#: attempt n waits a random time up to min(30 s, 0.5 s × 2ⁿ) ("full jitter").
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0
#: The browser client has no timeouts of its own for the handshake or the first frame; these
#: only end an attempt that is stuck, so clients do not give up on a busy server and add load.
OPEN_TIMEOUT_S = 60.0
FIRST_FRAME_TIMEOUT_S = 60.0


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Seconds before retry ``attempt`` (from 0), as the browser client waits."""
    return rng.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt))


def audit(expected: Sequence[int], received: Iterable[Sequence[int]]) -> dict[str, int]:
    """Across clients: expected ids a client never got, ids a client got more than once, and
    ids it got that were not expected."""
    wanted = set(expected)
    lost = duplicated = unexpected = 0
    for ids in received:
        got = set(ids)
        lost += len(wanted - got)
        duplicated += len(ids) - len(got)
        unexpected += len(got - wanted)
    return {"lost": lost, "duplicated": duplicated, "unexpected": unexpected}


def notification_ids(text: str) -> tuple[list[int], bool | None]:
    """The ids a frame delivers and, for a sync reply, whether more follow (else None)."""
    if text.startswith('{"action":"new_notification"'):
        return [json.loads(text)["notification"]["id"]], None
    if text.startswith('{"action":"sync"'):
        frame = json.loads(text)
        return [item["id"] for item in frame["notifications"]], bool(frame["has_more"])
    return [], None


async def wait_for(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.perf_counter() + timeout
    while not condition():
        if time.perf_counter() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


class Client:
    def __init__(
        self, url: Callable[[int | None], str], rng: random.Random, *, track_ids: bool
    ) -> None:
        #: The URL to (re)connect to, given the newest id seen (None when ids are not tracked).
        self.url = url
        self.rng = rng
        self.track_ids = track_ids
        self.last_id = 0
        #: Every id delivered, in order, repeats included.
        self.received: list[int] = []
        self.seen: set[int] = set()
        #: Set from now on: the time of the first frame after the next reconnect.
        self.reconnecting = False
        self.first_frame_at: float | None = None
        self.failures = 0
        self.closing = False
        self.ws: Any = None
        self.life: asyncio.Task[None] | None = None
        self.sending: set[asyncio.Task[None]] = set()

    def has(self, ids: Iterable[int]) -> bool:
        return self.seen.issuperset(ids)

    async def start(self) -> None:
        await self.connect()
        self.life = asyncio.create_task(self.live())

    async def connect(self) -> None:
        """Open the socket and read its first frame; raises when either fails."""
        from websockets.asyncio.client import connect

        ws = await connect(
            self.url(self.last_id if self.track_ids else None),
            compression=None,
            proxy=None,
            open_timeout=OPEN_TIMEOUT_S,
            ping_interval=None,
            max_queue=None,
        )
        try:
            first = await asyncio.wait_for(ws.recv(), FIRST_FRAME_TIMEOUT_S)
        except BaseException:
            with contextlib.suppress(Exception):
                await ws.close()
            raise
        if self.reconnecting and self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()
        self.ws = ws
        self.handle(first)

    async def live(self) -> None:
        """Read until the socket closes, then reconnect; until close()."""
        while not self.closing:
            with contextlib.suppress(Exception):
                async for text in self.ws:
                    self.handle(text)
            if self.closing:
                return
            await asyncio.sleep(self.rng.uniform(0, JITTER_S))
            attempt = 0
            while not self.closing:
                try:
                    await self.connect()
                    break
                except Exception:
                    self.failures += 1
                    await asyncio.sleep(backoff_delay(attempt, self.rng))
                    attempt += 1

    def handle(self, text: str | bytes) -> None:
        if not self.track_ids or isinstance(text, bytes):
            return
        ids, has_more = notification_ids(text)
        self.received.extend(ids)
        self.seen.update(ids)
        self.last_id = max([self.last_id, *ids])
        if has_more:
            message = json.dumps({"action": "sync", "since_id": self.last_id})
            task = asyncio.create_task(self.ws.send(message))
            self.sending.add(task)
            task.add_done_callback(self.sending.discard)

    async def close(self) -> None:
        self.closing = True
        if self.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.ws.close(), 10)
        if self.life is not None:
            self.life.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.life


async def open_all(clients: Sequence[Client]) -> None:
    """Connect every client (CONNECT_CONCURRENCY at a time); not part of what is measured."""
    limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(client: Client) -> None:
        async with limit:
            await client.start()

    await asyncio.gather(*(one(client) for client in clients))
    gc.collect()
    gc.freeze()


async def close_all(clients: Sequence[Client]) -> None:
    await asyncio.gather(*(client.close() for client in clients))
    gc.unfreeze()
