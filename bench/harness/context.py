"""The run: what every scenario gets (servers, the seed, URLs, publishers) and what it records.

A scenario asks the run for a server. ``app_server(config)`` is shared by every scenario of
that server and layer (started once, as a deployment would run one process for all of it);
``own_app_server(config)`` and ``own_floor()`` start a fresh process for a scenario that
measures memory or restarts the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.harness.env import REDIS_URL, WEBSOCKET_PATH, Config, Profile, fresh_prefix
from bench.harness.seeding import Seed
from bench.harness.servers import Server, start_asgi, start_floor
from bench.report import Row


@dataclass
class AppServer:
    """daphne or uvicorn serving bench.asgi: the app's socket and the bare consumer."""

    config: Config
    server: Server
    prefix: str
    #: The channel layer this process publishes to the server with.
    layer: Any
    env: dict[str, str]
    logs: Path
    seed: Seed

    @classmethod
    async def start(cls, config: Config, run: Run) -> AppServer:
        prefix = fresh_prefix()
        env = run.server_env(config, prefix)
        server = await asyncio.to_thread(start_asgi, config, env, run.logs)
        return cls(config, server, prefix, make_layer(config, prefix), env, run.logs, run.seed)

    def activate(self) -> None:
        """Point this process's default channel layer at the server's, so services.notify()
        and delivery publish to it."""
        from channels.layers import channel_layers

        channel_layers.set("default", self.layer)

    def app_url(self, vendor: str, *, since: int | None = None) -> str:
        query = f"?token={self.seed.tokens[vendor]}"
        if since is not None:
            query += f"&since={since}"
        return f"ws://127.0.0.1:{self.server.port}{WEBSOCKET_PATH}{query}"

    def bare_url(self) -> str:
        from bench.asgi import BARE_PATH

        return f"ws://127.0.0.1:{self.server.port}{BARE_PATH}"

    async def broadcast(self, text: str) -> None:
        """A push to every app socket, through the all_notifications group."""
        from django_vendor_notifications import delivery

        self.activate()
        sent = await delivery.asend_event(delivery.broadcast_group(), delivery.push_event(text))
        assert sent, "the app's broadcast was not published"

    async def bare_broadcast(self, text: str) -> None:
        """The same frame to every bare consumer."""
        from bench.asgi import BARE_EVENT, BARE_GROUP

        await self.layer.group_send(BARE_GROUP, {"type": BARE_EVENT, "text": text})

    async def restart(self, *, kill: bool = True) -> None:
        """Stop the process (SIGKILL by default) and start a new one on the same port."""
        await asyncio.to_thread(self.server.kill if kill else self.server.stop)
        self.server = await self.start_again()

    async def start_again(self) -> Server:
        port = self.server.port
        return await asyncio.to_thread(start_asgi, self.config, self.env, self.logs, port)

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)
        with contextlib.suppress(Exception):
            await self.layer.flush()


@dataclass
class Floor:
    """The raw websockets + Redis pub/sub server of bench/floor.py."""

    server: Server
    channel: str
    client: Any

    @classmethod
    async def start(cls, run: Run) -> Floor:
        import redis.asyncio as redis

        channel = fresh_prefix("floor-")
        frame_file = run.logs / "bare-frame.json"
        server = await asyncio.to_thread(start_floor, channel, frame_file, run.logs)
        return cls(server, channel, redis.Redis.from_url(REDIS_URL))

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.server.port}/"

    async def publish(self, text: str) -> None:
        await self.client.publish(self.channel, text)

    async def stop(self) -> None:
        await asyncio.to_thread(self.server.stop)
        with contextlib.suppress(Exception):
            await self.client.aclose()


def make_layer(config: Config, prefix: str) -> Any:
    """A channel layer of ``config``'s kind on the server's Redis prefix."""
    from django.utils.module_loading import import_string

    from tests.settings import channel_layer_config

    spec = channel_layer_config(config.layer, prefix=prefix)
    return import_string(spec["BACKEND"])(**spec["CONFIG"])


@dataclass
class Run:
    """One benchmark run: its profile, seed and servers, and the rows, series and raw figures
    the scenarios record into the results file."""

    profile: Profile
    seed: Seed
    logs: Path
    rows: list[Row] = field(default_factory=list)
    series: dict[str, dict[str, list[list[float]]]] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    #: Extra top-level params of the results (e.g. scale_config, which the charts name).
    params: dict[str, Any] = field(default_factory=dict)
    shared: AppServer | None = None
    floor_server: Floor | None = None

    def server_env(self, config: Config, prefix: str) -> dict[str, str]:
        return {
            **os.environ,
            "TEST_CHANNEL_LAYER": config.layer,
            "TEST_CHANNEL_LAYER_PREFIX": prefix,
            "BENCH_BARE_FRAME": str(self.logs / "bare-frame.json"),
            "PYTHONUNBUFFERED": "1",
        }

    async def app_server(self, config: Config) -> AppServer:
        """The server of ``config`` the scenarios share (another config's is stopped first)."""
        if self.shared is not None and self.shared.config != config:
            await self.stop_shared()
        if self.shared is None:
            self.shared = await AppServer.start(config, self)
        self.shared.activate()
        return self.shared

    async def stop_shared(self) -> None:
        shared, self.shared = self.shared, None
        if shared is not None:
            await shared.stop()

    @contextlib.asynccontextmanager
    async def own_app_server(self, config: Config) -> AsyncIterator[AppServer]:
        """A fresh server process for one scenario (memory, restarts), stopped afterwards."""
        server = await AppServer.start(config, self)
        server.activate()
        try:
            yield server
        finally:
            await server.stop()

    async def floor(self) -> Floor:
        """The floor server the scenarios share."""
        if self.floor_server is None:
            self.floor_server = await Floor.start(self)
        return self.floor_server

    @contextlib.asynccontextmanager
    async def own_floor(self) -> AsyncIterator[Floor]:
        floor = await Floor.start(self)
        try:
            yield floor
        finally:
            await floor.stop()

    async def close(self) -> None:
        await self.stop_shared()
        if self.floor_server is not None:
            await self.floor_server.stop()
            self.floor_server = None

    def add(self, *rows: Row) -> None:
        self.rows.extend(rows)

    def record(self, config: Config, key: str, value: Any) -> None:
        """Raw figures under params.raw[<config>][key] (params.raw[key] for in-process ones)."""
        if config.server == "in-process":
            self.raw[key] = value
        else:
            self.raw.setdefault(str(config), {})[key] = value
