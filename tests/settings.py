"""Settings for the test suite.

DATABASE_URL selects the database (SQLite by default, e.g. postgres://postgres@127.0.0.1/test);
REDIS_URL the Redis that delivery and end-to-end tests use, TEST_CHANNEL_LAYER the channel layer
(memory by default; redis or redis-pubsub on REDIS_URL).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dj_database_url
import django

from django_vendor_notifications.layers import redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent

SECRET_KEY = "tests-only-secret-key-that-is-long-enough-for-hs256"
DEBUG = False
USE_TZ = True
TIME_ZONE = "Europe/Berlin"
# Not "*": with DEBUG off that would make the origin validator accept any page (check W002).
ALLOWED_HOSTS = ["testserver", "localhost", "127.0.0.1"]

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_vendor_notifications",
    "tests.testapp",
]

MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
ROOT_URLCONF = "tests.urls"
if django.VERSION >= (6, 1):
    # Django 6.1 deprecates EMAIL_BACKEND for MAILERS (the test runner makes each one locmem).
    MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
ASGI_APPLICATION = "tests.asgi.application"

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'test.sqlite3'}")
    )
}
# End-to-end tests run a server in another process, which must open the same test database:
# an in-memory SQLite database would be invisible to it. TEST_DB_SUFFIX keeps concurrent runs
# (tox envs, several checkouts) apart.
TEST_DB_SUFFIX = os.environ.get("TEST_DB_SUFFIX", "")
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test-db{TEST_DB_SUFFIX}.sqlite3")}
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_vendor_notifications{TEST_DB_SUFFIX}"}
# Persistent connections with health checks, as docs/deployment.md recommends (the database
# outage test needs them: a stale connection must be replaced after a restart).
if os.environ.get("TEST_CONN_MAX_AGE"):
    DATABASES["default"]["CONN_MAX_AGE"] = int(os.environ["TEST_CONN_MAX_AGE"])
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
# Seconds a Redis read may take. redis-py >= 8 defaults socket_timeout to 5 s, which is also how
# long channels-redis's RedisChannelLayer blocks in BZPOPMIN (brpop_timeout) while a socket is
# idle: the client gives up first and receive() raises TimeoutError, killing the consumer after
# about five idle seconds (redis-py issue 4091). Anything comfortably above brpop_timeout keeps
# idle sockets alive and still detects a dead Redis. tests/test_delivery.py proves both.

CHANNEL_LAYER_BACKENDS = {
    "memory": "channels.layers.InMemoryChannelLayer",
    "redis": "channels_redis.core.RedisChannelLayer",
    "redis-pubsub": "channels_redis.pubsub.RedisPubSubChannelLayer",
}


def channel_layer_config(
    kind: str, *, prefix: str | None = None, url: str | list[str] = REDIS_URL, **config: Any
) -> dict[str, Any]:
    """CHANNEL_LAYERS["default"] for ``kind`` (a key of CHANNEL_LAYER_BACKENDS); a list of URLs
    shards the layer across those Redis servers.

    Redis keys and pub/sub channels start with ``prefix``, so concurrent runs on one Redis never
    see each other's messages; processes that must talk to each other (a test server and the
    process that notifies it) have to share it.
    """
    if kind not in CHANNEL_LAYER_BACKENDS:
        known = list(CHANNEL_LAYER_BACKENDS)
        raise ValueError(f"Unknown channel layer {kind!r}; use one of {known}.")
    if kind == "memory":
        return {"BACKEND": CHANNEL_LAYER_BACKENDS[kind]}
    # The package's own helper, so the suite runs on the configuration the docs recommend.
    return redis_channel_layer(
        *([url] if isinstance(url, str) else url),
        pubsub=kind == "redis-pubsub",
        prefix=prefix or f"vn-test{TEST_DB_SUFFIX}-{os.getpid()}",
        **config,
    )


# TEST_CHANNEL_LAYER: memory (default), redis or redis-pubsub. TEST_CHANNEL_LAYER_PREFIX: the
# Redis prefix; without it each process gets its own, so set it for processes that talk.
# TEST_CHANNEL_LAYER_CONFIG: a JSON object of extra CONFIG keys for a server process a test
# starts (e.g. {"capacity": 5} or {"group_expiry": 3}); unset, it changes nothing.
# TEST_REDIS_URLS: comma-separated Redis URLs to shard the layer across (instead of REDIS_URL).
CHANNEL_LAYERS = {
    "default": channel_layer_config(
        os.environ.get("TEST_CHANNEL_LAYER", "memory"),
        prefix=os.environ.get("TEST_CHANNEL_LAYER_PREFIX") or None,
        url=os.environ["TEST_REDIS_URLS"].split(",") if os.environ.get("TEST_REDIS_URLS")
        else REDIS_URL,
        **json.loads(os.environ.get("TEST_CHANNEL_LAYER_CONFIG") or "{}"),
    )
}

SIMPLE_JWT = {"SIGNING_KEY": SECRET_KEY}
# The HTTP API's OpenAPI document (tests/urls.py serves it at /api/schema/).
REST_FRAMEWORK = {"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
SPECTACULAR_SETTINGS = {"TITLE": "django-vendor-notifications", "VERSION": "1"}

VENDOR_NOTIFICATIONS = {
    "VENDOR_MODEL": "testapp.Vendor",
    "VENDOR_OWNER_FIELD": "user",
    "VENDOR_STAFF_LOOKUP": "staff__user",
    "STAFF_PERMISSION_LOOKUP": "staff__role__can_view_notifications",
}

# A server process a test starts can get its own VENDOR_NOTIFICATIONS keys (a JSON object), and
# with TEST_LOG_LEVEL every logger's records on stderr, so the test can read all it logged.
VENDOR_NOTIFICATIONS.update(json.loads(os.environ.get("TEST_VENDOR_NOTIFICATIONS") or "{}"))
if os.environ.get("TEST_LOG_LEVEL"):
    LOGGING = {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {"stderr": {"class": "logging.StreamHandler"}},
        "root": {"handlers": ["stderr"], "level": os.environ["TEST_LOG_LEVEL"]},
    }
