"""Servers for the attack suite: daphne (and one uvicorn) hardened as docs/security.md says.

They reuse tests/e2e's machinery (a real server process on the test database, a real Redis
layer with its own prefix) but serve ``tests.asgi_origin`` - the socket behind the origin
validator - with settings a test needs and every logger writing to the server's log, so a test
can read all the server logged.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import (
    PROJECT_ROOT,
    WEBSOCKET_PATH,
    AsgiServer,
    ServerKind,
    database_url_of_test_database,
    free_port,
    stop,
    wait_until_listening,
)

#: The server-level message limit the hardened servers run with: above the app's 16 KiB, so
#: the app answers what lies between, and the server drops what is larger before parsing it.
SERVER_MAX_MESSAGE_BYTES = 64 * 1024
#: The host names tests/settings.py allows, so the origin validator accepts this origin.
ALLOWED_ORIGIN = "http://localhost"
#: Longest a test waits for a close the issue promises "within 5 seconds".
WITHIN = 5.0


@dataclass
class SecurityServer:
    """An AsgiServer plus where a test's part of its log begins."""

    server: AsgiServer
    settings: dict[str, Any]

    @property
    def port(self) -> int:
        return self.server.port

    def url(self, query: str = "") -> str:
        return f"ws://127.0.0.1:{self.port}{WEBSOCKET_PATH}{query}"

    def connect(
        self,
        token: str | None = None,
        *,
        bearer: bool = False,
        origin: str | None = ALLOWED_ORIGIN,
        query: str = "",
        subprotocols: list[str] | None = None,
    ) -> Any:
        """websockets connect(): the token in the query string, or with ``bearer`` in the
        Sec-WebSocket-Protocol header; ``origin=None`` sends no Origin header."""
        if token is not None and not bearer:
            query = f"?token={token}" + (f"&{query.lstrip('?')}" if query else "")
        if token is not None and bearer:
            subprotocols = ["bearer", token]
        return connect(
            self.url(query),
            origin=origin,  # type: ignore[arg-type]
            subprotocols=subprotocols,  # type: ignore[arg-type]
            open_timeout=10,
            proxy=None,
            compression=None,
            max_size=None,
        )

    def log_offset(self) -> int:
        return self.server.log_path.stat().st_size

    def log_since(self, offset: int) -> str:
        with open(self.server.log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")

    def log(self) -> str:
        return self.server.log()

    async def run_django(self, *args: str) -> str:
        return await self.server.run_django(*args)

    async def run_django_with_log(self, *args: str) -> tuple[str, str]:
        return await self.server.run_django_with_log(*args)

    def assert_running(self) -> None:
        assert self.server.process.poll() is None, "the server process died"


def start(
    tmp_path_factory: pytest.TempPathFactory,
    name: str,
    settings: dict[str, Any],
    *,
    server: str = "daphne",
    log_config: dict[str, Any] | None = None,
) -> Iterator[SecurityServer]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_of_test_database(),
        "TEST_CHANNEL_LAYER": "redis",
        "TEST_CHANNEL_LAYER_PREFIX": f"vn-sec-{uuid.uuid4().hex[:12]}",
        "TEST_VENDOR_NOTIFICATIONS": json.dumps(settings),
        # Every logger, the app's included, at every level: what a test reads is all it wrote.
        "TEST_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
    }
    port = free_port()
    application = "tests.asgi_origin:application"
    if server == "daphne":
        # Daphne >= 4.2.2's flag; its access log (verbosity 1) stays on, as a host would have it.
        command = [
            sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port),
            "--websocket-max-message-size", str(SERVER_MAX_MESSAGE_BYTES),
            application,
        ]  # fmt: skip
    else:
        command = [
            sys.executable, "-m", "uvicorn", application, "--host", "127.0.0.1",
            "--port", str(port), "--lifespan", "off", "--ws-per-message-deflate", "false",
            "--ws-max-size", str(SERVER_MAX_MESSAGE_BYTES), "--timeout-graceful-shutdown", "1",
        ]  # fmt: skip
        if log_config is not None:
            config_path = tmp_path_factory.mktemp("log-config") / "logging.json"
            config_path.write_text(json.dumps(log_config))
            command += ["--log-config", str(config_path)]
    log_path: Path = tmp_path_factory.mktemp("security-server") / f"{name}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        asgi = AsgiServer(
            kind=ServerKind(server, "redis"), port=port, env=env, process=process,
            log_path=log_path,
        )  # fmt: skip
        try:
            wait_until_listening(asgi)
            yield SecurityServer(asgi, settings)
        finally:
            stop(process)


@pytest.fixture(scope="session")
def daphne_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[SecurityServer]:
    """Default settings, but a 1 s expiry grace so the expiry tests stay short."""
    yield from start(tmp_path_factory, "daphne", {"TOKEN_EXPIRY_GRACE": 1})


@pytest.fixture(scope="session")
def strict_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[SecurityServer]:
    """The opt-in strict settings: the token only in the header, an Origin required. Staff
    are entitled by the Django permission (no role lookup), so permission changes revoke."""
    yield from start(
        tmp_path_factory,
        "daphne-strict",
        {
            "QUERY_STRING_TOKEN": False,
            "ALLOW_MISSING_ORIGIN": False,
            "STAFF_PERMISSION_LOOKUP": None,
        },
    )


@pytest.fixture(scope="session")
def uvicorn_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[SecurityServer]:
    yield from start(tmp_path_factory, "uvicorn", {}, server="uvicorn")


#: What docs/security.md gives uvicorn with --log-config: its loggers through RedactTokens.
REDACTING_LOG_CONFIG: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact_tokens": {"()": "django_vendor_notifications.redaction.RedactTokens"}},
    "formatters": {"plain": {"format": "%(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["redact_tokens"],
        }
    },
    "loggers": {
        name: {"handlers": ["stderr"], "level": "INFO", "propagate": False}
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
    },
}


@pytest.fixture(scope="session")
def uvicorn_redacting_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[SecurityServer]:
    yield from start(
        tmp_path_factory, "uvicorn-redacting", {}, server="uvicorn", log_config=REDACTING_LOG_CONFIG
    )


@pytest.fixture
def no_traceback(daphne_server: SecurityServer) -> Iterator[Callable[[], str]]:
    """Fails the test when the daphne server logged a traceback during it; yields a function
    returning the log written so far during the test."""
    offset = daphne_server.log_offset()
    yield lambda: daphne_server.log_since(offset)
    written = daphne_server.log_since(offset)
    assert "Traceback" not in written, written
    daphne_server.assert_running()


async def receive_frame(ws: ClientConnection, timeout: float = WITHIN) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), timeout=timeout)
    assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
    data = json.loads(frame)
    assert isinstance(data, dict)
    return data


async def frames_until_close(
    ws: ClientConnection, timeout: float = WITHIN
) -> tuple[list[dict[str, Any]], int | None]:
    """Every frame that arrives before the server closes the socket, and the close code;
    fails when the socket is still open after ``timeout`` seconds."""
    frames: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            frames.append(await receive_frame(ws, timeout=max(deadline - loop.time(), 0.001)))
    except ConnectionClosed as closed:
        return frames, closed.rcvd.code if closed.rcvd else None
    except asyncio.TimeoutError:
        pytest.fail(f"still open after {timeout}s; frames: {frames!r}")


async def close_code(ws: ClientConnection, timeout: float = WITHIN) -> int | None:
    """The code the server closes with; fails on a frame or an open socket."""
    frames, code = await frames_until_close(ws, timeout)
    assert frames == [], f"expected a close, got frames {frames!r}"
    return code


async def still_serves(ws: ClientConnection, request_id: str = "alive") -> None:
    """The socket answers a valid request."""
    await ws.send(json.dumps({"action": "load_more", "page": 1, "request_id": request_id}))
    reply = await receive_frame(ws)
    assert reply["action"] == "load_more", reply
    assert reply["request_id"] == request_id
