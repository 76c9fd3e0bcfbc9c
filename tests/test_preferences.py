"""Preferences per user and category: the sparse rule, the socket's actions, the HTTP API, and
that a muted category is not pushed live to that user while it stays stored and counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.urls import reverse
from rest_framework.test import APIClient

from django_vendor_notifications import preferences, services
from django_vendor_notifications.models import NotificationPreference
from django_vendor_notifications.protocol import ErrorCode
from tests.conftest import access_token_for, connect, settle, vendor_settings
from tests.test_queries import OWNER_CONNECT_QUERIES, connect_counting

ORDERS = "Order Notifications"
GENERAL = "General Notifications"
PAYOUTS = "Payouts"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def preferences_on() -> Iterator[None]:
    with vendor_settings(PREFERENCES=True, UNMUTABLE_CATEGORIES=[PAYOUTS]):
        yield


# --- the rule ------------------------------------------------------------------------------


def test_a_category_without_a_choice_has_its_default_or_live() -> None:
    with vendor_settings(PREFERENCE_DEFAULTS={ORDERS: "digest"}):
        assert preferences.effective({}) == {ORDERS: "digest"}
        assert preferences.effective({ORDERS: "live", GENERAL: "muted"}) == {
            GENERAL: "muted",
            ORDERS: "live",
        }
        assert preferences.quiet({}) == {ORDERS}
    assert preferences.effective({}) == {}
    assert preferences.quiet({}) == frozenset()


def test_known_categories_are_listed_as_live() -> None:
    with vendor_settings(CATEGORIES=[GENERAL, ORDERS]):
        assert preferences.effective({ORDERS: "muted"}) == {GENERAL: "live", ORDERS: "muted"}


def test_an_unmutable_category_is_live_whatever_is_stored() -> None:
    with vendor_settings(UNMUTABLE_CATEGORIES=[PAYOUTS]):
        assert preferences.effective({PAYOUTS: "muted"}) == {PAYOUTS: "live"}
        assert preferences.quiet({PAYOUTS: "muted"}) == frozenset()


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        (None, "invalid_field"),
        ({}, "invalid_field"),
        ([ORDERS], "invalid_field"),
        ({ORDERS: "silent"}, "invalid_field"),
        ({ORDERS: True}, "invalid_field"),
        ({"": "muted"}, "invalid_field"),
        ({"x" * 101: "muted"}, "invalid_field"),
        ({"a\x00b": "muted"}, "invalid_field"),
        ({PAYOUTS: "muted"}, "cannot_mute"),
        ({PAYOUTS: "digest"}, "cannot_mute"),
    ],
    ids=repr,
)
def test_invalid_changes_are_refused(changes: Any, code: str) -> None:
    with (
        vendor_settings(UNMUTABLE_CATEGORIES=[PAYOUTS]),
        pytest.raises(preferences.PreferenceError) as raised,
    ):
        preferences.validated(changes)
    assert raised.value.code == code


def test_unknown_category_is_refused_when_categories_are_listed() -> None:
    with vendor_settings(CATEGORIES=[GENERAL]):
        assert preferences.validated({GENERAL: "muted"}) == {GENERAL: "muted"}
        with pytest.raises(preferences.PreferenceError):
            preferences.validated({ORDERS: "muted"})


def test_only_choices_are_stored_and_null_removes_one(owner: Any) -> None:
    assert preferences.change(owner.pk, {ORDERS: "muted", GENERAL: "digest"}) == {
        ORDERS: "muted",
        GENERAL: "digest",
    }
    assert preferences.change(owner.pk, {ORDERS: "live", GENERAL: None}) == {ORDERS: "live"}
    assert list(NotificationPreference.objects.values_list("category", "delivery")) == [
        (ORDERS, "live")
    ]
    # Unmutable categories may be set back to live.
    with vendor_settings(UNMUTABLE_CATEGORIES=[PAYOUTS]):
        assert preferences.validated({PAYOUTS: "live", ORDERS: None})


# --- over the socket -----------------------------------------------------------------------


async def notify(vendor: Any, message: str, category: str) -> int:
    notification = await database_sync_to_async(services.notify)(vendor, message, category=category)
    return int(notification.pk)


async def ask(socket: WebsocketCommunicator, message: dict[str, Any]) -> dict[str, Any]:
    await socket.send_json_to(message)
    frame: dict[str, Any] = await socket.receive_json_from(timeout=5)
    return frame


async def socket_of(user: Any, choices: dict[str, str]) -> WebsocketCommunicator:
    """A settled socket of ``user``, who chose ``choices`` before connecting."""
    await database_sync_to_async(preferences.change)(user.pk, choices)
    socket, _ = await connect(access_token_for(user))
    await settle(socket)
    return socket


@pytest.mark.invalid_client_frames
async def test_preference_actions_are_unknown_while_preferences_are_off(
    access_token: str, channel_layer: Any
) -> None:
    socket, _ = await connect(access_token)
    for action in ("get_preferences", "set_preferences"):
        reply = await ask(socket, {"action": action, "preferences": {ORDERS: "muted"}})
        assert reply["action"] == "error"
        assert reply["error"] == ErrorCode.UNKNOWN_ACTION
    await socket.disconnect()
    assert not await database_sync_to_async(NotificationPreference.objects.exists)()


async def test_muted_category_is_not_pushed_to_that_user_only(
    preferences_on: None, vendor: Any, owner: Any, staff: Any, channel_layer: Any
) -> None:
    owner_socket, _ = await connect(access_token_for(owner))
    owner_tab, _ = await connect(access_token_for(owner))
    staff_socket, _ = await connect(await database_sync_to_async(access_token_for)(staff))
    for socket in (owner_socket, owner_tab, staff_socket):
        await settle(socket)

    reply = await ask(
        owner_socket,
        {"action": "set_preferences", "preferences": {ORDERS: "muted"}, "request_id": 1},
    )
    assert reply == {
        "action": "set_preferences",
        "status": "success",
        "preferences": {ORDERS: "muted"},
        "unmutable_categories": [PAYOUTS],
        "request_id": 1,
    }
    # The user's other socket follows; the staff member's does not hear of it.
    assert await owner_tab.receive_json_from(timeout=5) == {
        "action": "preferences_changed",
        "preferences": {ORDERS: "muted"},
    }
    assert await staff_socket.receive_nothing(timeout=0.2)

    order_id = await notify(vendor, "Order #1", ORDERS)
    general_id = await notify(vendor, "Hello", GENERAL)
    # The owner's sockets get only the general one; the staff member gets both.
    for socket in (owner_socket, owner_tab):
        frame = await socket.receive_json_from(timeout=5)
        assert frame["notification"]["id"] == general_id
        assert await socket.receive_nothing(timeout=0.2)
    staff_ids = [(await staff_socket.receive_json_from(timeout=5))["notification"]["id"]]
    staff_ids.append((await staff_socket.receive_json_from(timeout=5))["notification"]["id"])
    assert staff_ids == [order_id, general_id]

    # Still stored and counted, and in sync for the user who muted it.
    counts = await ask(owner_socket, {"action": "get_unread_counts"})
    assert counts["unread_counts"] == {GENERAL: 1, ORDERS: 1}
    synced = await ask(owner_socket, {"action": "sync", "since_id": order_id - 1})
    assert [item["id"] for item in synced["notifications"]] == [order_id, general_id]

    # Back to the default: pushed live again.
    await ask(owner_tab, {"action": "set_preferences", "preferences": {ORDERS: None}})
    changed = await owner_socket.receive_json_from(timeout=5)
    assert changed == {"action": "preferences_changed", "preferences": {}}
    again = await notify(vendor, "Order #2", ORDERS)
    assert (await owner_socket.receive_json_from(timeout=5))["notification"]["id"] == again
    for socket in (owner_socket, owner_tab, staff_socket):
        await socket.disconnect()


async def test_preferences_are_loaded_on_connect_and_read_back(
    preferences_on: None, vendor: Any, owner: Any, channel_layer: Any
) -> None:
    socket = await socket_of(owner, {ORDERS: "digest"})
    await notify(vendor, "Order", ORDERS)
    general_id = await notify(vendor, "Hello", GENERAL)
    assert (await socket.receive_json_from(timeout=5))["notification"]["id"] == general_id
    reply = await ask(socket, {"action": "get_preferences"})
    assert reply == {
        "action": "get_preferences",
        "status": "success",
        "preferences": {ORDERS: "digest"},
        "unmutable_categories": [PAYOUTS],
    }
    await socket.disconnect()


async def test_a_muted_category_is_skipped_when_a_gap_is_filled(
    preferences_on: None, vendor: Any, owner: Any, channel_layer: Any
) -> None:
    socket = await socket_of(owner, {ORDERS: "muted"})
    # Rows the socket never got a push for: created without one.
    make = database_sync_to_async(services.Notification.objects.create)
    await make(vendor=vendor, message="missed order", category=ORDERS)
    missed = await make(vendor=vendor, message="missed hello", category=GENERAL)
    latest = await notify(vendor, "Hello again", GENERAL)
    ids = [(await socket.receive_json_from(timeout=5))["notification"]["id"] for _ in range(2)]
    assert ids == [missed.pk, latest]
    assert await socket.receive_nothing(timeout=0.2)
    await socket.disconnect()


@pytest.mark.invalid_client_frames
@pytest.mark.parametrize(
    ("preferences_value", "error"),
    [
        ({PAYOUTS: "muted"}, "cannot_mute"),
        ({ORDERS: "loud"}, "invalid_field"),
        ([ORDERS], "invalid_field"),
        (None, "invalid_field"),
    ],
    ids=repr,
)
async def test_set_preferences_errors(
    preferences_on: None, access_token: str, channel_layer: Any, preferences_value: Any, error: str
) -> None:
    socket, _ = await connect(access_token)
    reply = await ask(
        socket, {"action": "set_preferences", "preferences": preferences_value, "request_id": "x"}
    )
    assert reply["action"] == "error"
    assert reply["error"] == error
    assert reply["request_id"] == "x"
    await socket.disconnect()
    assert not await database_sync_to_async(NotificationPreference.objects.exists)()


async def test_connect_reads_preferences_only_when_they_are_on(
    vendor: Any, owner: Any, channel_layer: Any
) -> None:
    await notify(vendor, "Order", ORDERS)
    token = access_token_for(owner)
    # Holds the groups, so the connects counted need no catch-up after their first frame.
    holder, _ = await connect(token)
    await settle(holder)
    socket, queries = await connect_counting(token)
    await socket.disconnect()
    assert queries == OWNER_CONNECT_QUERIES
    with vendor_settings(PREFERENCES=True):
        socket, queries = await connect_counting(token)
        await socket.disconnect()
    await holder.disconnect()
    assert queries == OWNER_CONNECT_QUERIES + 1


# --- over HTTP -----------------------------------------------------------------------------


def client_for(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access_token_for(user)}")
    return client


URL = "vendor_notifications:notification-preferences"


def test_http_preferences_are_404_while_off(owner: Any, vendor: Any) -> None:
    assert client_for(owner).get(reverse(URL)).status_code == 404


async def test_http_change_reaches_every_socket_of_the_user(
    preferences_on: None, vendor: Any, owner: Any, channel_layer: Any
) -> None:
    socket, _ = await connect(access_token_for(owner))
    await settle(socket)
    client = client_for(owner)
    response = await database_sync_to_async(client.patch)(
        reverse(URL), {"preferences": {ORDERS: "muted"}}, format="json"
    )
    assert response.status_code == 200, response.content
    assert response.json()["preferences"] == {ORDERS: "muted"}
    assert await socket.receive_json_from(timeout=5) == {
        "action": "preferences_changed",
        "preferences": {ORDERS: "muted"},
    }
    await notify(vendor, "Order", ORDERS)
    assert await socket.receive_nothing(timeout=0.2)
    got = await database_sync_to_async(client.get)(reverse(URL))
    assert got.json() == {
        "action": "get_preferences",
        "status": "success",
        "preferences": {ORDERS: "muted"},
        "unmutable_categories": [PAYOUTS],
    }
    await socket.disconnect()


@pytest.mark.parametrize(
    "body",
    [
        {"preferences": {PAYOUTS: "muted"}},
        {"preferences": {ORDERS: "loud"}},
        {"preferences": {}},
        {"preferences": "muted"},
        {},
    ],
    ids=json.dumps,
)
def test_http_refuses_bad_changes(
    preferences_on: None, owner: Any, vendor: Any, body: dict[str, Any]
) -> None:
    response = client_for(owner).patch(reverse(URL), body, format="json")
    assert response.status_code == 400
    assert list(response.json()) == ["preferences"]
    assert isinstance(response.json()["preferences"], list)
    assert not NotificationPreference.objects.exists()
