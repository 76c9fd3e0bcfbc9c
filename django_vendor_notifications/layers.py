"""Channel-layer settings that keep notification sockets healthy on channels-redis.

    CHANNEL_LAYERS = {"default": redis_channel_layer("redis://127.0.0.1:6379/0")}

channels-redis's receive blocks on Redis for 5 seconds at a time; with redis-py 8 a connection
whose ``socket_timeout`` is not above that raises TimeoutError on an idle socket (redis-py
issue 4091). These defaults raise it, bound connection attempts so a connect or a publish never
hangs while Redis is away, and check pooled connections after idle periods.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

CORE_BACKEND = "channels_redis.core.RedisChannelLayer"
PUBSUB_BACKEND = "channels_redis.pubsub.RedisPubSubChannelLayer"

#: Connection options added to every host (each may be overridden per call).
HOST_DEFAULTS: dict[str, Any] = {
    # Above channels-redis's 5 s blocking receive, so an idle socket never times out.
    "socket_timeout": 30,
    # A Redis that does not answer fails fast instead of hanging a connect or a publish.
    "socket_connect_timeout": 2,
    # Ping a pooled connection that sat idle before reusing it.
    "health_check_interval": 15,
}


def redis_channel_layer(
    *hosts: str | dict[str, Any],
    pubsub: bool = False,
    host_options: dict[str, Any] | None = None,
    **config: Any,
) -> dict[str, Any]:
    """A CHANNEL_LAYERS entry for channels-redis on ``hosts``.

    A host is a URL (``redis://``, ``rediss://`` for TLS, ``unix://``) or a dict as channels-redis
    takes it, e.g. Redis Sentinel: ``{"master_name": "mymaster", "sentinels": [("s1", 26379)]}``.
    Several hosts shard the layer. ``pubsub`` selects RedisPubSubChannelLayer; ``host_options``
    are extra redis-py connection options for every host (e.g. ``ssl_cert_reqs``); other keyword
    arguments go to the layer's CONFIG (``prefix``, ``capacity``, ``group_expiry``...).
    """
    if not hosts:
        raise ValueError("Give at least one Redis URL or host dict.")
    entries = [
        {
            **HOST_DEFAULTS,
            **({"address": host} if isinstance(host, str) else host),
            **(host_options or {}),
        }
        for host in hosts
    ]
    return {
        "BACKEND": PUBSUB_BACKEND if pubsub else CORE_BACKEND,
        "CONFIG": {"hosts": entries, **config},
    }


def is_layer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the channel layer (Redis) is unreachable or too slow."""
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)):
        return True
    # redis-py's errors do not derive from OSError; match them without importing redis,
    # which is an optional dependency.
    return any(cls.__module__.startswith("redis") for cls in type(exc).__mro__)


def receives_through_one_read(layer: Any) -> bool:
    """Whether ``layer`` receives every channel of the process through one shared blocking
    read (channels-redis's RedisChannelLayer). Cancelling a receive that holds that read is
    not safe: redis-py swallows the cancellation to keep the reply, and the task never ends."""
    return CORE_BACKEND in (f"{cls.__module__}.{cls.__qualname__}" for cls in type(layer).__mro__)


def shard_of(layer: Any, name: str) -> int:
    """The index of the Redis server that holds group ``name`` on a sharded channels-redis
    layer (``hosts`` with several entries); 0 for an unsharded or any other layer."""
    if hasattr(layer, "ring_size") and callable(getattr(layer, "consistent_hash", None)):
        return int(layer.consistent_hash(name))  # RedisChannelLayer
    shards = getattr(layer, "_shards", None)
    if isinstance(shards, list) and len(shards) > 1 and hasattr(layer, "_get_shard"):
        return shards.index(layer._get_shard(name))  # RedisPubSubChannelLayer
    return 0


def shard_count(layer: Any) -> int:
    """How many Redis servers ``layer`` spreads its groups over (1 for any other layer)."""
    ring_size = getattr(layer, "ring_size", None)
    if isinstance(ring_size, int):
        return max(ring_size, 1)
    shards = getattr(layer, "_shards", None)
    return len(shards) if isinstance(shards, list) and shards else 1


def one_name_on_each_shard(layer: Any, make_name: Callable[[], str]) -> list[str]:
    """Names from ``make_name`` (random ones) until each shard of ``layer`` holds one."""
    names: dict[int, str] = {}
    while len(names) < shard_count(layer):
        name = make_name()
        names.setdefault(shard_of(layer, name), name)
    return [names[index] for index in sorted(names)]
