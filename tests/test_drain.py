"""Draining a process's sockets on SIGTERM: batches, 4012, and handing the signal on.

The real servers (daphne, uvicorn) are in tests/e2e/test_deploy.py; these run the same code
in-process, with a WebsocketCommunicator and this test process's own SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from django_vendor_notifications import drain
from django_vendor_notifications.drain import Drain, drain_for_loop
from django_vendor_notifications.protocol import CloseCode
from tests.conftest import communicator_for, connect, vendor_settings

pytestmark = pytest.mark.django_db(transaction=True)


class FakeSocket:
    def __init__(self, socket_id: str, told: list[tuple[str, float]]) -> None:
        self.socket_id = socket_id
        self.told = told

    def drain(self) -> None:
        self.told.append((self.socket_id, time.monotonic()))


async def test_sockets_are_closed_in_even_batches_across_the_window() -> None:
    registry = Drain(asyncio.get_running_loop())
    told: list[tuple[str, float]] = []
    for index in range(40):
        registry.sockets[f"s{index}"] = FakeSocket(f"s{index}", told)
    started = time.monotonic()
    await registry.run(0.4)

    assert sorted(socket_id for socket_id, _ in told) == sorted(f"s{i}" for i in range(40))
    times = [at - started for _, at in told]
    # 20 batches of 2, 0.02 s apart: the first at once, the last near the window's end.
    assert sum(1 for at in times if at < 0.01) == 2
    assert 0.3 <= max(times) < 0.6
    assert registry.draining
    # A socket that arrives while draining is told at once.
    registry.add(FakeSocket("late", told))
    assert told[-1][0] == "late"


async def test_a_drain_without_sockets_ends_at_once() -> None:
    registry = Drain(asyncio.get_running_loop())
    started = time.monotonic()
    await registry.run(5)
    assert time.monotonic() - started < 0.1


async def test_open_sockets_get_4012_and_new_ones_are_refused_with_it(
    access_token: str, channel_layer: Any
) -> None:
    sockets = [communicator_for(access_token) for _ in range(3)]
    for socket in sockets:
        assert (await socket.connect())[0]
        assert (await socket.receive_json_from(timeout=5))["action"] == "unread_notifications"
    registry = drain_for_loop()
    assert len(registry.sockets) == 3
    try:
        await registry.run(0)
        for socket in sockets:
            assert await socket.receive_output(timeout=5) == {
                "type": "websocket.close",
                "code": CloseCode.SERVER_RESTARTING,
            }
        # A connect during the drain is accepted (a close before accept is 1006 in a browser)
        # and closed with 4012 before any database work: no snapshot.
        late = communicator_for(access_token)
        assert (await late.connect())[0]
        assert await late.receive_output(timeout=5) == {
            "type": "websocket.close",
            "code": CloseCode.SERVER_RESTARTING,
        }
    finally:
        registry.draining = False
        for socket in sockets:
            await socket.disconnect()
    assert registry.sockets == {} and registry.told == set()


async def test_a_request_already_queued_is_answered_before_the_close(
    access_token: str, channel_layer: Any
) -> None:
    socket, _ = await connect(access_token)
    registry = drain_for_loop()
    try:
        await socket.send_json_to({"action": "get_unread_counts", "request_id": "r1"})
        # Let the socket's reader queue the request before the drain's close.
        while not any(
            item.get("type") == "websocket.receive"
            for item, _ in next(iter(registry.sockets.values())).inbox.items
        ):  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        await registry.run(0)
        reply = await socket.receive_json_from(timeout=5)
        assert reply["action"] == "get_unread_counts" and reply["request_id"] == "r1"
        assert (await socket.receive_output(timeout=5))["code"] == CloseCode.SERVER_RESTARTING
    finally:
        registry.draining = False
        await socket.disconnect()


@pytest.fixture
def sigterm_handler() -> Iterator[list[int]]:
    """A stand-in for the server's own SIGTERM handler, recording the signals it gets; the
    process's real handler is put back afterwards."""
    received: list[int] = []
    original = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, original)
        drain._watch.installed, drain._watch.drain, drain._watch.previous = False, None, None


async def test_sigterm_drains_then_hands_the_signal_to_the_servers_handler(
    access_token: str, channel_layer: Any, sigterm_handler: list[int]
) -> None:
    with vendor_settings(DRAIN_SECONDS=0.2):
        socket, _ = await connect(access_token)
        assert signal.getsignal(signal.SIGTERM) is drain._on_sigterm
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            closed = await socket.receive_output(timeout=5)
            assert closed["code"] == CloseCode.SERVER_RESTARTING
            # The server's handler only once the drain is over; then it is back in place.
            assert sigterm_handler == []
            deadline = time.monotonic() + 5
            while not sigterm_handler:
                assert time.monotonic() < deadline, "the server's handler was never called"
                await asyncio.sleep(0.01)
            assert sigterm_handler == [signal.SIGTERM]
            assert signal.getsignal(signal.SIGTERM) is not drain._on_sigterm
        finally:
            drain_for_loop().draining = False
            await socket.disconnect()


async def test_a_second_sigterm_goes_to_the_server_at_once(
    access_token: str, channel_layer: Any, sigterm_handler: list[int]
) -> None:
    with vendor_settings(DRAIN_SECONDS=30):
        socket, _ = await connect(access_token)
        registry = drain_for_loop()
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            while not registry.draining:
                await asyncio.sleep(0.01)
            os.kill(os.getpid(), signal.SIGTERM)
            await asyncio.sleep(0.05)
            assert sigterm_handler == [signal.SIGTERM]
        finally:
            registry.draining = False
            if registry.task is not None:
                registry.task.cancel()
            await socket.disconnect()


async def test_drain_seconds_none_leaves_sigterm_alone(
    access_token: str, channel_layer: Any, sigterm_handler: list[int]
) -> None:
    with vendor_settings(DRAIN_SECONDS=None):
        socket, _ = await connect(access_token)
        assert signal.getsignal(signal.SIGTERM) is not drain._on_sigterm
        await socket.disconnect()
