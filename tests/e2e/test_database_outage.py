"""PostgreSQL restarted or frozen under open sockets: clear answers, no tracebacks, and back.

A daphne process serves from a PostgreSQL server this module owns (``postgres.py``), with
persistent connections and health checks as docs/deployment.md recommends, and
DATABASE_TIMEOUT=1. The database is stopped (every connection closed, new ones refused, as a
restart does) and then frozen (SIGSTOP: it answers nothing, as a black-holed database does).
During each: requests on open sockets get the error ``unavailable``, a new socket is closed
with 4013, ``notify()`` raises to its caller, and no socket is dropped. After each: the same
sockets work again, with no server restart.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from rest_framework_simplejwt.tokens import AccessToken
from websockets.exceptions import ConnectionClosed

from .conftest import (
    PROJECT_ROOT,
    AsgiServer,
    ServerKind,
    free_port,
    launch_server,
    receive_json,
    server_env,
)
from .postgres import PostgresServer, server_binaries

pytestmark = pytest.mark.e2e

DATABASE_TIMEOUT = 1.0

SETUP = """
import django; django.setup()
from django.contrib.auth import get_user_model
from tests.testapp.models import Vendor
user = get_user_model().objects.create_user("outage-owner")
vendor = Vendor.objects.create(user=user, name="Outage shop")
print(user.pk, vendor.pk)
"""

NOTIFY = """
import django; django.setup()
from django_vendor_notifications import services
services.notify({vendor_id}, "During the outage")
"""


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    binaries = server_binaries()
    if binaries is None:
        pytest.skip("no PostgreSQL server binaries (initdb) installed")
    server = PostgresServer(binaries, free_port())
    try:
        server.start()
        server.create_database()
        yield server
    finally:
        server.remove()


@pytest.fixture(scope="module")
def deployment(
    database: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[AsgiServer, int, str]]:
    env = server_env("redis", vendor_settings={"DATABASE_TIMEOUT": DATABASE_TIMEOUT})
    # PGCONNECT_TIMEOUT (libpq's connect_timeout): a worker's notify() gives up on a frozen
    # database instead of waiting for ever, as docs/deployment.md configures it.
    env.update(DATABASE_URL=database.url, TEST_CONN_MAX_AGE="60", PGCONNECT_TIMEOUT="2")
    run = {"cwd": PROJECT_ROOT, "env": env, "capture_output": True, "text": True, "timeout": 120}
    subprocess.run([sys.executable, "-m", "django", "migrate", "-v", "0"], check=True, **run)
    user_id, vendor_id = map(int, subprocess.run(
        [sys.executable, "-c", SETUP], check=True, **run
    ).stdout.split())
    token = str(AccessToken.for_user(SimpleNamespace(id=user_id, pk=user_id)))  # type: ignore[arg-type]
    server = launch_server(ServerKind("daphne", "redis"), env,
                           tmp_path_factory.mktemp("database-outage"))
    try:
        yield server, vendor_id, token
    finally:
        server.stop()


async def request(ws: Any, action: str, **fields: Any) -> tuple[dict[str, Any], float]:
    """Send ``action`` and return its reply and how long it took."""
    started = time.monotonic()
    await ws.send(json.dumps({"action": action, "request_id": action, **fields}))
    while True:
        frame = await receive_json(ws, timeout=DATABASE_TIMEOUT + 10)
        if frame.get("request_id") == action:
            return frame, time.monotonic() - started


async def connect_close_code(server: AsgiServer, token: str) -> tuple[int | None, float]:
    """A new socket during the outage: the code it was closed with, and when."""
    started = time.monotonic()
    async with server.connect(token) as ws:
        try:
            frame = await receive_json(ws, timeout=DATABASE_TIMEOUT + 10)
        except ConnectionClosed as closed:
            return (closed.rcvd.code if closed.rcvd else None), time.monotonic() - started
    raise AssertionError(f"a connect during the outage was served: {frame}")


async def notify_fails(server: AsgiServer, vendor_id: int) -> str:
    process = await server.start_python(NOTIFY.format(vendor_id=vendor_id))
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode != 0, "notify() pretended to save during the outage"
    return stderr.decode(errors="replace")


async def outage_and_back(
    deployment: tuple[AsgiServer, int, str], begin: Any, end: Any
) -> dict[str, Any]:
    server, vendor_id, token = deployment
    async with server.connect(token) as first, server.connect(token) as second:
        for ws in (first, second):
            assert (await receive_json(ws))["action"] == "unread_notifications"
        assert (await request(first, "get_unread_counts"))[0]["action"] == "get_unread_counts"
        begin()
        try:
            replies = [await request(first, "get_unread_counts"),
                       await request(second, "mark_all_read")]
            refused = await connect_close_code(server, token)
            notify_error = await notify_fails(server, vendor_id)
        finally:
            end()
        # The same sockets, no restart: the database answers again.
        back, back_after = await request(first, "get_unread_counts")
        marked, _ = await request(second, "mark_all_read")
    for frame, _ in replies:
        assert frame["action"] == "error" and frame["error"] == "unavailable", frame
    assert back["action"] == "get_unread_counts", back
    assert marked["action"] == "mark_all_read", marked
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    return {
        "reply_seconds": [round(seconds, 2) for _, seconds in replies],
        "connect_close": refused[0],
        "connect_close_seconds": round(refused[1], 2),
        # The exception line of the worker's traceback.
        "notify_error": next(
            line for line in reversed(notify_error.splitlines()) if "Error:" in line
        ),
        "first_reply_after_seconds": round(back_after, 2),
    }


async def test_a_restart_answers_unavailable_then_the_same_sockets_work_again(
    deployment: tuple[AsgiServer, int, str], database: PostgresServer
) -> None:
    figures = await outage_and_back(deployment, database.stop, database.start)
    assert figures["connect_close"] == 4013
    # Refused connections are answered at once, not after DATABASE_TIMEOUT.
    assert max(figures["reply_seconds"]) < DATABASE_TIMEOUT
    assert "OperationalError" in figures["notify_error"]
    print(f"\n[postgres restart] {figures}")


async def test_a_frozen_database_answers_unavailable_within_the_timeout(
    deployment: tuple[AsgiServer, int, str], database: PostgresServer
) -> None:
    figures = await outage_and_back(deployment, database.freeze, database.thaw)
    assert figures["connect_close"] == 4013
    # The first call waits DATABASE_TIMEOUT for the hung one; once the thread is known to be
    # stuck, the next ones are answered within a check (CHECK_EVERY), not another timeout.
    first, *later = figures["reply_seconds"]
    assert DATABASE_TIMEOUT * 0.9 <= first < DATABASE_TIMEOUT + 3, figures
    assert all(seconds < DATABASE_TIMEOUT + 3 for seconds in later), figures
    print(f"\n[postgres frozen] {figures}")
