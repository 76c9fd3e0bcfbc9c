"""Notice when the channel layer forgot this process's group memberships.

Group memberships live in Redis. When Redis restarts without persistence, is flushed, or fails
over to a replica that had not caught up, they are gone, yet a receive loop carries on against
the new Redis without an error: the process's sockets are connected and deaf. Whether anything
notices depends on luck (redis-py retries a command across a short outage by default).

So each hub (one per channel layer per process) keeps a canary: a channel of its own in a
group of its own on each Redis shard (a sharded layer keeps each group on one of its hosts, and
a shard that restarts forgets only its own groups while the receive loop, on another shard,
sees nothing). Every LAYER_CHECK_INTERVAL seconds, while the hub holds groups, it sends the
canary through each of its groups and waits up to LAYER_TIMEOUT for all to come back. A canary
that does not means the layer lost memberships or could not deliver: the hub joins each of its
groups again, once per group whatever the number of sockets, and the sockets catch up from the
database (or, if Redis is still away, close with 4013 so the clients reconnect and sync).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from .conf import app_settings
from .layers import is_layer_failure, one_name_on_each_shard

logger = logging.getLogger(__name__)

CANARY_EVENT = "vendor_notifications.canary"


class Watchdog:
    """The canary of one hub."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.groups = one_name_on_each_shard(
            layer, lambda: f"vendor_notifications_canary_{uuid.uuid4().hex}"
        )
        self.channel: str | None = None
        self.joined = False
        self.joining: asyncio.Future[bool] | None = None
        self.sent = 0
        #: How many times the canary went missing (for tests and logs).
        self.misses = 0

    async def round(self) -> bool:
        """One probe: False when the canary was lost (the hub should heal), else True.

        The canary joins once and again only after a miss: a join issued every round could,
        retried by redis-py across a restart, land in the new Redis and hide that the other
        memberships are gone.
        """
        if not self.joined:
            self.joined = await self.join()
            return True
        try:
            returned = await self.canary_returns()
        except Exception:
            # The watchdog must outlive whatever the layer throws at it.
            logger.exception("The channel-layer probe failed unexpectedly.")
            returned = False
        if not returned:
            self.misses += 1
            logger.warning(
                "The channel layer lost or could not deliver a probe; re-joining this "
                "process's notification groups."
            )
            self.joined = await self.join()
        return returned

    async def ensure_joined(self) -> None:
        """Join the canary before the hub joins a group: a membership older than the canary's
        could be lost in a restart that the canary, joined after it, would not notice."""
        if self.joined:
            return
        if self.joining is None or self.joining.done():
            self.joining = asyncio.ensure_future(self.join())
        self.joined = await asyncio.shield(self.joining)

    async def join(self) -> bool:
        """Put the canary in its group; whether that worked within LAYER_TIMEOUT."""
        try:
            if self.channel is None:
                # The layer's default prefix: channels-redis's core layer receives every
                # channel of that prefix through one list, so the canary tests the very loop
                # the hub depends on.
                self.channel = await self.layer.new_channel()
            channel = self.channel
            await asyncio.wait_for(
                asyncio.gather(*(self.layer.group_add(group, channel) for group in self.groups)),
                app_settings.LAYER_TIMEOUT,
            )
        except Exception as exc:
            if not is_layer_failure(exc):
                logger.exception("The channel-layer probe could not join its group.")
            return False
        return True

    async def canary_returns(self) -> bool:
        """Send the canary through each group; whether all came back within LAYER_TIMEOUT."""
        self.sent += 1
        try:
            await asyncio.wait_for(self.exchange(self.sent), app_settings.LAYER_TIMEOUT)
        except asyncio.TimeoutError:
            return False
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            return False
        return True

    async def exchange(self, number: int) -> None:
        for group in self.groups:
            await self.layer.group_send(
                group, {"type": CANARY_EVENT, "number": number, "group": group}
            )
        missing = set(self.groups)
        while missing:
            message = await self.layer.receive(self.channel)
            # An earlier canary that came back late is not this one.
            if message.get("number") == number:
                missing.discard(message.get("group"))

    async def close(self) -> None:
        if self.channel is not None and self.joined:
            self.joined = False
            with contextlib.suppress(Exception):
                channel = self.channel
                await asyncio.wait_for(
                    asyncio.gather(
                        *(self.layer.group_discard(group, channel) for group in self.groups)
                    ),
                    app_settings.LAYER_TIMEOUT,
                )
