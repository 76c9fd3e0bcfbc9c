"""Where the benchmark runs: paths, the local services, the cores, and what a run is made of."""

from __future__ import annotations

import os
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
RESULTS = ROOT / "bench" / "results"
WEBSOCKET_PATH = "/v1/ws/notifications/"
#: The servers run on the first core (taskset), this process (the load client) on the second.
SERVER_CORE = "0"
CLIENT_CORE = 1
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
DATABASE_URL = os.environ.get("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/bench_vn")
PREFIX = os.environ.get("BENCH_REDIS_PREFIX", "vn-bench")
#: Sockets the client opens at once while it fills a pool (not a measured connect).
CONNECT_CONCURRENCY = 50


def configure_django() -> None:
    """Point Django (this process's, and the servers', which inherit it) at bench.settings,
    the bench database and Redis prefix. Called by the entry points before Django is imported;
    importing the harness alone changes nothing (the unit tests import it)."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "TEST_CHANNEL_LAYER": "redis",
            "TEST_CHANNEL_LAYER_PREFIX": f"{PREFIX}-harness",
        }
    )


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def fresh_prefix(kind: str = "") -> str:
    """A Redis prefix no other server of this run shares."""
    return f"{PREFIX}-{kind}{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True)
class Config:
    """A server and a channel layer, as the rows name them."""

    server: str  # daphne, uvicorn, or in-process (the harness itself)
    layer: str  # redis or redis-pubsub (tests/settings.py's names), or memory

    def __str__(self) -> str:
        if self.server == "in-process":
            return "in-process"
        return f"{self.server} / {'RedisPubSub' if self.layer == 'redis-pubsub' else 'Redis'}"


#: The consumer driven in this process through channels.testing, on the in-memory layer.
IN_PROCESS = Config("in-process", "memory")
DAPHNE_REDIS = Config("daphne", "redis")
DAPHNE_PUBSUB = Config("daphne", "redis-pubsub")
UVICORN_REDIS = Config("uvicorn", "redis")
UVICORN_PUBSUB = Config("uvicorn", "redis-pubsub")
ALL_CONFIGS = (DAPHNE_REDIS, DAPHNE_PUBSUB, UVICORN_REDIS, UVICORN_PUBSUB)
#: Both servers on the core layer (RedisChannelLayer), for the heavy, slow scenarios.
BOTH_SERVERS = (DAPHNE_REDIS, UVICORN_REDIS)


@dataclass(frozen=True)
class Profile:
    """What differs between ``--quick`` and ``--full`` outside the scenarios' own sizes."""

    name: str
    #: Notifications of the big history vendors (seeded once, reused while the count matches).
    history_rows: int


PROFILES = {
    "quick": Profile(name="quick", history_rows=10_000),
    "full": Profile(name="full", history_rows=100_000),
}
