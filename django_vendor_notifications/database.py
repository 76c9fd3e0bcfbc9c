"""The socket's way into the database: one thread hop, hangs bounded, outages named.

Every database call of a socket goes through ``in_thread()``: Channels'
``database_sync_to_async`` (the worker thread, stale connections closed first), plus two
things a production database needs:

- **A refusal is an outage, not a bug.** When PostgreSQL restarts or refuses connections,
  Django raises ``OperationalError`` or ``InterfaceError``. ``in_thread()`` turns those into
  ``DatabaseUnavailable``: the socket answers the request with the error ``unavailable`` (a
  warning in the log, no traceback), a connect is closed with 4013, and the socket stays open
  and works again as soon as the database does (``CONN_HEALTH_CHECKS`` replaces the stale
  connection).
- **A hang ends.** Channels runs all of a process's database work in one thread, so a
  database that stops answering (packets dropped, a lock held) would leave every socket of
  the process waiting. When the call the thread is running has taken longer than
  ``DATABASE_TIMEOUT``, every socket waiting for the thread stops waiting and answers
  ``unavailable`` too; calls not started yet are dropped unrun. The hung call finishes when
  the database answers, so a change answered ``unavailable`` may still be applied (every
  action is idempotent: the client retries it). A long queue of quick calls (a reconnect
  storm) is not a hang: only the running call's own time counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from channels.db import database_sync_to_async
from django.db import InterfaceError, OperationalError

from .conf import app_settings

P = ParamSpec("P")
R = TypeVar("R")

#: How often a waiting socket looks at the running call, at most.
CHECK_EVERY = 0.25


class DatabaseUnavailable(Exception):
    """The database refused, failed, or has not answered the running call in time."""


class _Thread:
    """What the database thread is doing: since when it runs its current call (None: idle).
    Channels runs the calls of a process one at a time, in one thread."""

    running_since: float | None = None


_thread = _Thread()


def in_thread(function: Callable[P, R]) -> Callable[P, Coroutine[Any, Any, R]]:
    """``function`` run in the database thread, raising DatabaseUnavailable on an outage."""

    def timed(*args: Any, **kwargs: Any) -> R:
        _thread.running_since = time.monotonic()
        try:
            return function(*args, **kwargs)
        finally:
            _thread.running_since = None

    hop: Any = database_sync_to_async(timed)

    @functools.wraps(function)
    async def call(*args: P.args, **kwargs: P.kwargs) -> R:
        task = asyncio.ensure_future(hop(*args, **kwargs))
        try:
            while True:
                timeout = app_settings.DATABASE_TIMEOUT
                done, _ = await asyncio.wait({task}, timeout=timeout and min(timeout, CHECK_EVERY))
                if done:
                    return task.result()
                since = _thread.running_since
                if timeout is not None and since is not None and time.monotonic() - since > timeout:
                    raise DatabaseUnavailable(f"no answer within {timeout} s")
        except (OperationalError, InterfaceError) as exc:
            raise DatabaseUnavailable(str(exc).strip() or type(exc).__name__) from exc
        finally:
            if not task.done():
                # Cancelled before the thread takes it up, the call is dropped unrun; await
                # the cancellation so that it has reached the thread's queue by the time the
                # caller goes on.
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    return call
