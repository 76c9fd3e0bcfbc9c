"""A real ASGI server in a subprocess, on the test database and a real Redis channel layer.

The server is started once per (server, channel layer) pair for the whole session and reads the
database pytest-django created, so tests commit their rows (``transaction=True``) for it to see.
Everything the server and the helper processes share travels in their environment: the settings
module, DATABASE_URL of the test database, the channel layer and its Redis prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from django.db import connection
from websockets.asyncio.client import ClientConnection, connect

PROJECT_ROOT = Path(__file__).resolve().parents[2]
WEBSOCKET_PATH = "/v1/ws/notifications/"
#: Long enough for a frame to cross Redis and the server; what has not arrived by then is not
#: coming.
SILENCE = 0.5
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServerKind:
    name: str
    channel_layer: str
    application: str = "tests.asgi:application"
    #: uvicorn's --timeout-graceful-shutdown; None runs it as a host does, without one.
    graceful_shutdown: int | None = 1

    def command(self, port: int) -> list[str]:
        if self.name == "daphne":
            return [
                sys.executable,
                "-m",
                "daphne",
                "-b",
                "127.0.0.1",
                "-p",
                str(port),
                self.application,
            ]
        # --timeout-graceful-shutdown: on Python 3.11, cancelling RedisChannelLayer.receive()
        # while redis-py is still opening its connection can be swallowed (asyncio.wait_for's
        # race, fixed in 3.12), so a consumer of another app that listens on the layer may
        # never finish and uvicorn would wait for it forever on shutdown.
        graceful = (
            []
            if self.graceful_shutdown is None
            else ["--timeout-graceful-shutdown", str(self.graceful_shutdown)]
        )
        return [
            sys.executable,
            "-m",
            "uvicorn",
            self.application,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--ws-per-message-deflate",
            "false",
            "--no-access-log",
            *graceful,
        ]

    def __str__(self) -> str:
        return f"{self.name}-{self.channel_layer}"


SERVER_KINDS = [
    ServerKind("daphne", "redis"),
    ServerKind("daphne", "redis-pubsub"),
    ServerKind("uvicorn", "redis"),
]


@dataclass
class AsgiServer:
    kind: ServerKind
    port: int
    env: dict[str, str]
    process: subprocess.Popen[bytes]
    log_path: Path

    def url(self, token: str | None, path: str = WEBSOCKET_PATH, since: int | None = None) -> str:
        params = [] if token is None else [f"token={token}"]
        if since is not None:
            params.append(f"since={since}")
        query = f"?{'&'.join(params)}" if params else ""
        return f"ws://127.0.0.1:{self.port}{path}{query}"

    def connect(self, token: str | None, *, since: int | None = None, **options: Any) -> Any:
        """``websockets`` connect(); use as ``async with server.connect(token) as ws``.

        ``since`` adds the reconnecting client's ``?since=N``; ``options`` go to connect().
        """
        # proxy=None: never route a localhost test through a proxy from the environment.
        options = {"open_timeout": 10, "proxy": None, "compression": None, **options}
        return connect(self.url(token, since=since), **options)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    async def run_django(self, *args: str) -> str:
        """Run a management command in another process, like a host's worker; its stdout."""
        stdout, _ = await self.run_django_with_log(*args)
        return stdout

    async def run_django_with_log(self, *args: str) -> tuple[str, str]:
        """``run_django``, with what the process logged (its stderr) as well."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "django",
            *args,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode(errors="replace")
        return stdout.decode(), stderr.decode(errors="replace")

    async def start_python(self, code: str) -> asyncio.subprocess.Process:
        """Start ``python -c code`` as a worker of this deployment (Django set up, same database
        and channel layer), with stdout and stderr piped."""
        return await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            PYTHON_PRELUDE + code,
            cwd=PROJECT_ROOT,
            env=self.env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )

    async def run_python(self, code: str) -> str:
        """Run ``python -c code`` like a host's worker or cron job; its stdout."""
        process = await self.start_python(code)
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
        assert process.returncode == 0, stderr.decode(errors="replace")
        return stdout.decode()

    def stop(self) -> None:
        stop(self.process)


#: What a worker process runs before its own code: plain Django, nothing from the test suite.
PYTHON_PRELUDE = "import django; django.setup()\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def database_url_of_test_database() -> str:
    """DATABASE_URL of the database pytest-django created, for tests/settings.py to parse."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        name = str(db["NAME"])
        assert name != ":memory:" and "mode=memory" not in name, (
            "A server process cannot open an in-memory SQLite database; tests/settings.py must "
            "give the test database a file name."
        )
        return f"sqlite:///{name}"
    if db["ENGINE"].endswith("postgresql"):
        credentials = quote(db["USER"] or "", safe="")
        if db.get("PASSWORD"):
            credentials += ":" + quote(db["PASSWORD"], safe="")
        host = db.get("HOST") or "localhost"
        port = f":{db['PORT']}" if db.get("PORT") else ""
        at = "@" if credentials else ""
        return f"postgres://{credentials}{at}{host}{port}/{quote(db['NAME'], safe='')}"
    raise NotImplementedError(f"No DATABASE_URL for {db['ENGINE']}")


def wait_until_listening(server: AsgiServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.kind} exited at startup:\n{server.log()}")
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)  # the process gives no other signal that it is listening
    raise RuntimeError(f"{server.kind} did not listen within {STARTUP_TIMEOUT}s:\n{server.log()}")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


def unique_prefix() -> str:
    """A Redis prefix of its own, so neither other runs nor other servers interfere."""
    return f"vn-e2e-{uuid.uuid4().hex[:12]}"


def server_env(
    channel_layer: str,
    *,
    prefix: str | None = None,
    redis_url: str | None = None,
    redis_urls: list[str] | None = None,
    layer_config: dict[str, Any] | None = None,
    vendor_settings: dict[str, Any] | None = None,
) -> dict[str, str]:
    """The environment of a server or worker process: tests/settings.py reads it.

    Processes that must reach each other's sockets share ``prefix`` (and ``redis_url``).
    """
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url_of_test_database(),
        "TEST_CHANNEL_LAYER": channel_layer,
        "TEST_CHANNEL_LAYER_PREFIX": prefix or unique_prefix(),
        "PYTHONUNBUFFERED": "1",
    }
    if redis_url is not None:
        env["REDIS_URL"] = redis_url
    if redis_urls is not None:
        # Several Redis servers: the layer shards groups and channels across them.
        env["TEST_REDIS_URLS"] = ",".join(redis_urls)
    if layer_config:
        env["TEST_CHANNEL_LAYER_CONFIG"] = json.dumps(layer_config)
    if vendor_settings:
        env["TEST_VENDOR_NOTIFICATIONS"] = json.dumps(vendor_settings)
    return env


def rss_kib(pid: int) -> int:
    """A process's resident memory, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def launch_server(kind: ServerKind, env: dict[str, str], log_dir: Path) -> AsgiServer:
    """Start ``kind`` on a free port with ``env`` and wait until it listens; call .stop()."""
    port = free_port()
    # The server's tracebacks end up here; pytest keeps the directory after the run.
    log_path = log_dir / f"{kind}-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            kind.command(port), cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    server = AsgiServer(kind=kind, port=port, env=env, process=process, log_path=log_path)
    try:
        wait_until_listening(server)
    except BaseException:
        stop(process)
        raise
    return server


@contextlib.contextmanager
def running_server(kind: ServerKind, env: dict[str, str], log_dir: Path) -> Iterator[AsgiServer]:
    """launch_server() for a ``with`` block: the server is stopped when it ends."""
    server = launch_server(kind, env, log_dir)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session", params=SERVER_KINDS, ids=str)
def asgi_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    django_db_setup: None,
) -> Iterator[AsgiServer]:
    kind: ServerKind = request.param
    server = launch_server(
        kind, server_env(kind.channel_layer), tmp_path_factory.mktemp("asgi-server")
    )
    try:
        yield server
    finally:
        server.stop()


class RedisServer:
    """A ``redis-server`` this test session owns, on a free port: stopping it harms nobody.

    No persistence: a restart loses every key, as a crashed Redis without AOF does.
    """

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.process is None, "already running"
        command = [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
        ]
        with open(self.directory / "redis.log", "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill it, as a crash would: no goodbye to its clients."""
        assert self.process is not None, "not running"
        self.process.kill()
        self.process.wait(timeout=10)
        self.process = None

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as probe:
                probe.sendall(b"PING\r\n")
                return probe.recv(16).startswith(b"+PONG")
        except OSError:
            return False


@pytest.fixture(scope="module")
def own_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A running redis-server of this module's own (never the shared one)."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    try:
        yield redis
    finally:
        if redis.process is not None:
            redis.stop()


async def receive_json(ws: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    frame = await asyncio.wait_for(ws.recv(), timeout=timeout)
    assert isinstance(frame, str), f"expected a text frame, got {frame!r}"
    data = json.loads(frame)
    assert isinstance(data, dict)
    return data


async def assert_silent(*sockets: ClientConnection) -> None:
    """Nothing arrives on any of ``sockets`` within SILENCE seconds."""

    async def silent(ws: ClientConnection) -> None:
        try:
            frame = await asyncio.wait_for(ws.recv(), timeout=SILENCE)
        except asyncio.TimeoutError:
            return
        raise AssertionError(f"unexpected frame: {frame!r}")

    await asyncio.gather(*(silent(ws) for ws in sockets))
