"""Parsing of client frames: plain Python, no socket and no database."""

from __future__ import annotations

import json
from typing import Any

import pytest

from django_vendor_notifications.protocol import (
    MAX_ID,
    MAX_REQUEST_ID_LENGTH,
    CloseCode,
    ErrorCode,
    ProtocolError,
    Request,
    parse_request,
)


def parse_error(text: str | None, binary: bytes | None = None) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        parse_request(text, binary)
    return caught.value


def test_close_codes_are_application_codes() -> None:
    assert CloseCode.AUTHENTICATION_FAILED == 4001
    assert CloseCode.PERMISSION_DENIED == 4003


def test_valid_request() -> None:
    request = parse_request('{"action": "mark_read", "notification_id": 5, "request_id": "r-1"}')
    assert request == Request(action="mark_read", data={"notification_id": 5}, request_id="r-1")


def test_data_excludes_action_and_request_id() -> None:
    request = parse_request('{"action": "load_more", "page": 2}')
    assert request.data == {"page": 2}
    assert request.request_id is None


@pytest.mark.parametrize(
    "text",
    [
        "",
        "{",
        "not json",
        "{'action': 'load_more'}",
        '{"action": "load_more",}',
        "NaN-ish",
        "[" * 100_000,
        "[" * 100_000 + "]" * 100_000,
        '{"a":' * 100_000 + "1" + "}" * 100_000,
    ],
    ids=[
        "empty",
        "unterminated",
        "words",
        "single-quotes",
        "trailing-comma",
        "garbage",
        "deep-open-arrays",
        "deep-balanced-arrays",
        "deep-objects",
    ],
)
def test_invalid_json(text: str) -> None:
    error = parse_error(text)
    assert error.code == ErrorCode.INVALID_JSON
    assert error.request_id is None


def test_binary_frame_is_refused() -> None:
    error = parse_error(None, b'{"action": "load_more", "page": 1}')
    assert error.code == ErrorCode.BINARY_NOT_SUPPORTED


@pytest.mark.parametrize(
    "text", ["[]", '[{"action": "load_more"}]', '"load_more"', "1", "1.5", "null", "true"]
)
def test_non_object_is_refused(text: str) -> None:
    assert parse_error(text).code == ErrorCode.INVALID_MESSAGE


@pytest.mark.parametrize("action", [None, 1, True, [], {}, ["mark_read"]])
def test_action_must_be_a_string(action: Any) -> None:
    error = parse_error(json.dumps({"action": action, "request_id": "r"}))
    assert error.code == ErrorCode.INVALID_MESSAGE
    # The request_id was valid, so the error can still be matched to the request.
    assert error.request_id == "r"


def test_missing_action() -> None:
    error = parse_error('{"page": 1}')
    assert error.code == ErrorCode.INVALID_MESSAGE


def test_unknown_action_string_is_left_to_the_consumer() -> None:
    assert parse_request('{"action": "delete_everything"}').action == "delete_everything"


@pytest.mark.parametrize(
    "request_id",
    ["", "abc", "x" * MAX_REQUEST_ID_LENGTH, "ünïcødé", 0, 7, -7, MAX_ID, -MAX_ID],
)
def test_request_id_accepted(request_id: str | int) -> None:
    request = parse_request(json.dumps({"action": "load_more", "request_id": request_id}))
    assert request.request_id == request_id
    assert type(request.request_id) is type(request_id)


def test_null_request_id_means_none() -> None:
    assert parse_request('{"action": "load_more", "request_id": null}').request_id is None


@pytest.mark.parametrize(
    "request_id",
    [
        "x" * (MAX_REQUEST_ID_LENGTH + 1),
        True,
        False,
        1.0,
        1.5,
        [],
        ["r"],
        {},
        {"id": 1},
        MAX_ID + 1,
        2**64,
        -(2**64),
    ],
)
def test_request_id_refused(request_id: Any) -> None:
    error = parse_error(json.dumps({"action": "load_more", "request_id": request_id}))
    assert error.code == ErrorCode.INVALID_FIELD
    # An invalid request_id is never echoed back.
    assert error.request_id is None


@pytest.mark.parametrize("text", ['"\\ud800"', '"abc\\udfff"', '"\\ude00\\ud83d"'])
def test_request_id_with_lone_surrogate_refused(text: str) -> None:
    # JSON escapes can spell a lone surrogate, which has no UTF-8 encoding: echoing it would
    # make a reply that cannot be sent as a WebSocket text frame.
    error = parse_error(f'{{"action": "load_more", "request_id": {text}}}')
    assert error.code == ErrorCode.INVALID_FIELD
    assert error.request_id is None


def test_request_id_with_surrogate_pair_accepted() -> None:
    request = parse_request('{"action": "load_more", "request_id": "\\ud83d\\ude00"}')
    assert request.request_id == "\U0001f600"


def request_with(**data: Any) -> Request:
    return parse_request(json.dumps({"action": "mark_read", "request_id": 9, **data}))


@pytest.mark.parametrize("value", [1, 2, 12345, MAX_ID])
def test_positive_int_accepted(value: int) -> None:
    assert request_with(notification_id=value).positive_int("notification_id") == value


@pytest.mark.parametrize(
    "value",
    [
        "1 OR 1=1",
        "1",
        "",
        -1,
        0,
        2**64,
        MAX_ID + 1,
        True,
        False,
        {},
        [],
        [1],
        None,
        1.0,
        1.5,
        "1e3",
    ],
    ids=repr,
)
def test_positive_int_refused(value: Any) -> None:
    request = request_with(notification_id=value)
    with pytest.raises(ProtocolError) as caught:
        request.positive_int("notification_id")
    assert caught.value.code == ErrorCode.INVALID_FIELD
    assert "notification_id" in caught.value.message
    assert caught.value.request_id == 9


def test_positive_int_missing_field() -> None:
    with pytest.raises(ProtocolError) as caught:
        request_with().positive_int("notification_id")
    assert caught.value.code == ErrorCode.INVALID_FIELD


def test_two_to_the_64_parsed_from_text_is_refused() -> None:
    # Python's json gives arbitrary-size ints; the bound must come from positive_int.
    request = parse_request('{"action": "mark_read", "notification_id": 18446744073709551616}')
    with pytest.raises(ProtocolError):
        request.positive_int("notification_id")


@pytest.mark.parametrize("value", [0, -1, "2", None, True, 2.0], ids=repr)
def test_page_refused(value: Any) -> None:
    request = parse_request(json.dumps({"action": "load_more", "page": value}))
    with pytest.raises(ProtocolError) as caught:
        request.positive_int("page")
    assert caught.value.code == ErrorCode.INVALID_FIELD
    assert "'page'" in caught.value.message


def test_page_accepted() -> None:
    assert parse_request('{"action": "load_more", "page": 3}').positive_int("page") == 3
