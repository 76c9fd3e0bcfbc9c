"""Settings of the example project: a small marketplace wired to django-vendor-notifications.

With no environment it runs on SQLite and the in-memory channel layer, which is enough for one
``runserver`` process. Environment variables switch it to what production needs:

- ``DATABASE_URL``: ``sqlite:///path`` or ``postgres://user:password@host:5432/name``.
- ``REDIS_URL``: e.g. ``redis://127.0.0.1:6379/0``; pushes then go through Redis and reach
  every server process (and ``manage.py send_notification`` run from another shell).
- ``REDIS_PREFIX``: the channel layer's key prefix, to share one Redis between projects.
- ``DJANGO_DEBUG`` (default on), ``DJANGO_SECRET_KEY``, ``DJANGO_ALLOWED_HOSTS`` (comma-separated).
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url

from django_vendor_notifications.layers import redis_channel_layer

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# A demo key; set DJANGO_SECRET_KEY anywhere that is not your own machine.
SECRET_KEY = os.environ.get(
    "DJANGO_SECRET_KEY", "demo-only-secret-key-change-me-it-signs-the-demo-jwts"
)
DEBUG = env_bool("DJANGO_DEBUG", True)
ALLOWED_HOSTS = [
    host.strip()
    for host in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")
    if host.strip()
]

INSTALLED_APPS = [
    # First, so its runserver (which serves HTTP and WebSocket) replaces Django's.
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "channels",
    "django_vendor_notifications",
    "marketplace",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "exampleproject.urls"
ASGI_APPLICATION = "exampleproject.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        # Keep the connection of the thread that serves the sockets' database work instead of
        # opening a new one for every socket (on PostgreSQL that alone made connects about 3x
        # slower); health checks replace a connection the server dropped. See
        # docs/deployment.md#database-connections.
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    # A database that hangs must not hold the server: give up connecting after 5 s and any
    # statement after 5 s, below the sockets' own DATABASE_TIMEOUT (10 s). See
    # docs/deployment.md#database-outages.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"connect_timeout": 5, "options": "-c statement_timeout=5000"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL")
CHANNEL_LAYERS: dict[str, Any]
if REDIS_URL:
    # redis_channel_layer() raises redis-py's socket_timeout above channels-redis's 5 s blocking
    # receive; without that, idle sockets time out under redis-py 8.
    CHANNEL_LAYERS = {
        "default": redis_channel_layer(
            REDIS_URL, prefix=os.environ.get("REDIS_PREFIX", "exampleproject")
        )
    }
else:
    # One process only: a management command in another process cannot reach it.
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "Europe/Berlin"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # The OpenAPI document at /api/schema/ (the notifications API's and the demo's views).
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Example marketplace: vendor notifications",
    "DESCRIPTION": "The HTTP API of django-vendor-notifications (docs/rest.md).",
    "VERSION": "1",
}

SIMPLE_JWT = {
    # Long enough to play with the demo; the page refreshes it on close code 4001 anyway.
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=60),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
}

VENDOR_NOTIFICATIONS = {
    "VENDOR_MODEL": "marketplace.Vendor",
    "ACCESS_POLICY": "marketplace.notification_policy.MarketplaceAccessPolicy",
    "CATEGORIES": [
        "Order Notifications",
        "Payment Notifications",
        "General Notifications",
    ],
    # The demo sends its orders with collapse_key="new-order": one "N new orders" item.
    "COLLAPSE": True,
}

# Django's console logging, with access tokens redacted: runserver logs every HTTP request
# with its query string, so a tab opened on the socket URL with ?token= would otherwise
# print a live token (docs/security.md#tokens-and-logs).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
        "redact_tokens": {"()": "django_vendor_notifications.redaction.RedactTokens"},
    },
    "handlers": {
        "console": {
            "level": "INFO",
            "filters": ["require_debug_true", "redact_tokens"],
            "class": "logging.StreamHandler",
        },
    },
    "loggers": {"django": {"handlers": ["console"], "level": "INFO"}},
}
