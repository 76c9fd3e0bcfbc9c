"""Deploys and crashes: a server process goes away while a publisher runs; nothing is lost.

Two server processes share a channel layer (one Redis prefix). Every client starts on the
first; then a "load balancer" (``Balancer``) sends new connections to the second only, and the
first is stopped: with SIGTERM, as an orchestrator deploys, or with SIGKILL, as a crash. The
clients follow the protocol (``test_faults.FollowingClient``: reconnect, sync from the newest
id held, de-duplicate by id) and must each end with every notification exactly once.

On SIGTERM the first process drains (``drain.py``): its sockets are closed with 4012 in
batches across DRAIN_SECONDS, then the server stops on its own handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect as websockets_connect

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import (
    AsgiServer,
    ServerKind,
    launch_server,
    receive_json,
    server_env,
    unique_prefix,
)
from .test_faults import (
    FollowingClient,
    Publisher,
    assert_exactly_once_by_id,
    report,
    until_caught_up,
    until_connected,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CLIENTS = 30
DRAIN_SECONDS = 1.5


@dataclass
class Balancer:
    """Routes each new connection to the first server still in ``live``, as a load balancer
    does once a process is taken out of rotation."""

    live: list[AsgiServer]

    def connect(self, token: str | None, **options: Any) -> Any:
        return self.live[0].connect(token, **options)


@pytest.fixture
def two_servers(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[list[AsgiServer]]:
    kind: ServerKind = request.param
    env = server_env(
        kind.channel_layer,
        prefix=unique_prefix(),
        vendor_settings={"DRAIN_SECONDS": DRAIN_SECONDS, "MAX_SOCKETS_PER_USER": 100},
    )
    servers = [launch_server(kind, env, tmp_path) for _ in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def exit_within(server: AsgiServer, seconds: float) -> float:
    """Seconds until the server process exited (fails after ``seconds``)."""
    started = time.monotonic()
    server.process.wait(timeout=seconds)
    return time.monotonic() - started


async def run_deploy(
    servers: list[AsgiServer], vendor: Vendor, stop_signal: signal.Signals
) -> tuple[list[FollowingClient], Publisher, float, str]:
    first, second = servers
    balancer = Balancer([first])
    token = access_token_for(vendor.user)
    clients = [FollowingClient(balancer, token, vendor.pk) for _ in range(CLIENTS)]  # type: ignore[arg-type]
    stop = asyncio.Event()
    running = [asyncio.ensure_future(client.run(stop)) for client in clients]
    try:
        await until_connected(clients)
        publisher = await Publisher.start(second, vendor, pause=0.01)
        await publisher.published(40)
        balancer.live = [second]
        first.process.send_signal(stop_signal)
        exited_after = await asyncio.to_thread(exit_within, first, DRAIN_SECONDS + 10)
        await publisher.finish()
        await until_caught_up(clients, set(publisher.ids))
    finally:
        stop.set()
        await asyncio.gather(*running)
    return clients, publisher, exited_after, first.log()


@pytest.mark.parametrize(
    "two_servers",
    [ServerKind("daphne", "redis"), ServerKind("uvicorn", "redis")],
    indirect=True,
    ids=str,
)
async def test_sigterm_drains_in_batches_with_4012_and_clients_lose_nothing(
    two_servers: list[AsgiServer], vendor: Vendor
) -> None:
    clients, publisher, exited_after, log = await run_deploy(two_servers, vendor, signal.SIGTERM)

    assert_exactly_once_by_id(clients, set(publisher.ids), log[-3000:])
    first_closes = [client.closes[0] for client in clients]
    assert {code for code, _ in first_closes} == {4012}, first_closes
    # In batches across the drain window, not all in the same instant.
    closed_at = sorted(client.closed_at[0] for client in clients)
    spread = closed_at[-1] - closed_at[0]
    assert spread >= DRAIN_SECONDS / 2, closed_at
    # Every socket was closed by the drain before the server stopped: none was left for the
    # server to kill, and nothing went wrong on the way.
    assert exited_after < DRAIN_SECONDS + 5
    assert not re.search(r"Killed [1-9]\d* pending", log), log[-3000:]  # daphne's count
    assert "Traceback" not in log, log[-3000:]
    report(
        "deploy (SIGTERM)",
        server=two_servers[0].kind,
        close_codes=sorted({code for code, _ in first_closes}),
        closes_spread_seconds=round(spread, 2),
        exited_after_seconds=round(exited_after, 2),
        reconnects=sum(client.connections for client in clients) - CLIENTS,
        duplicate_frames=sum(client.duplicate_frames for client in clients),
    )


@pytest.mark.parametrize("two_servers", [ServerKind("daphne", "redis")], indirect=True, ids=str)
async def test_a_crashed_process_loses_no_notification(
    two_servers: list[AsgiServer], vendor: Vendor
) -> None:
    clients, publisher, exited_after, _ = await run_deploy(two_servers, vendor, signal.SIGKILL)

    assert_exactly_once_by_id(clients, set(publisher.ids))
    # No close frame from a killed process: the clients saw the connection drop.
    assert {client.closes[0][0] for client in clients} == {None}
    assert all(client.connections >= 2 for client in clients)
    report(
        "crash (SIGKILL)",
        exited_after_seconds=round(exited_after, 2),
        duplicate_frames=sum(client.duplicate_frames for client in clients),
    )


# --- SIGTERM after a burst of hostile handshakes ----------------------------------------------

UPGRADE = (
    b"GET /v1/ws/notifications/?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"Sec-WebSocket-Version: 13\r\n\r\n"
)


async def hostile_handshake(server: AsgiServer, path: str, **options: Any) -> None:
    url = f"ws://127.0.0.1:{server.port}{path}"
    with contextlib.suppress(Exception):
        async with websockets_connect(url, open_timeout=5, proxy=None, **options) as ws:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.recv(), 2)


@pytest.fixture
def plain_uvicorn(tmp_path: Path) -> Iterator[AsgiServer]:
    """uvicorn as a host runs it: no --timeout-graceful-shutdown, so a socket task that never
    ends would keep it from stopping; the origin validator in front, as in the example."""
    kind = ServerKind("uvicorn", "redis", "tests.asgi_origin:application", graceful_shutdown=None)
    server = launch_server(
        kind, server_env("redis", vendor_settings={"DRAIN_SECONDS": 1.0}), tmp_path
    )
    try:
        yield server
    finally:
        server.stop()


async def test_uvicorn_stops_promptly_on_sigterm_after_hostile_handshakes(
    plain_uvicorn: AsgiServer, vendor: Vendor
) -> None:
    server = plain_uvicorn
    path = "/v1/ws/notifications/"
    burst = []
    for _ in range(20):
        burst += [
            hostile_handshake(server, path),  # no token: 4001
            hostile_handshake(server, f"{path}?token=not-a-jwt"),
            hostile_handshake(server, path.rstrip("/")),  # no such route
            hostile_handshake(server, f"{path}?token=x", origin="http://[::1"),
            hostile_handshake(server, f"{path}?token=x", origin="https://evil.example"),
        ]
    await asyncio.gather(*burst)
    # Handshakes cut off half-way, and ones left hanging without reading the answer.
    held = []
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", server.port)) as cut:
            cut.sendall(UPGRADE)
        for data in (b"GET /v1/ws/notif", UPGRADE):
            held.append(socket.create_connection(("127.0.0.1", server.port)))
            held[-1].sendall(data)
    try:
        async with server.connect(access_token_for(vendor.user)) as ws:
            assert (await receive_json(ws))["action"] == "unread_notifications"
            server.process.send_signal(signal.SIGTERM)
            try:
                exited_after = await asyncio.to_thread(exit_within, server, 10)
            except subprocess.TimeoutExpired:
                pytest.fail(f"uvicorn still runs 10 s after SIGTERM:\n{server.log()[-3000:]}")
    finally:
        for connection in held:
            connection.close()
    log = server.log()
    assert exited_after < 1.0 + 3, log[-3000:]
    assert "Traceback" not in log and "Channel layer failed" not in log, log[-3000:]
    report("uvicorn SIGTERM after hostile handshakes", exited_after_seconds=round(exited_after, 2))
