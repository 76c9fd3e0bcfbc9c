"""Identical reads that sockets of one process make together share one database call.

When a process's hub loses a probe or sees a late event, every local socket of the affected
groups catches up from the database by id, and most of them from the same id: hundreds of
sockets of one vendor would run the same query at the same moment. ``SharedReads`` lets them
share one.

A read joins a batch only while that batch has not started: its query then runs after every
caller asked, so it sees everything committed before any of them asked. Nothing a caller
expects can be missing from an answer it shares.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

Result = TypeVar("Result")


class SharedReads(Generic[Result]):
    """Wraps an async read: callers with the same arguments in the same loop turn share a call."""

    def __init__(self, read: Callable[..., Coroutine[Any, Any, Result]]) -> None:
        self.read = read
        # Per event loop (a future belongs to one): the batches not started yet, by arguments.
        self.pending: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future[Result]]
        ] = weakref.WeakKeyDictionary()
        #: How many calls of ``read`` were made (for tests and benchmarks).
        self.calls = 0

    async def __call__(self, *args: Hashable) -> Result:
        loop = asyncio.get_running_loop()
        pending = self.pending.setdefault(loop, {})
        batch = pending.get(args)
        if batch is None:
            batch = pending[args] = loop.create_future()
            # Started on the next loop turn: callers woken in this one join the batch.
            loop.call_soon(self.start, loop, args, batch)
        # shield: one caller cancelled (its socket closed) must not cancel the others' read.
        return await asyncio.shield(batch)

    def start(
        self, loop: asyncio.AbstractEventLoop, args: tuple[Any, ...], batch: asyncio.Future[Result]
    ) -> None:
        self.pending[loop].pop(args, None)
        self.calls += 1
        task: asyncio.Task[Result] = loop.create_task(self.read(*args))
        task.add_done_callback(lambda done: settle(batch, done))


def settle(batch: asyncio.Future[Result], done: asyncio.Task[Result]) -> None:
    if batch.done():
        return
    if done.cancelled():
        batch.cancel()
    elif (error := done.exception()) is not None:
        batch.set_exception(error)
        # Retrieved here: if every caller has gone, asyncio must not log it as forgotten.
        batch.exception()
    else:
        batch.set_result(done.result())
