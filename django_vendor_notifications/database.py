"""The socket's way into the database: one thread hop, bounded in time, outages named.

Every database call of a socket goes through ``in_thread()``: Channels'
``database_sync_to_async`` (the worker thread, stale connections closed first), plus two
things a production database needs:

- **A refusal is an outage, not a bug.** When PostgreSQL restarts or refuses connections,
  Django raises ``OperationalError`` or ``InterfaceError``. ``in_thread()`` turns those into
  ``DatabaseUnavailable``: the socket answers the request with the error ``unavailable`` (a
  warning in the log, no traceback), a connect is closed with 4013, and the socket stays open
  and works again as soon as the database does (``CONN_HEALTH_CHECKS`` replaces the stale
  connection).
- **Silence ends.** A database that hangs (packets dropped, a lock held) would leave every
  socket of the process waiting, because Channels runs all of a process's database work in
  one thread. After ``DATABASE_TIMEOUT`` seconds the socket stops waiting and answers
  ``unavailable`` too. Calls queued behind the hung one are dropped unrun; the one that hangs
  finishes when the database answers, so a change reported as ``unavailable`` after a time-out
  may still be applied. Every action is idempotent: the client retries it.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from .conf import app_settings

P = ParamSpec("P")
R = TypeVar("R")


class DatabaseUnavailable(Exception):
    """The database refused, failed or did not answer within DATABASE_TIMEOUT."""


def in_thread(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``function`` run in the database thread, raising DatabaseUnavailable on an outage."""
    hop: Any = database_sync_to_async(function)

    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        timeout = app_settings.DATABASE_TIMEOUT
        try:
            if timeout is None:
                return await hop(*args, **kwargs)
            return await asyncio.wait_for(hop(*args, **kwargs), timeout)
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
        except asyncio.TimeoutError:
            raise DatabaseUnavailable(f"no answer within {timeout} s") from None

    return call
