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
import re
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import AsgiServer, ServerKind, launch_server, server_env, unique_prefix
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
