"""What the scenarios share: the environment, servers, the seed, the load client and the run.

Entry points call ``configure_django()`` first; Django itself is only imported inside functions.
"""

from bench.harness.context import AppServer, Floor, Run, make_layer
from bench.harness.env import (
    ALL_CONFIGS,
    BOTH_SERVERS,
    CLIENT_CORE,
    CONNECT_CONCURRENCY,
    DAPHNE_PUBSUB,
    DAPHNE_REDIS,
    IN_PROCESS,
    PREFIX,
    PROFILES,
    RESULTS,
    ROOT,
    UVICORN_PUBSUB,
    UVICORN_REDIS,
    WEBSOCKET_PATH,
    Config,
    Profile,
    configure_django,
    fresh_prefix,
    log,
)
from bench.harness.seeding import HISTORY_VENDORS, Seed, clear_notifications, ensure_database, seed
from bench.harness.servers import Server
from bench.harness.sockets import (
    Publish,
    Sockets,
    connect_first_frame,
    fanout_round,
    fanout_rounds,
    interleaved_connects,
)
from bench.harness.wire import WireSockets, sent_at, stamp

__all__ = [
    "ALL_CONFIGS",
    "BOTH_SERVERS",
    "CLIENT_CORE",
    "CONNECT_CONCURRENCY",
    "DAPHNE_PUBSUB",
    "DAPHNE_REDIS",
    "HISTORY_VENDORS",
    "IN_PROCESS",
    "PREFIX",
    "PROFILES",
    "RESULTS",
    "ROOT",
    "UVICORN_PUBSUB",
    "UVICORN_REDIS",
    "WEBSOCKET_PATH",
    "AppServer",
    "Config",
    "Floor",
    "Profile",
    "Publish",
    "Run",
    "Seed",
    "Server",
    "Sockets",
    "WireSockets",
    "clear_notifications",
    "configure_django",
    "connect_first_frame",
    "ensure_database",
    "fanout_round",
    "fanout_rounds",
    "fresh_prefix",
    "interleaved_connects",
    "log",
    "make_layer",
    "seed",
    "sent_at",
    "stamp",
]
