"""What one socket has been sent of its vendor's notifications, so that it gets each one once.

A plain object, tested without a socket. The consumer asks it what to do with each push:
send it, drop it (sent already), or fill a gap first (a push before it never arrived: a full
channel, a layer outage, an overflowing inbox). The database is the source of truth; a ``Feed``
only remembers enough to keep the live path exactly-once by id.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterable
from typing import Any

from .delivery import ID_PLACEHOLDER, VENDOR_PLACEHOLDER

#: How many recently sent notification ids a socket remembers to drop duplicates.
RECENT_IDS = 1024


class Verdict(enum.Enum):
    SEND = "send"
    DROP = "drop"
    FILL_GAP = "fill_gap"


class Feed:
    """The newest notification id a socket accounts for, and the ids it sent lately."""

    def __init__(self, last_id: int = 0, size: int = RECENT_IDS) -> None:
        # Everything up to last_id is accounted for: in the snapshot the client got, or sent
        # since, or in the history the client pages through.
        self.last_id = last_id
        self.size = size
        self.recent: set[int] = set()
        self.order: deque[int] = deque()

    def __contains__(self, notification_id: int) -> bool:
        return notification_id in self.recent

    def remember(self, notification_ids: Iterable[int]) -> None:
        for notification_id in notification_ids:
            if notification_id not in self.recent:
                self.recent.add(notification_id)
                self.order.append(notification_id)
                if len(self.order) > self.size:
                    self.recent.discard(self.order.popleft())
            if notification_id > self.last_id:
                self.last_id = notification_id

    def judge_push(self, event: dict[str, Any]) -> Verdict:
        """What to do with a ``notification.push`` event that carries an id."""
        if event["previous_id"] > self.last_id:
            # The vendor's previous notification never reached this socket.
            return Verdict.FILL_GAP
        if event["id"] in self.recent:
            return Verdict.DROP
        self.remember((event["id"],))
        return Verdict.SEND

    def broadcast_text(
        self, event: dict[str, Any], vendor_json: str, vendor_key: str
    ) -> str | None:
        """This vendor's frame of a ``notification.broadcast`` event, or None (not addressed
        to it, or sent already)."""
        notification_id = event["ids"].get(vendor_key)
        if notification_id is None or notification_id in self.recent:
            return None
        self.remember((notification_id,))
        text: str = event["template"]
        return text.replace(ID_PLACEHOLDER, str(notification_id), 1).replace(
            VENDOR_PLACEHOLDER, vendor_json, 1
        )

    def unsent(self, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The rows (oldest first) not sent yet; all of them are accounted for afterwards."""
        fresh = [row for row in rows if row["id"] not in self.recent]
        self.remember(row["id"] for row in rows)
        return fresh
