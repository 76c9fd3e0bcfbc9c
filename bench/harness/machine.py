"""The machine a run measured: CPU, memory, kernel and every version that matters."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
from importlib.metadata import version
from typing import Any

from bench.harness.env import REDIS_URL

LSCPU_FIELDS = (
    "Architecture",
    "CPU(s)",
    "Model name",
    "Thread(s) per core",
    "Core(s) per socket",
    "CPU max MHz",
    "L2 cache",
    "L3 cache",
    "Hypervisor vendor",
)
PACKAGES = (
    "django",
    "channels",
    "channels-redis",
    "redis",
    "daphne",
    "twisted",
    "autobahn",
    "uvicorn",
    "websockets",
    "psycopg",
    "djangorestframework-simplejwt",
)


def output(*command: str) -> str:
    with contextlib.suppress(Exception):
        return subprocess.run(command, capture_output=True, text=True, timeout=10).stdout
    return ""


def machine() -> dict[str, Any]:
    from django.db import connection

    fields = dict(line.split(":", 1) for line in output("lscpu").splitlines() if ":" in line)
    redis_info = output("redis-cli", "-u", REDIS_URL, "INFO", "server")
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
    return {
        "lscpu": {key: fields[key].strip() for key in LSCPU_FIELDS if key in fields},
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {name: version(name) for name in PACKAGES},
        "redis_server": next(
            (
                line.split(":", 1)[1].strip()
                for line in redis_info.splitlines()
                if line.startswith("redis_version:")
            ),
            "?",
        ),
        "postgresql": postgres,
    }
