"""Threat 6: no input makes the server log a traceback or close another client's socket.

Invalid UTF-8 in a text frame is not here: a compliant client cannot send it (the server's
WebSocket library fails such a connection before the app sees it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from django_vendor_notifications.protocol import ErrorCode
from tests.conftest import access_token_for
from tests.testapp.models import Vendor

from .conftest import SecurityServer, close_code, receive_frame, still_serves

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ERROR_CODES = {value for name, value in vars(ErrorCode).items() if name.isupper()}
NESTED = "[" * 5000 + "]" * 5000
#: Messages per socket: with the check that follows, within the default burst of 20.
BATCH = 15


def action(name: Any, **fields: Any) -> str:
    return json.dumps({"action": name, **fields})


def raw(name: str, field: str, value: str) -> str:
    """A message whose field is spelled as raw JSON text (NaN, huge literals, deep nesting)."""
    return f'{{"action": "{name}", "{field}": {value}}}'


MALFORMED: list[str | bytes] = [
    "", " ", "null", "true", "1", '"text"', "[]", "{}", "{not json", "\x00", "\ufeff{}",
    NESTED, '{"action": "sync", "since_id": ' + NESTED + "}",
    '{"action": null}', '{"action": 1}', '{"action": ["mark_read"]}', '{"action": {}}',
    '{"action": "\\ud800"}', '{"action": "\\u0000"}', action("märk_read"), action("x" * 10000),
    action("mark_read"), action("load_more"), action("sync"),
    *[
        raw(name, field, value)
        for name, field in [("mark_read", "notification_id"), ("load_more", "page"),
                            ("sync", "since_id")]
        for value in ["-1", "0", "1.5", '"1"', "null", "true", "1e400", "-1e400", "NaN",
                      "Infinity", str(2**63), str(2**64), "1" * 4000, "1" * 5000, '{"a": 1}',
                      "[1]", '"\\udfff"', "1E2"]
    ],
    '{"action": "sync", "since_id": 0, "request_id": "\\ud800"}',
    '{"action": "sync", "since_id": 0, "request_id": "' + "r" * 129 + '"}',
    '{"action": "sync", "since_id": 0, "request_id": 1.5}',
    '{"action": "sync", "since_id": 0, "request_id": [1]}',
    '{"action": "sync", "since_id": 0, "request_id": true}',
    '{"action": "sync", "since_id": 0, "request_id": ' + str(2**64) + "}",
    '{"action": "load_more", "action": "sync", "since_id": 0}',
    json.dumps({"action": "sync", "since_id": 0, **{f"k{n}": n for n in range(1500)}}),
    b"", b"\xff\xfe", b'{"action": "sync", "since_id": 0}',
]  # fmt: skip


@pytest.mark.invalid_client_frames
async def test_malformed_messages_get_error_frames_and_nothing_escapes(
    daphne_server: SecurityServer, vendor: Vendor, staff: Any, no_traceback: Any
) -> None:
    token = access_token_for(vendor.user)
    async with daphne_server.connect(access_token_for(staff)) as bystander:
        await receive_frame(bystander)
        # A fresh socket per batch keeps each within the rate limit's burst.
        for start in range(0, len(MALFORMED), BATCH):
            async with daphne_server.connect(token) as ws:
                await receive_frame(ws)
                for message in MALFORMED[start : start + BATCH]:
                    await ws.send(message)
                    reply = await receive_frame(ws)
                    assert reply["action"] in {"error", "sync", "mark_read", "load_more"}, message
                    if reply["action"] == "error":
                        assert reply["error"] in ERROR_CODES
                        assert isinstance(reply["message"], str) and reply["message"]
                # One reply per message, and the socket keeps serving.
                await still_serves(ws)
            await still_serves(bystander, f"bystander-{start}")


@pytest.mark.parametrize(
    "token",
    ["", "\\ud800", "x" * 15000, "a.b.c", "Bearer x", None],
    ids=["empty", "escaped-surrogate", "huge", "dots", "prefixed", "missing"],
)
@pytest.mark.invalid_client_frames
async def test_bad_refresh_closes_only_its_own_socket(
    daphne_server: SecurityServer, vendor: Vendor, staff: Any, token: Any, no_traceback: Any
) -> None:
    message = '{"action": "refresh_token"' + ("" if token is None else f', "token": "{token}"')
    async with (
        daphne_server.connect(access_token_for(vendor.user)) as ws,
        daphne_server.connect(access_token_for(staff)) as bystander,
    ):
        await receive_frame(ws)
        await receive_frame(bystander)
        await ws.send(message + "}")
        assert await close_code(ws) == 4001
        await still_serves(bystander)


@pytest.mark.parametrize(
    ("query", "subprotocols"),
    [
        ("since=abc", None),
        ("since=-1", None),
        ("since=" + "9" * 30, None),
        ("since=x&since=1", None),
        ("since=%00", None),
        ("token=%ff%fe%00", None),
        ("token=" + "a" * 8000, None),
        ("token=%zz&since=%", None),
        ("", ["bearer", "x" * 4000]),
        ("", ["bearer", "a.b.c", "d.e.f"]),
        ("", ["graphql-ws"]),
    ],
)
async def test_malformed_handshakes_are_answered_not_crashed(
    daphne_server: SecurityServer,
    vendor: Vendor,
    staff: Any,
    query: str,
    subprotocols: list[str] | None,
    no_traceback: Any,
) -> None:
    async with daphne_server.connect(access_token_for(staff)) as bystander:
        await receive_frame(bystander)
        if query.startswith("since"):
            # A valid token and a bad since: the snapshot, then an error frame, then service.
            async with daphne_server.connect(access_token_for(vendor.user), query=query) as ws:
                assert (await receive_frame(ws))["action"] == "unread_notifications"
                error = await receive_frame(ws)
                assert (error["action"], error["error"]) == ("error", "invalid_field")
                await still_serves(ws)
        else:
            async with daphne_server.connect(
                query=f"?{query}" if query else "", subprotocols=subprotocols
            ) as ws:
                assert await close_code(ws) == 4001
        await still_serves(bystander)


async def test_duplicate_subprotocol_is_refused_by_the_server(
    daphne_server: SecurityServer, vendor: Vendor, no_traceback: Any
) -> None:
    """daphne's WebSocket library answers HTTP 400 itself; the app never sees the handshake."""
    token = access_token_for(vendor.user)
    with pytest.raises(InvalidStatus) as refusal:
        async with daphne_server.connect(subprotocols=["bearer", "bearer", token]):
            pytest.fail("the handshake was accepted")
    assert refusal.value.response.status_code == 400
