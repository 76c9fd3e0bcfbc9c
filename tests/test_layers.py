"""redis_channel_layer(): the CHANNEL_LAYERS entry the docs recommend, for URLs, TLS, Sentinel;
and where a sharded layer puts a group."""

from __future__ import annotations

import pytest
from channels.layers import InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer
from channels_redis.pubsub import RedisPubSubChannelLayer
from channels_redis.utils import _consistent_hash, create_pool
from redis.asyncio.sentinel import SentinelConnectionPool

from django_vendor_notifications.layers import (
    CORE_BACKEND,
    HOST_DEFAULTS,
    PUBSUB_BACKEND,
    one_name_on_each_shard,
    redis_channel_layer,
    shard_count,
    shard_of,
)


def test_a_url_gets_the_timeouts_that_keep_idle_sockets_healthy() -> None:
    layer = redis_channel_layer("redis://10.0.0.5:6379/2", prefix="shop", capacity=500)

    assert layer["BACKEND"] == CORE_BACKEND
    assert layer["CONFIG"] == {
        "hosts": [{"address": "redis://10.0.0.5:6379/2", **HOST_DEFAULTS}],
        "prefix": "shop",
        "capacity": 500,
    }
    # Above channels-redis's 5 s blocking receive (redis-py 8 defaults to 5 s).
    assert HOST_DEFAULTS["socket_timeout"] > 5


def test_tls_options_reach_every_host_and_pubsub_is_selectable() -> None:
    layer = redis_channel_layer(
        "rediss://a.example:6380/0",
        "rediss://b.example:6380/0",
        pubsub=True,
        host_options={"ssl_cert_reqs": "required", "socket_timeout": 60},
    )

    assert layer["BACKEND"] == PUBSUB_BACKEND
    hosts = layer["CONFIG"]["hosts"]
    assert [host["address"] for host in hosts] == ["rediss://a.example:6380/0",
                                                    "rediss://b.example:6380/0"]
    assert all(host["ssl_cert_reqs"] == "required" for host in hosts)
    assert all(host["socket_timeout"] == 60 for host in hosts)


def test_a_sentinel_host_becomes_a_sentinel_pool_with_the_same_timeouts() -> None:
    sentinel = {"master_name": "mymaster", "sentinels": [("sentinel-1", 26379)]}

    layer = redis_channel_layer(sentinel)

    (host,) = layer["CONFIG"]["hosts"]
    assert host == {**HOST_DEFAULTS, **sentinel}
    # channels-redis builds its pool from this dict exactly as it will in a server process.
    pool = create_pool(host)
    assert isinstance(pool, SentinelConnectionPool)
    assert pool.service_name == "mymaster"
    assert pool.connection_kwargs["socket_timeout"] == HOST_DEFAULTS["socket_timeout"]


def test_no_host_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="at least one Redis"):
        redis_channel_layer()


@pytest.mark.parametrize("backend", [RedisChannelLayer, RedisPubSubChannelLayer])
async def test_one_name_lands_on_each_shard_of_a_sharded_layer(backend: type) -> None:
    hosts = ["redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1", "redis://127.0.0.1:6379/2"]
    layer = backend(**redis_channel_layer(*hosts)["CONFIG"])
    counter = iter(range(10_000))
    names = one_name_on_each_shard(layer, lambda: f"canary-{next(counter)}")
    assert shard_count(layer) == 3
    # channels-redis's own placement: the group's key (or subscription) lives on that shard.
    assert [_consistent_hash(name, 3) for name in names] == [0, 1, 2]
    assert [shard_of(layer, name) for name in names] == [0, 1, 2]


def test_an_unsharded_layer_has_one_shard() -> None:
    layer = InMemoryChannelLayer()
    assert shard_count(layer) == 1
    assert one_name_on_each_shard(layer, lambda: "canary") == ["canary"]
