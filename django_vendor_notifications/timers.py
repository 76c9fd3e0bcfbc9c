"""A socket's timers: token expiry, periodic revalidation and the debounced catch-up.

None of them acts on the socket directly: each puts an item into the socket's inbox, so it is
handled in order with the client's messages and the hub's events, by the socket's own loop.
"""

from __future__ import annotations

import asyncio
import datetime
import math
import time
from typing import Any

from . import delivery
from .conf import app_settings
from .inbox import Inbox

#: Seconds a socket waits, after the last sign that pushes may have been lost (a late push, a
#: re-joined group), before it catches up from the database: one read after a burst, not one
#: per late push.
CATCH_UP_AFTER = 1.0
#: The event the token timer puts into the inbox: the socket closes with 4001.
TOKEN_EXPIRED_EVENT = "vendor_notifications.token_expired"
#: Catch-ups fall on a grid this fine, so that sockets suspecting the same gap (a late event
#: reaches all of a group's members at once) catch up in the same loop turn and share a query.
CATCH_UP_GRID = 0.01
#: The event the wake timer puts into the inbox (SNOOZE): the socket wakes what is due.
WAKE_EVENT = "vendor_notifications.wake"
#: Seconds after a snoozed_until the wake timer fires, so it never fires a hair too early.
WAKE_SLACK = 0.01


class SocketTimers:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox
        self.handles: dict[str, asyncio.TimerHandle] = {}
        self.catch_up_due = 0.0
        #: When the wake timer fires (a time.time() value), or None when none is set.
        self.wake_due: float | None = None

    def expire_token_at(self, expires_at: float | None) -> None:
        """Close with 4001 once the token has expired (after TOKEN_EXPIRY_GRACE); a new
        expiry (a refreshed token) replaces the old one, None removes it."""
        self.cancel("token")
        if expires_at is None:
            return
        left = expires_at + app_settings.TOKEN_EXPIRY_GRACE - time.time()
        self.handles["token"] = asyncio.get_running_loop().call_later(
            max(left, 0), self.inbox.put_event, {"type": TOKEN_EXPIRED_EVENT}
        )

    def revalidate_periodically(self) -> None:
        """Re-check access every REVALIDATE_INTERVAL (a custom policy may change unseen)."""
        interval = app_settings.REVALIDATE_INTERVAL
        if interval:
            self.handles["revalidate"] = asyncio.get_running_loop().call_later(
                interval, self.revalidate_now
            )

    def revalidate_now(self) -> None:
        self.inbox.put_event({"type": delivery.REVALIDATE_EVENT})
        self.revalidate_periodically()

    def catch_up_soon(self) -> None:
        """Catch up from the database once CATCH_UP_AFTER has passed without another sign."""
        loop = asyncio.get_running_loop()
        grid = CATCH_UP_GRID
        self.catch_up_due = math.ceil((loop.time() + CATCH_UP_AFTER) / grid) * grid
        if "catch_up" not in self.handles:
            self.handles["catch_up"] = loop.call_at(self.catch_up_due, self.catch_up_when_due)

    def catch_up_when_due(self) -> None:
        loop = asyncio.get_running_loop()
        del self.handles["catch_up"]
        # Another sign came meanwhile: wait on (a timer may fire a hair early, hence the slack).
        if loop.time() + CATCH_UP_GRID / 10 < self.catch_up_due:
            self.handles["catch_up"] = loop.call_at(self.catch_up_due, self.catch_up_when_due)
        else:
            self.inbox.request_repair()

    def wake_at(self, when: datetime.datetime | float | None) -> None:
        """Put a WAKE_EVENT into the inbox at ``when`` (SNOOZE), unless a wake is due earlier
        already: the earliest snoozed_until a socket has heard of is the one that matters."""
        if when is None:
            return
        due = when.timestamp() if isinstance(when, datetime.datetime) else float(when)
        if self.wake_due is not None and self.wake_due <= due and "wake" in self.handles:
            return
        self.cancel("wake")
        self.wake_due = due
        self.handles["wake"] = asyncio.get_running_loop().call_later(
            max(due - time.time(), 0) + WAKE_SLACK, self.wake_now
        )

    def wake_now(self) -> None:
        self.handles.pop("wake", None)
        self.wake_due = None
        self.inbox.put_event({"type": WAKE_EVENT})

    def put_later(self, event: dict[str, Any]) -> None:
        """Put ``event`` into the inbox again after CATCH_UP_AFTER (one of a kind at a time)."""
        name = f"later:{event.get('type')}"
        if name not in self.handles:
            self.handles[name] = asyncio.get_running_loop().call_later(
                CATCH_UP_AFTER, self.put_now, name, event
            )

    def put_now(self, name: str, event: dict[str, Any]) -> None:
        self.handles.pop(name, None)
        self.inbox.put_event(event)

    def cancel(self, name: str) -> None:
        if (handle := self.handles.pop(name, None)) is not None:
            handle.cancel()

    def cancel_all(self) -> None:
        for handle in self.handles.values():
            handle.cancel()
        self.handles.clear()
