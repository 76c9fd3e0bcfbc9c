"""A socket's bounded local queue: what the hub and the client hand a socket, in order.

The hub puts an event into every local member's inbox without waiting for any socket, so one
slow socket never delays the others. Its inbox is bounded in frames and in bytes
(SOCKET_QUEUE_FRAMES, SOCKET_QUEUE_BYTES). Pushes of notifications can be dropped safely because
the table has them: when a push would overflow the inbox, the queued pushes are dropped and one
``REPAIR`` marker takes their place, and the socket refills what it missed from the database by
id when it gets there. Other events (a host's own events, revalidation, reloads) and the
client's messages are never dropped; a socket whose inbox fills up with those is ``broken`` and
is closed with 4013 so that its client reconnects and recovers.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Any

from . import delivery

logger = logging.getLogger(__name__)

#: Stands in for dropped pushes: "fill the gap from the database".
REPAIR: dict[str, Any] = {"type": "vendor_notifications.repair"}
#: Stands in for a queue of events that cannot be dropped: "close, the client must recover".
BROKEN: dict[str, Any] = {"type": "vendor_notifications.broken"}


def repairable_size(event: dict[str, Any]) -> int | None:
    """The frame size of a push the database can replay, or None for any other event."""
    if event.get("type") == delivery.PUSH_EVENT and "id" in event:
        return len(event["text"])
    if event.get("type") == delivery.BROADCAST_EVENT:
        return len(event["template"])
    return None


def is_client_message(item: dict[str, Any]) -> bool:
    return str(item.get("type", "")).startswith("websocket.")


class Inbox:
    """FIFO of channel-layer events and client messages for one socket."""

    def __init__(self, max_frames: int, max_bytes: int) -> None:
        self.max_frames = max_frames
        self.max_bytes = max_bytes
        #: (item, its size when a repairable push, else None)
        self.items: deque[tuple[dict[str, Any], int | None]] = deque()
        self.push_frames = 0
        self.push_bytes = 0
        self.repair_queued = False
        self.broken = False
        #: How many times pushes were dropped for a repair (for tests and logs).
        self.overflows = 0
        self.waiter: asyncio.Future[None] | None = None
        #: The socket's event loop, looked up once: asyncio.get_running_loop() is a getpid()
        #: system call each time, which showed as 14 % of a broadcast's server time on daphne.
        self.loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self.items)

    def put_event(self, event: dict[str, Any]) -> None:
        """An event the hub hands over; never blocks."""
        if self.broken:
            return
        size = repairable_size(event)
        if size is None:
            if len(self.items) >= 2 * self.max_frames:
                self.break_down()
                return
        elif self.push_frames + 1 > self.max_frames or self.push_bytes + size > self.max_bytes:
            self.overflow()
            return
        else:
            self.push_frames += 1
            self.push_bytes += size
        self.items.append((event, size))
        self.wake()

    def put_client(self, message: dict[str, Any]) -> None:
        """A message from the ASGI server (the client)."""
        if message.get("type") == "websocket.disconnect":
            # No event queued for the socket matters once the client is gone; what the client
            # sent before it left is still handled.
            self.items = deque(item for item in self.items if is_client_message(item[0]))
            self.push_frames = self.push_bytes = 0
            self.repair_queued = False
        self.items.append((message, None))
        self.wake()

    def overflow(self) -> None:
        """Drop every queued push for one REPAIR marker (the database has them all)."""
        self.overflows += 1
        logger.info(
            "A notification socket fell %d pushes (%d bytes) behind and dropped its queued "
            "pushes; it refills them from the database.",
            self.push_frames,
            self.push_bytes,
        )
        self.items = deque(item for item in self.items if item[1] is None)
        self.push_frames = self.push_bytes = 0
        if not self.repair_queued:
            self.repair_queued = True
            self.items.append((REPAIR, None))
        self.wake()

    def request_repair(self) -> None:
        """Queue one REPAIR (unless one is queued already): catch up from the database."""
        if not self.repair_queued and not self.broken:
            self.repair_queued = True
            self.items.append((REPAIR, None))
            self.wake()

    def break_down(self) -> None:
        self.broken = True
        self.items.clear()
        self.push_frames = self.push_bytes = 0
        self.items.append((BROKEN, None))
        self.wake()

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def get(self) -> dict[str, Any]:
        while not self.items:
            if self.loop is None:
                self.loop = asyncio.get_running_loop()
            self.waiter = self.loop.create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        item, size = self.items.popleft()
        if size is not None:
            self.push_frames -= 1
            self.push_bytes -= size
        elif item is REPAIR:
            self.repair_queued = False
        return item
