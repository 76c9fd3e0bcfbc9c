"""Deploys without lost sockets: on SIGTERM a server process closes its sockets in batches.

An orchestrator stops a server process with SIGTERM. On its own, daphne then drops every socket
at once (clients see 1006) and uvicorn closes them all with 1012 in the same instant: either
way every client reconnects to the next process together. With ``DRAIN_SECONDS`` set (5 by
default) the process's first socket puts a SIGTERM handler in front of the server's own. On
SIGTERM the process refuses new sockets with 4012 and closes its open ones with 4012 in even
batches across ``DRAIN_SECONDS``, then hands the signal to the server's handler, which stops
as it always did. A second SIGTERM hands it over at once.

4012 says "this process is going away, reconnect now": ``client.js`` reconnects after a short
random pause instead of its back-off, and a client that reconnects with ``?since=`` loses
nothing. (Daphne lets an application close only with 1000 or 3000-4999, hence 4012, not 1012.)

A socket is told through its inbox, so the close comes after what it is handling: a request
being handled is answered first; one still queued behind the close is not handled at all (it
changed nothing, and ``client.js`` rejects it with ``disconnected``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import threading
import weakref
from types import FrameType
from typing import Any, Protocol

from .conf import app_settings

logger = logging.getLogger(__name__)

#: The inbox item that closes a socket with 4012.
DRAIN_EVENT = "vendor_notifications.drain"
#: The sockets are closed in this many even batches across DRAIN_SECONDS.
BATCHES = 20
#: Most seconds the server's own handler waits, after the last batch, for the closes to go out.
SETTLE = 1.0


class Drainable(Protocol):
    socket_id: str

    def drain(self) -> None:
        """Close with 4012 once what the socket is handling is done; must not block."""


class Drain:
    """The open sockets of one event loop (one server process), and their closing."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.sockets: dict[str, Drainable] = {}
        #: Sockets told to close that have not gone yet.
        self.told: set[str] = set()
        self.draining = False
        self.task: asyncio.Task[None] | None = None

    def add(self, socket: Drainable) -> None:
        if self.draining:
            self.tell(socket)
            return
        self.sockets[socket.socket_id] = socket
        watch_sigterm(self)

    def discard(self, socket: Drainable) -> None:
        self.sockets.pop(socket.socket_id, None)
        self.told.discard(socket.socket_id)

    def tell(self, socket: Drainable) -> None:
        self.told.add(socket.socket_id)
        socket.drain()

    async def run(self, seconds: float) -> None:
        """Close every socket with 4012, in BATCHES even batches across ``seconds`` (at once
        for 0), then wait up to SETTLE for them to go. New sockets are refused meanwhile."""
        self.draining = True
        batches = BATCHES if seconds > 0 else 1
        logger.info(
            "Draining %d notification sockets over %.1f s before the server stops.",
            len(self.sockets),
            seconds,
        )
        for batch in range(batches):
            if not self.sockets:
                break
            if batch:
                await asyncio.sleep(seconds / batches)
            share = math.ceil(len(self.sockets) / (batches - batch))
            for socket_id in list(self.sockets)[:share]:
                self.tell(self.sockets.pop(socket_id))
        deadline = self.loop.time() + SETTLE
        while self.told and self.loop.time() < deadline:
            await asyncio.sleep(0.02)

    def start(self, seconds: float, then: Any = None) -> None:
        """Run the drain in the background, and ``then()`` once it is over."""
        if self.task is None:
            self.task = self.loop.create_task(self.run(seconds))
        if then is not None:
            self.task.add_done_callback(lambda task: then())


_drains: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Drain] = weakref.WeakKeyDictionary()


def drain_for_loop() -> Drain:
    """The running event loop's Drain."""
    loop = asyncio.get_running_loop()
    drain = _drains.get(loop)
    if drain is None:
        drain = _drains[loop] = Drain(loop)
    return drain


# --- SIGTERM -------------------------------------------------------------------------------


class _Watch:
    """The process's SIGTERM handler: which loop's sockets it drains, whose handler it wraps."""

    drain: Drain | None = None
    previous: Any = None
    installed = False
    #: Bumped by each install: a drain that ends after its handler was handed over (a second
    #: SIGTERM) or replaced must not hand over again.
    generation = 0


_watch = _Watch()


def watch_sigterm(drain: Drain) -> None:
    """Put the drain's handler in front of the server's SIGTERM handler (once per process;
    only the main thread may, which is where daphne and uvicorn run their loop)."""
    if app_settings.DRAIN_SECONDS is None:
        return
    if _watch.installed and signal.getsignal(signal.SIGTERM) is _on_sigterm:
        if _watch.drain is None or _watch.drain.loop.is_closed():
            _watch.drain = drain
        return
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _on_sigterm)
    except (ValueError, OSError):  # not the main interpreter, or no such signal here
        return
    _watch.drain, _watch.previous, _watch.installed = drain, previous, True
    _watch.generation += 1


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    drain, seconds = _watch.drain, app_settings.DRAIN_SECONDS
    if drain is None or seconds is None or drain.draining or drain.loop.is_closed():
        # Nothing to drain, or a second SIGTERM: the server's own handler, now.
        _hand_over(signum, frame)
        return
    generation = _watch.generation
    drain.loop.call_soon_threadsafe(
        drain.start, seconds, lambda: _hand_over(signum, frame, generation)
    )


def _hand_over(signum: int, frame: FrameType | None, generation: int | None = None) -> None:
    """Give the signal to the handler that was there before ours, and put it back."""
    if generation is not None and (not _watch.installed or generation != _watch.generation):
        return
    previous = _watch.previous
    _watch.installed, _watch.drain, _watch.previous = False, None, None
    with contextlib.suppress(ValueError, OSError):
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)
    elif previous in (signal.SIG_DFL, None):
        signal.raise_signal(signum)
