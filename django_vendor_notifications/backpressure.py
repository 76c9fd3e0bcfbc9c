"""Backpressure from an ASGI server whose ``send`` never waits (daphne).

uvicorn's ``send`` waits while a client's TCP buffer is full. A socket whose client stops
reading then stops taking events from its inbox, the inbox overflows into one repair from the
database, and the process holds at most SOCKET_QUEUE_BYTES for that socket.

daphne's ``send`` returns at once, and Twisted buffers every frame for a client that stops
reading: 19 MB for one client was seen, and the memory stayed with the process after the
socket closed. Twisted has flow control of its own: a transport tells a registered streaming
producer when its write buffer passes ``bufferSize`` (64 KiB; ``pauseProducing``) and when it
has drained (``resumeProducing``). The socket registers a ``TransportGate`` as that producer and
waits while it is paused, which makes daphne behave like uvicorn: the frames wait in the
bounded inbox, never in an unbounded buffer.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

Send = Callable[[dict[str, Any]], Awaitable[None]]


class TransportGate:
    """A Twisted push producer (``IPushProducer``) that a socket's sends wait on.

    It takes the place of the producer the transport had, if any, and passes every call on to
    it: daphne's upgrade leaves the ``HTTPChannel`` of the handshake registered there.
    """

    def __init__(self, previous: Any | None = None, *, paused: bool = False) -> None:
        self.previous = previous
        self.paused = paused
        self.waiter: asyncio.Future[None] | None = None

    # --- called by the Twisted transport, on the event loop's thread ----------------------

    def pauseProducing(self) -> None:  # noqa: N802 (Twisted's interface)
        self.paused = True
        if self.previous is not None:
            self.previous.pauseProducing()

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused = False
        self.wake()
        if self.previous is not None:
            self.previous.resumeProducing()

    def stopProducing(self) -> None:  # noqa: N802
        # The connection is gone: nothing will drain, and nothing should wait any more.
        self.paused = False
        self.wake()
        if self.previous is not None:
            self.previous.stopProducing()

    # --- called by the socket ------------------------------------------------------------

    def wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def writable(self) -> None:
        """Return once the transport takes more data (or the connection is gone)."""
        while self.paused:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None


def twisted_protocol(send: Send) -> Any | None:
    """The Twisted protocol behind daphne's ``send``, or None for any other server.

    daphne hands each application ``functools.partial(server.handle_reply, protocol)``.
    """
    if not isinstance(send, functools.partial) or not send.args:
        return None
    protocol = send.args[0]
    return protocol if hasattr(protocol, "transport") else None


def install_gate(transport: Any) -> TransportGate | None:
    """Register a TransportGate on a Twisted transport (a TCP connection's ``FileDescriptor``),
    in place of its producer; None where the transport is not of that kind."""
    if not hasattr(transport, "producer") or not callable(
        getattr(transport, "unregisterProducer", None)
    ):
        return None
    previous = transport.producer
    gate = TransportGate(previous, paused=bool(getattr(transport, "producerPaused", False)))
    try:
        if previous is not None:
            transport.unregisterProducer()
        transport.registerProducer(gate, True)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the server as it was
        logger.debug("No backpressure for a daphne socket: %r", exc)
        return None
    return gate


def gated(send: Send) -> Send:
    """``send`` that waits, before a frame, while the server's write buffer is full.

    Returned unchanged for servers that wait by themselves (uvicorn) and for transports a gate
    cannot be put on (daphne serving TLS itself): the server then buffers as before.
    """
    protocol = twisted_protocol(send)
    gate = None if protocol is None else install_gate(getattr(protocol, "transport", None))
    if gate is None:
        return send

    async def send_when_writable(message: dict[str, Any]) -> None:
        # Only frames wait: a close must go out even to a client that stopped reading.
        if gate.paused and message.get("type") == "websocket.send":
            await gate.writable()
        await send(message)

    return send_when_writable
