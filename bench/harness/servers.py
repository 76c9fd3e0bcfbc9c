"""Server processes: the ASGI servers under test and the floor, each pinned to core 0."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.harness.env import REDIS_URL, ROOT, SERVER_CORE, Config


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def rss_mib(self) -> float:
        import psutil  # type: ignore[import-untyped]  # the bench extra; tests import this module

        return float(psutil.Process(self.pid).memory_info().rss / 2**20)

    def cpu_seconds(self) -> float:
        import psutil  # type: ignore[import-untyped]

        times = psutil.Process(self.pid).cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would: no socket is closed cleanly."""
        self.process.kill()
        self.process.wait(timeout=10)


def pinned(command: list[str]) -> list[str]:
    if (os.cpu_count() or 1) < 2:
        return command
    # taskset execs the command, so the pid is the server's own.
    return ["taskset", "-c", SERVER_CORE, *command]


def start(name: str, command: list[str], env: dict[str, str], port: int, logs: Path) -> Server:
    """Start ``command`` and wait until it accepts connections on ``port``."""
    stem = f"{name.replace(' ', '').replace('/', '-')}-{port}"
    log_path = logs / f"{stem}.log"
    restarts = 0
    while log_path.exists():  # a restart on the same port keeps the first process's log
        restarts += 1
        log_path = logs / f"{stem}-{restarts}.log"
    with open(log_path, "wb") as output:
        process = subprocess.Popen(
            pinned(command), cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = Server(name, port, process, log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited:\n{log_path.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return server
        except OSError:
            time.sleep(0.02)
    server.stop()
    raise RuntimeError(f"{name} did not listen within 30s")


def asgi_command(config: Config, port: int) -> list[str]:
    python = sys.executable
    if config.server == "daphne":
        return [
            python,
            "-m",
            "daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "bench.asgi:application",
        ]
    return [
        python,
        "-m",
        "uvicorn",
        "bench.asgi:application",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--lifespan",
        "off",
        "--ws-per-message-deflate",
        "false",
        "--no-access-log",
        "--log-level",
        "warning",
    ]


def start_asgi(config: Config, env: dict[str, str], logs: Path, port: int | None = None) -> Server:
    """daphne or uvicorn serving bench.asgi, on ``port`` (a free one by default)."""
    port = port or free_port()
    return start(str(config), asgi_command(config, port), env, port, logs)


def start_floor(channel: str, frame_file: Path, logs: Path) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "bench.floor", str(port), REDIS_URL, channel, str(frame_file)]
    return start("floor", command, dict(os.environ), port, logs)
