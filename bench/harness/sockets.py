"""The load client's sockets (the ``websockets`` package): pools, fan-out rounds, connects."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from bench.harness.env import CONNECT_CONCURRENCY, log

#: Publishes one frame's text to every socket of a pool (the app, bare Channels or the floor).
Publish = Callable[[str], Awaitable[Any]]


async def open_all(open_one: Callable[[], Awaitable[None]], count: int) -> None:
    """Run ``open_one`` ``count`` times at once (each bounded by its own semaphore), then
    freeze what they made: thousands of open sockets are thousands of long-lived objects, and
    frozen, the client's collector no longer walks them again and again."""
    started = time.perf_counter()
    await asyncio.gather(*(open_one() for _ in range(count)))
    gc.collect()
    gc.freeze()
    if count >= 100:
        log(f"  opened {count} sockets in {time.perf_counter() - started:.1f}s")


class Sockets:
    """Open client sockets whose frames go to one replaceable callback."""

    def __init__(self) -> None:
        self.sockets: list[Any] = []
        self.readers: list[asyncio.Task[None]] = []
        self.on_frame: Callable[[str, float], None] = lambda text, at: None

    async def open(self, url: str, count: int) -> None:
        """Open ``count`` sockets to ``url``, each once its first frame has arrived."""
        from websockets.asyncio.client import connect

        limit = asyncio.Semaphore(CONNECT_CONCURRENCY)

        async def one() -> None:
            async with limit:
                ws = await connect(
                    url,
                    compression=None,
                    proxy=None,
                    open_timeout=60,
                    ping_interval=None,
                    max_queue=None,
                )
                await asyncio.wait_for(ws.recv(), 30)  # the first frame
            self.sockets.append(ws)
            self.readers.append(asyncio.create_task(self.read(ws)))

        await open_all(one, count)

    async def read(self, ws: Any) -> None:
        with contextlib.suppress(Exception):
            async for text in ws:
                self.on_frame(text, time.perf_counter())

    async def close(self) -> None:
        sockets, self.sockets = self.sockets, []
        readers, self.readers = self.readers, []
        limit = asyncio.Semaphore(200)

        async def one(ws: Any) -> None:
            async with limit:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(ws.close(), 10)

        started = time.perf_counter()
        await asyncio.gather(*(one(ws) for ws in sockets))
        if len(sockets) >= 100:
            log(f"  closed {len(sockets)} sockets in {time.perf_counter() - started:.1f}s")
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        gc.unfreeze()

    def __len__(self) -> int:
        return len(self.sockets)


async def fanout_rounds(
    sockets: Sockets, publish: Publish, template: str, rounds: int
) -> list[float]:
    """Seconds from publish to the last socket's frame, one per round.

    The client's garbage collector is off during the rounds (one collection before them): a
    collection of thousands of sockets' objects would be measured as the server's latency.
    """
    latencies: list[float] = []
    gc.collect()
    gc.disable()
    try:
        for number in range(rounds):
            latencies.append(await fanout_round(sockets, publish, template, number))
            await asyncio.sleep(0.02)
    finally:
        gc.enable()
        sockets.on_frame = lambda text, at: None
    if rounds and len(sockets) >= 100:
        log(f"  {rounds} rounds to {len(sockets)} sockets: last {latencies[-1] * 1000:.0f} ms")
    return latencies


async def fanout_round(sockets: Sockets, publish: Publish, template: str, number: int) -> float:
    """One publish of ``template`` with a fresh marker; seconds until every socket has it."""
    marker = f"bench-{uuid.uuid4().hex[:8]}-{number}"
    expected = len(sockets)
    received = 0
    last = 0.0
    done = asyncio.Event()

    def on_frame(text: str, at: float) -> None:
        nonlocal received, last
        if marker in text:
            received += 1
            if received == expected:
                last = at
                done.set()

    sockets.on_frame = on_frame
    started = time.perf_counter()
    await publish(template.replace("@@ROUND@@", marker))
    try:
        await asyncio.wait_for(done.wait(), 30)
    except asyncio.TimeoutError:
        raise RuntimeError(f"only {received} of {expected} sockets got round {number}") from None
    return last - started


async def connect_first_frame(url: str) -> float:
    """Seconds from connect() to the first frame, on a new socket that is closed afterwards."""
    from websockets.asyncio.client import connect

    started = time.perf_counter()
    ws = await connect(url, compression=None, proxy=None, open_timeout=30, ping_interval=None)
    await asyncio.wait_for(ws.recv(), 30)
    elapsed = time.perf_counter() - started
    await ws.close()
    return elapsed


async def interleaved_connects(urls: dict[str, str], samples: int) -> dict[str, list[float]]:
    """Sequential connect → first frame, alternating between the urls so drift hits all."""
    timings: dict[str, list[float]] = {name: [] for name in urls}
    for _ in range(3):  # warm-up: imports, pools, the database's caches
        for url in urls.values():
            await connect_first_frame(url)
    for _ in range(samples):
        for name, url in urls.items():
            timings[name].append(await connect_first_frame(url))
    return timings
