"""What one socket has been sent of its vendor's notifications, so that it gets each one once.

A plain object, tested without a socket. The consumer asks it what to do with each push:
send it, drop it (sent already), or fill a gap first (a push before it never arrived: a full
channel, a layer outage, an overflowing inbox). The database is the source of truth; a ``Feed``
only remembers enough to keep the live path exactly-once by id.
"""

from __future__ import annotations

import enum
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from typing import Any

from .delivery import ID_PLACEHOLDER, VENDOR_PLACEHOLDER

#: How many recently sent notification ids a socket remembers to drop duplicates.
RECENT_IDS = 1024


class Verdict(enum.Enum):
    SEND = "send"
    DROP = "drop"
    FILL_GAP = "fill_gap"


class RecentIds:
    """At least the ``size`` highest ids added, sorted, as 8-byte machine integers.

    A set of Python ints held about 64 bytes an id: with 1,024 ids for each busy socket, the
    sets were most of what a process under a steady publisher grew by (the soak measured it).
    Ids mostly arrive in increasing order, so adding is an append, and a lookup is a bisection.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        # Trimmed in batches, so that most additions move no memory.
        self.trim_at = size + max(1, size // 4)
        self.ids = array("q")

    def __contains__(self, notification_id: int) -> bool:
        ids = self.ids
        if not ids or notification_id > ids[-1]:
            return False  # a new push: the usual case
        index = bisect_left(ids, notification_id)
        return index < len(ids) and ids[index] == notification_id

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, notification_id: int) -> None:
        ids = self.ids
        if not ids or notification_id > ids[-1]:
            ids.append(notification_id)
        else:
            index = bisect_left(ids, notification_id)
            if index < len(ids) and ids[index] == notification_id:
                return
            ids.insert(index, notification_id)
        if len(ids) > self.trim_at:
            del ids[: len(ids) - self.size]


class Feed:
    """The newest notification id a socket accounts for, and the ids it sent lately."""

    def __init__(self, last_id: int = 0, size: int = RECENT_IDS) -> None:
        # Everything up to last_id is accounted for: in the snapshot the client got, or sent
        # since, or in the history the client pages through.
        self.last_id = last_id
        self.recent = RecentIds(size)

    def __contains__(self, notification_id: int) -> bool:
        return notification_id in self.recent

    def remember(self, notification_ids: Iterable[int]) -> None:
        for notification_id in notification_ids:
            self.recent.add(notification_id)
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
