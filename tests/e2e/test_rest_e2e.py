"""The HTTP API as a real client sees it: a real ASGI server, httpx, and a socket beside it.

One server (uvicorn on the Redis layer, throttling off so the property run is not cut short)
serves both the API and the socket, as a host deploys them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from channels.db import database_sync_to_async

from django_vendor_notifications.models import Notification
from tests.conftest import access_token_for, refresh_token_for
from tests.testapp.models import Vendor

from .conftest import AsgiServer, ServerKind, assert_silent, launch_server, receive_json, server_env

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

API = "/api/notifications/"
#: Every operation of the API, by its operationId: the property run must reach them all.
OPERATIONS = {
    "notifications_history",
    "notifications_unread",
    "notifications_counts",
    "notifications_sync",
    "notifications_mark_read",
    "notifications_mark_unread",
    "notifications_mark_all_read",
    "notifications_archive",
    "notifications_unarchive",
    "notifications_preferences",
    "notifications_set_preferences",
    "notifications_mark_seen",
    "notifications_snooze",
    "notifications_unsnooze",
}


@pytest.fixture(scope="module")
def api_server(
    tmp_path_factory: pytest.TempPathFactory, django_db_setup: None
) -> Iterator[AsgiServer]:
    kind = ServerKind("uvicorn", "redis")
    # Preferences, seen and snooze on, so the property run reaches their endpoints rather
    # than a 404.
    vendor_settings = {
        "REST_THROTTLE_RATES": None,
        "PREFERENCES": True,
        "UNMUTABLE_CATEGORIES": ["Payouts"],
        "SEEN": True,
        "SNOOZE": True,
    }
    env = server_env(kind.channel_layer, vendor_settings=vendor_settings)
    server = launch_server(kind, env, tmp_path_factory.mktemp("rest-server"))
    try:
        yield server
    finally:
        server.stop()


def http(server: AsgiServer, user: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{server.port}",
        headers={"Authorization": f"Bearer {access_token_for(user)}"},
        timeout=10,
        trust_env=False,
    )


async def test_mark_read_over_http_reaches_the_open_socket(
    api_server: AsgiServer, vendor: Vendor, staff: Any
) -> None:
    """The staff member's socket hears what the owner does over HTTP, as it would hear the
    owner's socket: one vendor, one set of sockets, whichever door the change came in by."""
    create = database_sync_to_async(Notification.objects.create)
    first = await create(vendor=vendor, message="Order #1", category="Order Notifications")
    await create(vendor=vendor, message="Order #2", category="Order Notifications")
    token = await database_sync_to_async(access_token_for)(staff)

    async with api_server.connect(token) as ws, http(api_server, vendor.user) as client:
        snapshot = await receive_json(ws)
        assert snapshot["unread_total"] == 2
        unread = (await client.get(f"{API}unread/")).json()
        # One wire format: the body is the socket's first frame.
        assert unread == snapshot

        response = await client.post(f"{API}{first.pk}/mark-read/")
        assert response.status_code == 200
        assert response.json()["status"] == "success"
        # SEEN is on in this server: the pushes carry the unseen count too.
        assert await receive_json(ws) == {
            "action": "notification_read",
            "notification_id": first.pk,
            "unread_total": 1,
            "unseen_count": 1,
        }

        response = await client.post(f"{API}mark-all-read/", json={})
        assert response.json()["updated"] == 1
        assert await receive_json(ws) == {
            "action": "unread_count_changed",
            "unread_counts": {},
            "unread_total": 0,
            "unseen_count": 0,
        }
        # Marking read again changes nothing, so the socket hears nothing.
        assert (await client.post(f"{API}{first.pk}/mark-read/")).status_code == 200
        await assert_silent(ws)


async def test_polling_the_counts_with_an_etag(
    api_server: AsgiServer, vendor: Vendor, make_notification: Callable[..., Notification]
) -> None:
    make = database_sync_to_async(make_notification)
    await make(vendor, "one")
    async with http(api_server, vendor.user) as client:
        first = await client.get(f"{API}counts/")
        assert first.json()["unread_total"] == 1
        tag = first.headers["etag"]
        again = await client.get(f"{API}counts/", headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        await make(vendor, "two")
        changed = await client.get(f"{API}counts/", headers={"If-None-Match": tag})
        assert changed.status_code == 200
        assert changed.json()["unread_total"] == 2


async def test_refusals_over_a_real_server(
    api_server: AsgiServer, vendor: Vendor, customer: Any, other_vendor: Vendor
) -> None:
    base = f"http://127.0.0.1:{api_server.port}"
    async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=10) as anonymous:
        assert (await anonymous.get(f"{API}counts/")).status_code == 401
        refresh = await database_sync_to_async(refresh_token_for)(vendor.user)
        response = await anonymous.get(
            f"{API}counts/", headers={"Authorization": f"Bearer {refresh}"}
        )
        assert response.status_code == 401
    async with http(api_server, customer) as client:
        assert (await client.get(f"{API}counts/")).status_code == 403
    async with http(api_server, vendor.user) as client:
        response = await client.get(f"{API}counts/", params={"vendor": other_vendor.pk})
        assert response.status_code == 404
        response = await client.get(f"{API}history/", params={"category": "a\x00b"})
        assert response.status_code == 400
        assert list(response.json()) == ["category"]


async def test_openapi_property_run(
    api_server: AsgiServer,
    vendor: Vendor,
    make_notification: Callable[..., Notification],
    tmp_path: Path,
) -> None:
    """schemathesis against every operation with a valid token: no 5xx, and every response
    (status, content type, headers, body) as the OpenAPI document says."""
    make = database_sync_to_async(make_notification)
    for number in range(5):
        await make(vendor, f"n{number}", category="Order Notifications" if number % 2 else "X")
    async with http(api_server, vendor.user) as client:
        response = await client.get("/api/schema/", params={"format": "json"})
    assert response.status_code == 200
    schema = response.json()
    operations = {
        operation["operationId"]
        for path in schema["paths"].values()
        for operation in path.values()
        if isinstance(operation, dict) and "operationId" in operation
    }
    assert operations >= OPERATIONS
    schema["paths"] = {path: item for path, item in schema["paths"].items() if path.startswith(API)}
    schema_file = tmp_path / "openapi.json"
    schema_file.write_text(json.dumps(schema))
    token = await database_sync_to_async(access_token_for)(vendor.user)
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(schema_file),
        "--url", f"http://127.0.0.1:{api_server.port}",
        "--header", f"Authorization: Bearer {token}",
        "--checks", "not_a_server_error,status_code_conformance,content_type_conformance,"
        "response_headers_conformance,response_schema_conformance",
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", "25",
        "--seed", "15",
        # One worker: on Python 3.11, parallel workers tripped CPython's "AST constructor
        # recursion depth mismatch" inside hypothesis.
        "--workers", "1",
        "--generation-database", "none",
        "--request-timeout", "10",
        "--no-color",
    ]
    # In tmp_path: schemathesis keeps a cache in its working directory.
    result = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    # Every operation was exercised, and no phase was skipped for an error.
    assert f"Tested: {len(OPERATIONS)}" in result.stdout, result.stdout[-3000:]
    assert "Runtime Error" not in result.stdout
