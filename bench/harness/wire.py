"""A minimal WebSocket client for the scenarios that receive tens of thousands of frames a second.

The ``websockets`` client costs about 35 µs of the client's core per frame (a task wake-up, a
queue, a decode); at 20,000 frames/s that is most of the core, and the client, not the
server, would set the limit. This one parses server frames straight from ``data_received``
(a few µs each) and hands the payload bytes to a callback. It answers pings and closes, and
can stop reading (``pause``) to play a client whose TCP window has closed.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import os
import socket
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from bench.harness.env import CONNECT_CONCURRENCY
from bench.harness.sockets import open_all

TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
#: (opcode, fin, payload) of one frame.
Frame = tuple[int, bool, bytes]
OnFrame = Callable[[bytes, float], None]


def parse_frames(buffer: bytes) -> tuple[list[Frame], int]:
    """The complete server frames at the start of ``buffer`` and how many bytes they took."""
    frames: list[Frame] = []
    offset, end = 0, len(buffer)
    while end - offset >= 2:
        first, second = buffer[offset], buffer[offset + 1]
        length, head = second & 0x7F, 2
        if length == 126:
            if end - offset < 4:
                break
            length, head = int.from_bytes(buffer[offset + 2 : offset + 4], "big"), 4
        elif length == 127:
            if end - offset < 10:
                break
            length, head = int.from_bytes(buffer[offset + 2 : offset + 10], "big"), 10
        mask = b""
        if second & 0x80:  # servers do not mask, but a parser should not choke on it
            if end - offset < head + 4:
                break
            mask, head = buffer[offset + head : offset + head + 4], head + 4
        if end - offset < head + length:
            break
        payload = buffer[offset + head : offset + head + length]
        if mask:
            payload = masked(payload, mask)
        frames.append((first & 0x0F, bool(first & 0x80), payload))
        offset += head + length
    return frames, offset


def masked(payload: bytes, mask: bytes) -> bytes:
    return bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


def client_frame(opcode: int, payload: bytes = b"", mask: bytes | None = None) -> bytes:
    """One final client frame; clients must mask (RFC 6455 5.3)."""
    mask = mask if mask is not None else os.urandom(4)
    length = len(payload)
    if length < 126:
        head = bytes((0x80 | opcode, 0x80 | length))
    elif length < 2**16:
        head = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        head = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    return head + mask + masked(payload, mask)


def sent_at(payload: bytes) -> float | None:
    """The publisher's perf_counter() a frame carries as ``@t<seconds>@`` (see ``stamp``)."""
    start = payload.find(b"@t")
    if start < 0:
        return None
    return float(payload[start + 2 : payload.find(b"@", start + 2)])


def stamp(now: float) -> str:
    """The marker ``sent_at`` reads back."""
    return f"@t{now!r}@"


class WireSocket(asyncio.Protocol):
    def __init__(self, request: bytes, pool: WireSockets) -> None:
        self.request = request
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buffer = b""
        self.upgraded = False
        self.fragments: list[bytes] = []
        loop = asyncio.get_running_loop()
        self.first_frame: asyncio.Future[bytes] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        at = time.perf_counter()
        buffer = self.buffer + data if self.buffer else data
        if not self.upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                self.buffer = buffer
                return
            status = buffer[: buffer.find(b"\r\n")]
            if b" 101 " not in status + b" ":
                self.fail(f"handshake refused: {status.decode(errors='replace')}")
                return
            self.upgraded = True
            buffer = buffer[end + 4 :]
        frames, used = parse_frames(buffer)
        self.buffer = buffer[used:]
        for opcode, fin, payload in frames:
            self.frame(opcode, fin, payload, at)

    def frame(self, opcode: int, fin: bool, payload: bytes, at: float) -> None:
        if opcode in (TEXT, BINARY, CONTINUATION):
            if not fin or self.fragments:
                self.fragments.append(payload)
                if not fin:
                    return
                payload, self.fragments = b"".join(self.fragments), []
            if not self.first_frame.done():
                self.first_frame.set_result(payload)
            else:
                self.pool.on_frame(payload, at)
        elif opcode == PING and self.transport is not None:
            self.transport.write(client_frame(PONG, payload))
        elif opcode == CLOSE and self.transport is not None:
            with contextlib.suppress(Exception):
                self.transport.write(client_frame(CLOSE, payload[:2]))
            self.transport.close()

    def fail(self, reason: str) -> None:
        if not self.first_frame.done():
            self.first_frame.set_exception(ConnectionError(reason))
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail("connection closed before the first frame")
        if not self.closed.done():
            self.closed.set_result(None)

    def pause(self) -> None:
        """Stop reading: the kernel's buffers fill and the TCP window closes."""
        assert self.transport is not None
        self.transport.pause_reading()

    def resume(self) -> None:
        assert self.transport is not None
        self.transport.resume_reading()

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            with contextlib.suppress(Exception):
                self.transport.write(client_frame(CLOSE, (1000).to_bytes(2, "big")))
            self.transport.close()


def handshake(url: str) -> tuple[str, int, bytes]:
    """Host, port and the HTTP upgrade request for a ws:// url."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    key = base64.b64encode(os.urandom(16)).decode()
    request = (
        f"GET {target} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    return host, port, request.encode()


class WireSockets:
    """A pool of WireSockets whose frames (after each one's first) go to ``on_frame``."""

    def __init__(self) -> None:
        self.sockets: list[WireSocket] = []
        self.on_frame: OnFrame = lambda payload, at: None

    async def open(self, url: str, count: int, *, receive_buffer: int | None = None) -> None:
        """Open ``count`` sockets, each once its first frame has arrived. ``receive_buffer``
        sets SO_RCVBUF before connecting, which bounds the TCP window the server sees."""
        loop = asyncio.get_running_loop()
        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)
        host, port, _ = handshake(url)

        async def one() -> None:
            async with limit:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                if receive_buffer:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
                sock.setblocking(False)
                try:
                    await loop.sock_connect(sock, (host, port))
                except OSError:
                    sock.close()
                    raise
                request = handshake(url)[2]
                _, protocol = await loop.create_connection(
                    lambda: WireSocket(request, self), sock=sock
                )
                self.sockets.append(protocol)
                await asyncio.wait_for(protocol.first_frame, 30)

        await open_all(one, count)

    async def close(self) -> None:
        sockets, self.sockets = self.sockets, []
        for one in sockets:
            one.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(one.closed for one in sockets)), 10)
        gc.unfreeze()

    def __len__(self) -> int:
        return len(self.sockets)
