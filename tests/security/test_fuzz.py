"""Property: whatever JSON a client sends to any action, the reply is a valid protocol frame and
the socket serves the next valid request.

In-process (WebsocketCommunicator) for speed; the rate limit is lifted so hypothesis can send as
fast as it likes. refresh_token with a token that is not a valid access token of the socket's
user is documented to close with 4001: the property allows that close for refresh_token only,
and then reconnects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import MAX_ID, MAX_REQUEST_ID_LENGTH, ErrorCode
from tests.conftest import access_token_for, communicator_for, vendor_settings
from tests.testapp.models import Vendor

# Arbitrary client frames, most of which docs/asyncapi.yaml does not allow; replies are checked.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.invalid_client_frames]

ACTIONS = ["mark_read", "load_more", "sync", "refresh_token"]
FIELDS = ["notification_id", "page", "since_id", "token"]
REPLY_ACTIONS = {"error", "mark_read", "load_more", "sync", "refresh_token"}
ERROR_CODES = {value for name, value in vars(ErrorCode).items() if name.isupper()}
MAX_MESSAGE_BYTES = 16 * 1024

# Any code point, lone surrogates included: json.dumps spells them as \ud800 escapes.
any_text = st.text(st.characters(exclude_categories=()), max_size=30)
scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, MAX_ID, MAX_ID + 1, -MAX_ID - 1, 2**64])
    | st.floats(allow_nan=True, allow_infinity=True)
    | any_text
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=12,
)
# JSON text that json.dumps of a Python value cannot produce, or produces too slowly.
raw_literals = st.one_of(
    st.integers(1, 6000).map(lambda n: "1" + "0" * n),
    st.integers(1, 6000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth),
    st.sampled_from(["1e400", "-1e400", "-0", "1E2", "1.0", "NaN", "-Infinity", '"\\udc00"']),
)
raw_values = json_values.map(lambda value: json.dumps(value)) | raw_literals
ACTION_FIELDS = dict(zip(ACTIONS, FIELDS, strict=True))
#: Replaced by the socket user's own access token before sending.
TOKEN = "@@token@@"
plausible = {
    "notification_id": st.integers(0, 40).map(str),
    "page": st.integers(0, 3).map(str),
    "since_id": st.integers(0, 40).map(str),
    "token": st.just(json.dumps(TOKEN)),
}
request_ids = (
    st.none()
    | st.integers(min_value=-MAX_ID - 5, max_value=MAX_ID + 5)
    | st.text(max_size=MAX_REQUEST_ID_LENGTH + 2)
    | json_values
)


@st.composite
def messages(draw: st.DrawFn) -> str:
    """One client frame: usually an object naming an action, sometimes anything at all."""
    if draw(st.integers(0, 9)) == 0:
        return draw(raw_values)
    action = draw(st.sampled_from(ACTIONS) | any_text | json_values)
    members = [("action", json.dumps(action))]
    own_field = ACTION_FIELDS.get(action) if isinstance(action, str) else None
    if own_field and draw(st.integers(0, 9)) < 7:
        # Often a plausible value, so the actions' success paths are exercised as well.
        members.append((own_field, draw(plausible[own_field] | raw_values)))
    for field in draw(st.lists(st.sampled_from(FIELDS), max_size=2)):
        members.append((field, draw(raw_values)))
    if draw(st.booleans()):
        members.append(("request_id", json.dumps(draw(request_ids))))
    for key in draw(st.lists(any_text, max_size=2)):
        members.append((key, draw(raw_values)))
    members = draw(st.permutations(members))
    return "{" + ", ".join(f"{json.dumps(key)}: {value}" for key, value in members) + "}"


def parsed(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def deeply_nested(text: str) -> bool:
    return "[" * 200 in text or '{"a":' * 200 in text


def valid_request_id(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
        return len(value) <= MAX_REQUEST_ID_LENGTH
    return type(value) is int and abs(value) <= MAX_ID


class Socket:
    """A connected owner socket, reconnected after a documented 4001.

    Opened afresh for every example: pytest-asyncio runs each one as its own task, and the
    communicator's application task does not outlive it."""

    def __init__(self, token: str) -> None:
        self.token = token
        self.communicator: WebsocketCommunicator | None = None

    async def open(self) -> WebsocketCommunicator:
        if self.communicator is None:
            self.communicator = communicator_for(self.token)
            connected, _ = await self.communicator.connect()
            assert connected
            assert (await self.communicator.receive_json_from(5))["action"] == (
                "unread_notifications"
            )
        return self.communicator

    async def exchange(self, text: str) -> dict[str, Any] | int:
        """The reply frame to ``text``, or the close code when the socket was closed."""
        communicator = await self.open()
        await communicator.send_to(text_data=text)
        output = await communicator.receive_output(timeout=5)
        if output["type"] == "websocket.close":
            # What a server does after the close handshake: the consumer then releases the
            # user's place among MAX_SOCKETS_PER_USER.
            await communicator.send_input({"type": "websocket.disconnect", "code": output["code"]})
            await communicator.wait()
            self.communicator = None
            return int(output["code"])
        reply_text = output["text"]
        reply_text.encode("utf-8")  # a real server could not send it otherwise
        reply = json.loads(reply_text)
        assert isinstance(reply, dict)
        return reply

    async def close(self) -> None:
        if self.communicator is not None:
            await self.communicator.disconnect()


@pytest.fixture
async def token(vendor: Vendor, channel_layer: Any) -> AsyncIterator[str]:
    @sync_to_async
    def prepare() -> str:
        for number in range(3):
            Notification.objects.create(vendor=vendor, message=f"n{number}")
        return access_token_for(vendor.user)

    with vendor_settings(RATE_LIMIT_PER_SECOND=1e9, RATE_LIMIT_BURST=10**9):
        yield await prepare()


def describe(reply: dict[str, Any]) -> str:
    return " ".join(str(reply[key]) for key in ("action", "status", "error") if key in reply)


def check_reply(text: str, reply: dict[str, Any] | int) -> None:
    message = parsed(text)
    action = message.get("action") if isinstance(message, dict) else None
    if isinstance(reply, int):
        assert action == "refresh_token" and reply == 4001, (text, reply)
        return
    assert reply["action"] in REPLY_ACTIONS, reply
    if reply["action"] == "error" or reply.get("status") == "error":
        assert reply["error"] in ERROR_CODES, reply
    if reply["action"] == "error":
        assert isinstance(reply["message"], str) and reply["message"], reply
    else:
        assert reply["action"] == action, (text, reply)
    in_limit = len(text.encode("utf-8", "surrogatepass")) <= MAX_MESSAGE_BYTES
    if reply.get("error") == "invalid_json":
        # Nesting near the recursion limit parses here but not on the consumer's deeper stack.
        assert message is None or deeply_nested(text), (text, reply)
        message = None
    request_id = message.get("request_id") if isinstance(message, dict) else None
    if in_limit and request_id is not None and valid_request_id(request_id):
        assert reply.get("request_id") == request_id, (text, reply)
    else:
        assert "request_id" not in reply, (text, reply)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(text=messages())
async def test_every_reply_is_a_protocol_frame_and_the_socket_keeps_serving(
    token: str, text: str
) -> None:
    socket = Socket(token)
    try:
        text = text.replace(TOKEN, token)
        reply = await socket.exchange(text)
        check_reply(text, reply)
        event(f"reply {reply}" if isinstance(reply, int) else f"reply {describe(reply)}")
        after = await socket.exchange('{"action": "load_more", "page": 1, "request_id": "next"}')
        assert isinstance(after, dict)
        assert (after["action"], after["request_id"]) == ("load_more", "next")
    finally:
        await socket.close()
