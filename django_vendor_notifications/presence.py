"""When each user last had a socket open: what tells the email digest who is away (DIGESTS).

Presence comes from the sockets themselves, in the database, so it holds across server
processes without a shared counter that a killed process would leave wrong. A socket writes
its user's ``last_seen_at``:

- on connect, inside the connect's one thread hop (``services.start_session``): one query;
- on every periodic revalidation (REVALIDATE_INTERVAL), in the revalidation's own hop;
- on disconnect, in a task of its own that never raises to the client.

Never per message. So while a socket is open its user's ``last_seen_at`` is at most
REVALIDATE_INTERVAL old, and a user whose ``last_seen_at`` is older than DIGEST_AFTER (which
a system check keeps longer than REVALIDATE_INTERVAL) has no open socket anywhere: they are
away, and have been since ``last_seen_at``.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from .database import in_thread
from .models import UserPresence

logger = logging.getLogger(__name__)


def seen(user_id: Any, at: datetime.datetime | None = None) -> None:
    """Record that ``user_id`` has a socket open now (or was last here ``at``).

    One UPDATE once the user has a row; only a user's first connect ever inserts it. Not an
    upsert (``bulk_create(update_conflicts=True)``): that wraps its one statement in a
    transaction of its own, BEGIN and COMMIT round trips on every connect."""
    at = at or timezone.now()
    if UserPresence.objects.filter(user_id=user_id).update(last_seen_at=at):
        return
    try:
        with transaction.atomic():
            UserPresence.objects.create(user_id=user_id, last_seen_at=at)
    except IntegrityError:
        # Another socket of the user inserted it first.
        UserPresence.objects.filter(user_id=user_id).update(last_seen_at=at)


def away_since(cutoff: datetime.datetime) -> Any:
    """The presence rows of users with no open socket since before ``cutoff``."""
    return UserPresence.objects.filter(last_seen_at__lt=cutoff)


def set_digest_opt_out(user_id: Any, opt_out: bool = True) -> None:
    """A user's choice to get no email digests at all (True), or to get them again (False)."""
    updated = UserPresence.objects.filter(user_id=user_id).update(digest_opt_out=opt_out)
    if not updated and opt_out:
        # Never connected: the choice is kept for when they do. Opting back in needs no row:
        # a user who never connected gets no digest anyway.
        UserPresence.objects.get_or_create(
            user_id=user_id, defaults={"last_seen_at": timezone.now(), "digest_opt_out": True}
        )


_seen_in_thread = in_thread(seen)
#: Disconnect writes under way: held so the loop does not lose them before they finish.
_pending: set[asyncio.Task[None]] = set()


def left(user_id: Any) -> None:
    """A socket of ``user_id`` closed: record the time, in the background.

    The socket is gone, so nothing may reach its client; a database outage only costs a
    warning. A user away since a moment before this write is away nonetheless: a failed
    write leaves the time of the last refresh, which is at most REVALIDATE_INTERVAL older."""
    task = asyncio.get_running_loop().create_task(_record_leaving(user_id, timezone.now()))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def _record_leaving(user_id: Any, at: datetime.datetime) -> None:
    try:
        await _seen_in_thread(user_id, at)
    except Exception as exc:
        logger.warning("Could not record when user %s's socket closed: %r", user_id, exc)


async def settled() -> None:
    """Wait for the disconnect writes under way (tests, a server's shutdown)."""
    while _pending:
        await asyncio.gather(*_pending, return_exceptions=True)
