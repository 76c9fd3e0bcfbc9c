"""The wire protocol's vocabulary: close codes, error codes, and parsing of client messages.

Parsing is plain Python (no socket, no database) so every rule here is unit-tested directly.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any
from urllib.parse import parse_qs

# Largest id a client may name: ids are 64-bit signed integers in the database.
MAX_ID = 2**63 - 1
MAX_REQUEST_ID_LENGTH = 128
# Longest category label a client may name: the model's max_length.
MAX_LABEL_LENGTH = 100


class CloseCode(IntEnum):
    """Application close codes. daphne lets an application close only with 1000 or 3000-4999."""

    #: The token is missing, invalid, expired, not an access token, or its user is gone or
    #: inactive. A client should get a fresh access token, then reconnect.
    AUTHENTICATION_FAILED = 4001
    #: The user is authenticated but may not read any vendor's notifications. Do not retry.
    PERMISSION_DENIED = 4003
    #: This server process is shutting down (a deploy): reconnect now, after a short random
    #: pause, and sync from the newest id you have; another process will answer.
    SERVER_RESTARTING = 4012
    #: The server cannot deliver live notifications right now (its channel layer, usually
    #: Redis, is unreachable). Reconnect with backoff, then sync from the newest id you have.
    TRY_AGAIN_LATER = 4013
    #: Too many messages, or too many open sockets for this user. Back off before reconnecting.
    TOO_MANY_REQUESTS = 4029


class ErrorCode:
    """Values of ``error`` in ``{"action": "error", ...}`` and in failed action replies."""

    INVALID_JSON = "invalid_json"
    INVALID_MESSAGE = "invalid_message"
    BINARY_NOT_SUPPORTED = "binary_not_supported"
    UNKNOWN_ACTION = "unknown_action"
    INVALID_FIELD = "invalid_field"
    NOT_FOUND = "not_found"
    #: The database refused or did not answer in time; nothing was read. Retry shortly (every
    #: action is idempotent).
    UNAVAILABLE = "unavailable"
    #: set_preferences asked to mute a category the host keeps live (UNMUTABLE_CATEGORIES).
    CANNOT_MUTE = "cannot_mute"
    MESSAGE_TOO_LARGE = "message_too_large"
    RATE_LIMITED = "rate_limited"
    INTERNAL_ERROR = "internal_error"


class ProtocolError(Exception):
    """A client message that cannot be served; becomes an ``error`` frame."""

    def __init__(self, code: str, message: str, request_id: str | int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


@dataclass(frozen=True)
class Request:
    """A parsed client message: its action, its other keys, and the request_id to echo."""

    action: str
    data: dict[str, Any] = field(default_factory=dict)
    request_id: str | int | None = None

    def positive_int(self, name: str) -> int:
        """The field ``name`` as an integer in 1..MAX_ID (booleans and strings refused)."""
        return self.bounded_int(name, minimum=1)

    def bounded_int(self, name: str, *, minimum: int) -> int:
        """The field ``name`` as an integer in minimum..MAX_ID (booleans and strings refused)."""
        value = self.data.get(name)
        # bool is a subclass of int in Python: true must not mean 1.
        if type(value) is not int or not minimum <= value <= MAX_ID:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"'{name}' must be {kind} no larger than {MAX_ID}.",
                self.request_id,
            )
        return value

    def optional_positive_int(self, name: str) -> int | None:
        """Like positive_int, but a missing key or null is None."""
        return None if self.data.get(name) is None else self.positive_int(name)

    def optional_bool(self, name: str) -> bool | None:
        """The field ``name`` as true or false; a missing key or null is None (no filter)."""
        value = self.data.get(name)
        if value is None or type(value) is bool:
            return value
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"'{name}' must be true or false.", self.request_id
        )

    def optional_label(self, name: str) -> str | None:
        """The field ``name`` as a category label; a missing key or null is None."""
        value = self.data.get(name)
        if value is None:
            return None
        if not is_label(value):
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                f"'{name}' must be a category label of 1 to {MAX_LABEL_LENGTH} characters.",
                self.request_id,
            )
        return value


def is_label(value: Any) -> bool:
    """Whether ``value`` can name a category: a string of 1 to MAX_LABEL_LENGTH characters that
    every supported database can compare with a stored one. The socket and the HTTP API both
    check labels with it."""
    return isinstance(value, str) and 1 <= len(value) <= MAX_LABEL_LENGTH and _storable(value)


def since_from_query_string(query_string: bytes | str) -> int | None:
    """The ``since`` URL parameter (a reconnecting client's newest id), or None when absent.

    Raises ProtocolError when it is present but not an integer in 0..MAX_ID.
    """
    if isinstance(query_string, bytes):
        query_string = query_string.decode("latin-1")
    values = parse_qs(query_string).get("since")
    if not values:
        return None
    text = values[0]
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_ID:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD, f"'since' must be an integer from 0 to {MAX_ID}."
        )
    return int(text)


def _storable(value: str) -> bool:
    """Whether every supported database can compare ``value`` with a stored text: UTF-8 (no
    lone surrogates) and no NUL character, which PostgreSQL's text type refuses."""
    return "\x00" not in value and _encodes_as_utf8(value)


def _encodes_as_utf8(text: str) -> bool:
    # JSON escapes can spell a lone surrogate ("\\ud800"), which has no UTF-8 form: echoed in a
    # reply it would make a text frame the server cannot send.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_request_id(message: dict[str, Any]) -> str | int | None:
    request_id = message.get("request_id")
    if request_id is None:
        return None
    valid_string = (
        isinstance(request_id, str)
        and len(request_id) <= MAX_REQUEST_ID_LENGTH
        and _encodes_as_utf8(request_id)
    )
    valid_int = type(request_id) is int and abs(request_id) <= MAX_ID
    if not (valid_string or valid_int):
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            f"'request_id' must be a string of at most {MAX_REQUEST_ID_LENGTH} characters "
            "(valid Unicode) or an integer.",
        )
    return request_id


def parse_request(text: str | None, binary: bytes | None = None) -> Request:
    """Turn one client frame into a Request, or raise ProtocolError."""
    if text is None:
        raise ProtocolError(
            ErrorCode.BINARY_NOT_SUPPORTED, "Binary frames are not supported; send JSON text."
        )
    try:
        message = json.loads(text)
    except (ValueError, RecursionError):
        # RecursionError: deeply nested arrays exhaust the decoder's stack.
        raise ProtocolError(ErrorCode.INVALID_JSON, "The message is not valid JSON.") from None
    if not isinstance(message, dict):
        raise ProtocolError(ErrorCode.INVALID_MESSAGE, "The message must be a JSON object.")
    request_id = parse_request_id(message)
    action = message.get("action")
    if not isinstance(action, str):
        raise ProtocolError(
            ErrorCode.INVALID_MESSAGE, "The message needs an 'action' string.", request_id
        )
    data = {key: value for key, value in message.items() if key not in ("action", "request_id")}
    return Request(action=action, data=data, request_id=request_id)
