"""RedactTokens: a token's value leaves every log record that carries it, and nothing else."""

from __future__ import annotations

import logging

import pytest

from django_vendor_notifications.redaction import RedactTokens, redact
from tests.conftest import vendor_settings

TOKEN = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo0Mn0.c2lnbmF0dXJl"


def record(msg: str, args: object) -> logging.LogRecord:
    return logging.LogRecord("test", logging.INFO, __file__, 1, msg, args, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"/v1/ws/notifications/?token={TOKEN}", "/v1/ws/notifications/?token=[redacted]"),
        (f"/?since=4&token={TOKEN}&x=1", "/?since=4&token=[redacted]&x=1"),
        (f'"GET /?token={TOKEN} HTTP/1.1" 404', '"GET /?token=[redacted] HTTP/1.1" 404'),
        (f"/#token={TOKEN}", f"/#token={TOKEN}"),  # a fragment never reaches a server
        ("/?tokens=abc&mytoken=def", "/?tokens=abc&mytoken=def"),
        ("/v1/ws/notifications/", "/v1/ws/notifications/"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text, "token") == expected


def test_uvicorn_style_tuple_arguments() -> None:
    entry = record('%s - "WebSocket %s" [accepted]', ("127.0.0.1:5000", f"/ws/?token={TOKEN}"))
    assert RedactTokens().filter(entry)
    assert entry.getMessage() == '127.0.0.1:5000 - "WebSocket /ws/?token=[redacted]" [accepted]'


def test_daphne_runserver_style_mapping_argument() -> None:
    details = {"method": "GET", "path": f"/ws/?token={TOKEN}", "status": 404}
    entry = record("HTTP %(method)s %(path)s %(status)s", details)
    assert RedactTokens().filter(entry)
    assert entry.getMessage() == "HTTP GET /ws/?token=[redacted] 404"


def test_a_formatted_message_and_bytes() -> None:
    entry = record(f"Not Found: /ws/?token={TOKEN}", (f"?token={TOKEN}".encode(),))
    RedactTokens().filter(entry)
    assert TOKEN not in entry.msg and TOKEN.encode() not in entry.args[0]  # type: ignore[index]


def test_the_configured_parameter_is_the_one_redacted() -> None:
    with vendor_settings(TOKEN_QUERY_PARAMETER="access_token"):
        entry = record("%s", (f"/ws/?access_token={TOKEN}&token=kept",))
        RedactTokens().filter(entry)
    assert entry.getMessage() == "/ws/?access_token=[redacted]&token=kept"
