"""Fixtures shared by the suite: users, vendors, staff, tokens and a connected communicator."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from django_vendor_notifications.models import Notification
from tests.testapp.models import Role, Staff, Vendor

User = get_user_model()

#: Checks every frame the suite sends and receives against docs/asyncapi.yaml.
pytest_plugins = ["tests.frames"]


def make_user(username: str | None = None, **extra: Any) -> Any:
    return User.objects.create_user(username=username or f"u-{uuid.uuid4().hex[:10]}", **extra)


def access_token_for(user: Any) -> str:
    return str(AccessToken.for_user(user))


def refresh_token_for(user: Any) -> str:
    return str(RefreshToken.for_user(user))


@pytest.fixture
def owner(db: Any) -> Any:
    return make_user("owner")


@pytest.fixture
def vendor(owner: Any) -> Vendor:
    return Vendor.objects.create(user=owner, name="Vendor A")


@pytest.fixture
def other_vendor(db: Any) -> Vendor:
    return Vendor.objects.create(user=make_user("other-owner"), name="Vendor B")


@pytest.fixture
def staff(vendor: Vendor) -> Any:
    """A staff member of ``vendor`` whose role may read notifications."""
    user = make_user("staff")
    role = Role.objects.create(name="manager", can_view_notifications=True)
    Staff.objects.create(vendor=vendor, user=user, role=role)
    return user


@pytest.fixture
def staff_without_permission(vendor: Vendor) -> Any:
    user = make_user("packer")
    role = Role.objects.create(name="packer", can_view_notifications=False)
    Staff.objects.create(vendor=vendor, user=user, role=role)
    return user


@pytest.fixture
def customer(db: Any) -> Any:
    return make_user("customer")


@pytest.fixture
def access_token(owner: Any, vendor: Vendor) -> str:
    return access_token_for(owner)


@pytest.fixture
def make_notification() -> Callable[..., Notification]:
    def make(vendor: Vendor, message: str = "hello", **fields: Any) -> Notification:
        return Notification.objects.create(vendor=vendor, message=message, **fields)

    return make


def websocket_application() -> Any:
    from tests.asgi import application

    return application


def communicator_for(
    token: str | None, path: str = "/v1/ws/notifications/"
) -> WebsocketCommunicator:
    query = f"?token={token}" if token is not None else ""
    return WebsocketCommunicator(websocket_application(), f"{path}{query}")


@pytest.fixture
async def communicator(
    access_token: str, channel_layer: Any
) -> AsyncIterator[WebsocketCommunicator]:
    """A connected owner socket whose first frame has been read (as ``communicator.first``).

    It uses the ``channel_layer`` fixture's in-memory layer, so a test that sends to its groups
    reaches it whatever order the fixtures are listed in.
    """
    communicator = communicator_for(access_token)
    connected, _ = await communicator.connect()
    assert connected
    communicator.first = await communicator.receive_json_from(timeout=5)  # type: ignore[attr-defined]
    yield communicator
    await communicator.disconnect()


async def settle(communicator: WebsocketCommunicator) -> None:
    """Wait until a connected socket has finished what its connect left for after the first
    frame (joining groups, a catch-up from the database by id).

    Two round trips: the socket handles messages in order, and what its connect queued comes
    before the second request at the latest.
    """
    for _ in range(2):
        await communicator.send_json_to({"action": "get_unread_counts"})
        frame = await communicator.receive_json_from(timeout=5)
        assert frame["action"] == "get_unread_counts", frame


def vendor_settings(**overrides: Any) -> override_settings:
    """override_settings for some VENDOR_NOTIFICATIONS keys, keeping the others."""
    return override_settings(VENDOR_NOTIFICATIONS={**settings.VENDOR_NOTIFICATIONS, **overrides})


IN_MEMORY_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def channel_layer() -> Iterator[Any]:
    """A fresh in-memory default layer, whatever TEST_CHANNEL_LAYER selects.

    Unit tests look inside it (its groups), which only the in-memory layer allows; it is
    emptied afterwards so no group outlives its test.
    """
    with override_settings(CHANNEL_LAYERS=IN_MEMORY_LAYERS):
        layer = get_channel_layer()
        yield layer
        async_to_sync(layer.flush)()


@pytest.fixture
def simple_jwt_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., None]]:
    """Override keys of SIMPLE_JWT for the rest of the test.

    simplejwt rebuilds ``rest_framework_simplejwt.settings.api_settings`` on setting_changed,
    but ``authentication`` and ``tokens`` imported the old object by name, so without
    re-pointing them an override would silently not apply.
    """
    from rest_framework_simplejwt import authentication, tokens
    from rest_framework_simplejwt import settings as jwt_settings

    overrides: list[override_settings] = []

    def apply(**keys: Any) -> None:
        override = override_settings(SIMPLE_JWT={**settings.SIMPLE_JWT, **keys})
        override.enable()
        overrides.append(override)
        monkeypatch.setattr(authentication, "api_settings", jwt_settings.api_settings)
        monkeypatch.setattr(tokens, "api_settings", jwt_settings.api_settings)

    yield apply
    for override in reversed(overrides):
        override.disable()


async def connect(token: str | None) -> tuple[WebsocketCommunicator, dict[str, Any]]:
    """A connected socket for ``token`` and its first (unread_notifications) frame."""
    communicator = communicator_for(token)
    connected, _ = await communicator.connect()
    assert connected
    return communicator, await communicator.receive_json_from(timeout=5)


# --- one labelled summary line per run (make test runs the suite once per database) ---------

_RUN_STARTED = time.monotonic()
_EXIT_STATUS = pytest.StashKey[int]()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    session.config.stash[_EXIT_STATUS] = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """With TEST_RUN_LABEL set (by make), end the output with one line naming the run.

    Printed after pytest's own summary, so a run on SQLite and one on PostgreSQL each end
    with a line that says which database it was and how it went.
    """
    label = os.environ.get("TEST_RUN_LABEL")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if not label or reporter is None or _EXIT_STATUS not in config.stash:
        return
    counts = {
        outcome: len([r for r in reporter.stats.get(outcome, []) if r.when in ("call", "setup")])
        for outcome in ("passed", "failed", "skipped", "error")
    }
    status = config.stash[_EXIT_STATUS]
    verdict = "PASSED" if status == 0 else f"FAILED (exit {status})"
    minutes, seconds = divmod(round(time.monotonic() - _RUN_STARTED), 60)
    print(
        f"== {label}: {verdict}: {counts['passed']} passed, {counts['failed']} failed, "
        f"{counts['error']} errors, {counts['skipped']} skipped in {minutes}m{seconds:02d}s"
    )
