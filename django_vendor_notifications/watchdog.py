"""Notice when the channel layer forgot this process's sockets, and have them heal.

Group memberships live in Redis. When Redis restarts without persistence, is flushed, or fails
over to a replica that had not caught up, they are gone, yet a socket's receive loop carries on
against the new Redis without an error: the socket is connected and deaf. Whether it notices
depends on luck (redis-py retries a command across a short outage by default).

So each server process keeps one canary: a channel of its own in a group of its own. Every
LAYER_CHECK_INTERVAL seconds, while the process has sockets open, it sends the canary through
its group and waits up to LAYER_TIMEOUT for it. A canary that does not come back means the
layer lost memberships or could not deliver: every open socket of the process re-joins its
groups and catches up from the database (or, if Redis is still away, closes with 4013 so the
client reconnects and syncs). One publish and one receive per process per interval, whatever
the number of sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
import weakref
from typing import Any, Protocol

from channels.layers import get_channel_layer

from .conf import app_settings
from .layers import is_layer_failure

logger = logging.getLogger(__name__)

CANARY_EVENT = "vendor_notifications.canary"


class Healable(Protocol):
    async def heal(self) -> None:
        """Re-join the socket's groups and catch up on what it may have missed."""


class Watchdog:
    """The canary of one channel layer in one event loop."""

    def __init__(self, alias: str) -> None:
        self.alias = alias
        self.sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        self.task: asyncio.Task[None] | None = None
        self.group = f"vendor_notifications_canary_{uuid.uuid4().hex}"
        self.channel: str | None = None
        self.sent = 0
        #: How many times the canary went missing (for tests and logs).
        self.misses = 0

    def watch(self, socket: Healable) -> None:
        self.sockets.add(socket)
        if self.task is None or self.task.done():
            self.task = asyncio.get_running_loop().create_task(self.run())

    def forget(self, socket: Healable) -> None:
        self.sockets.discard(socket)
        if not self.sockets and self.task is not None:
            # Nothing left to watch: no task outlives the process's last socket.
            self.task.cancel()
            self.task = None

    async def run(self) -> None:
        layer = get_channel_layer(self.alias)
        loop = asyncio.get_running_loop()
        # The canary joins once and again only after a miss or when group_expiry would drop
        # it: a join issued every round could, retried by redis-py across a restart, land in
        # the new Redis and hide that the sockets' memberships are gone.
        expiry = getattr(layer, "group_expiry", None)
        rejoin_every = expiry / 2 if expiry else math.inf
        joined_at: float | None = None
        try:
            while self.sockets and (interval := app_settings.LAYER_CHECK_INTERVAL):
                await asyncio.sleep(interval)
                if not self.sockets:
                    break
                if joined_at is None or loop.time() - joined_at > rejoin_every:
                    joined_at = loop.time() if await self.join(layer) else None
                    continue
                try:
                    returned = await self.canary_returns(layer)
                except Exception:
                    # The watchdog must outlive whatever the layer throws at it.
                    logger.exception("The channel-layer probe failed unexpectedly.")
                    returned = False
                if not returned:
                    self.misses += 1
                    logger.warning(
                        "The channel layer lost or could not deliver a probe; "
                        "re-joining the groups of %d notification socket(s).",
                        len(self.sockets),
                    )
                    await self.heal_all()
                    joined_at = loop.time() if await self.join(layer) else None
        finally:
            if self.channel is not None:
                with contextlib.suppress(Exception):
                    await layer.group_discard(self.group, self.channel)

    async def join(self, layer: Any) -> bool:
        """Put the canary in its group; whether that worked within LAYER_TIMEOUT."""
        try:
            if self.channel is None:
                # The layer's default prefix: channels-redis's core layer receives every
                # channel of that prefix through one list, so the canary tests the very loop
                # the sockets depend on (another prefix would even compete with it).
                self.channel = await layer.new_channel()
            await asyncio.wait_for(
                layer.group_add(self.group, self.channel), app_settings.LAYER_TIMEOUT
            )
        except Exception as exc:
            if not is_layer_failure(exc):
                logger.exception("The channel-layer probe could not join its group.")
            return False
        return True

    async def canary_returns(self, layer: Any) -> bool:
        """Send the canary through its group; whether it came back within LAYER_TIMEOUT."""
        self.sent += 1
        try:
            await asyncio.wait_for(self.exchange(layer, self.sent), app_settings.LAYER_TIMEOUT)
        except asyncio.TimeoutError:
            return False
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            return False
        return True

    async def exchange(self, layer: Any, number: int) -> None:
        await layer.group_send(self.group, {"type": CANARY_EVENT, "number": number})
        while True:
            message = await layer.receive(self.channel)
            # An earlier canary that came back late is not this one.
            if message.get("number") == number:
                return

    async def heal_all(self) -> None:
        results = await asyncio.gather(
            *(socket.heal() for socket in list(self.sockets)), return_exceptions=True
        )
        for result in results:
            if isinstance(result, Exception):
                logger.warning("A notification socket failed to heal: %r", result)


_watchdogs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, Watchdog]] = (
    weakref.WeakKeyDictionary()
)


def watchdog_for(alias: str) -> Watchdog:
    """The running event loop's watchdog of the channel layer ``alias``."""
    per_loop = _watchdogs.setdefault(asyncio.get_running_loop(), {})
    if alias not in per_loop:
        per_loop[alias] = Watchdog(alias)
    return per_loop[alias]
