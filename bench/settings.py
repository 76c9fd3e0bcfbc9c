"""Settings of the benchmark servers and of the harness process (which seeds and publishes).

The test suite's settings (the same test app, vendor model and access policy), with DEBUG off
(DEBUG keeps every query in memory, which would show up as a leak), the bench's own ASGI app
and no per-user socket cap: the fan-out scenarios open thousands of sockets of one vendor.
Environment: DATABASE_URL, REDIS_URL, TEST_CHANNEL_LAYER (redis or redis-pubsub) and
TEST_CHANNEL_LAYER_PREFIX, as for the end-to-end tests.
"""

from __future__ import annotations

from datetime import timedelta

from tests.settings import *  # noqa: F403
from tests.settings import SIMPLE_JWT, VENDOR_NOTIFICATIONS

DEBUG = False
ASGI_APPLICATION = "bench.asgi.application"
# Tokens are minted once per run, which outlasts simplejwt's default five minutes.
SIMPLE_JWT = {**SIMPLE_JWT, "ACCESS_TOKEN_LIFETIME": timedelta(hours=1)}
VENDOR_NOTIFICATIONS = {**VENDOR_NOTIFICATIONS, "MAX_SOCKETS_PER_USER": 1_000_000}
# Connections are reused, as a deployment would configure them.
DATABASES["default"]["CONN_MAX_AGE"] = 60  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
