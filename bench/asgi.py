"""The ASGI application the benchmark serves: the app's socket, and a bare Channels baseline.

``/v1/ws/notifications/`` is the app exactly as a host wires it (JWT middleware, the
NotificationConsumer). ``/bench/bare/`` is the baseline: an AsyncWebsocketConsumer with no
authentication and no database that joins one group, sends a constant frame on connect and
forwards what the group sends. The difference between the two is what the app costs.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
get_asgi_application()

from channels.generic.websocket import AsyncWebsocketConsumer  # noqa: E402

from django_vendor_notifications.auth import JWTAuthMiddlewareStack  # noqa: E402
from django_vendor_notifications.routing import websocket_urlpatterns  # noqa: E402

BARE_PATH = "/bench/bare/"
BARE_GROUP = "bench_bare"
BARE_EVENT = "bench.push"


def bare_first_frame() -> str:
    """The frame the baseline sends on connect: the app's 100-unread snapshot, byte for byte,
    when the harness wrote it to BENCH_BARE_FRAME, so both send the same bytes."""
    path = os.environ.get("BENCH_BARE_FRAME")
    if path:
        with open(path, encoding="utf-8") as file:
            return file.read()
    return '{"action":"unread_notifications","notifications":{}}'


class BareConsumer(AsyncWebsocketConsumer):
    groups = [BARE_GROUP]
    first_frame = bare_first_frame()

    async def connect(self) -> None:
        await self.accept()
        await self.send(text_data=self.first_frame)

    async def bench_push(self, event: dict[str, Any]) -> None:
        await self.send(text_data=event["text"])


from channels.routing import URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

_bare = URLRouter([path(BARE_PATH.strip("/") + "/", BareConsumer.as_asgi())])
_app = JWTAuthMiddlewareStack(URLRouter(websocket_urlpatterns))


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "websocket":
        raise ValueError(f"The benchmark serves WebSockets only, not {scope['type']!r}.")
    inner = _bare if scope["path"] == BARE_PATH else _app
    await inner(scope, receive, send)


def collector_experiments() -> None:
    """The garbage-collector experiments of docs/benchmarks.md, by environment variable.

    BENCH_GC_THRESHOLD=N: what docs/deployment.md offers hosts: everything loaded so far is
    frozen out of every collection, and the youngest generation is collected after N
    allocations instead of 700. BENCH_GC_LOG=1: each collection that pauses the server for
    more than 10 ms is printed to stderr (the server's log) with its generation.
    """
    import gc
    import sys
    import time

    if os.environ.get("BENCH_GC_THRESHOLD"):
        gc.collect()
        gc.freeze()
        gc.set_threshold(int(os.environ["BENCH_GC_THRESHOLD"]), *gc.get_threshold()[1:])
    if os.environ.get("BENCH_GC_LOG"):
        started = [0.0]

        def log_collection(phase: str, info: dict[str, Any]) -> None:
            if phase == "start":
                started[0] = time.perf_counter()
            elif (pause := time.perf_counter() - started[0]) > 0.01:
                print(
                    f"gc: generation {info['generation']} took {pause * 1000:.0f} ms, "
                    f"{info['collected']} collected",
                    file=sys.stderr,
                    flush=True,
                )

        gc.callbacks.append(log_collection)


collector_experiments()
