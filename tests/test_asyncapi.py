"""docs/asyncapi.yaml is valid AsyncAPI 3.0 and agrees with the code and with the prose docs.

tests/frames.py checks every frame the suite sends and receives against the same document; these
tests check the document itself: that it is valid, that its client messages are exactly the
actions the consumer dispatches, that docs/protocol.md shows a valid example of each message,
and that its close codes and error codes are the code's and docs/security.md's.
"""

from __future__ import annotations

import copy
import datetime
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft7Validator

from django_vendor_notifications import payloads
from django_vendor_notifications.consumers import NotificationConsumer
from django_vendor_notifications.protocol import (
    MAX_ID,
    MAX_REQUEST_ID_LENGTH,
    CloseCode,
    ErrorCode,
)
from tests import frames
from tests.conftest import vendor_settings
from tests.frames import CLIENT, SERVER, Catalogue

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
#: The official AsyncAPI 3.0.0 JSON Schema, vendored because tests run offline: see
#: tests/asyncapi/README.md for where it comes from.
ASYNCAPI_SCHEMA = Path(__file__).resolve().parent / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return Catalogue.load()


@pytest.fixture(scope="module")
def document(catalogue: Catalogue) -> dict[str, Any]:
    return catalogue.document


@pytest.fixture(scope="module")
def asyncapi_validator() -> Draft7Validator:
    return Draft7Validator(json.loads(ASYNCAPI_SCHEMA.read_text(encoding="utf-8")))


def protocol_page() -> str:
    return (DOCS / "protocol.md").read_text(encoding="utf-8")


def json_examples(page: str) -> list[Any]:
    return [json.loads(block) for block in re.findall(r"^```json\n(.*?)^```", page, re.M | re.S)]


def close_codes_in_table(page: str, heading: str = "## Close codes") -> set[int]:
    """Every code in the first column of the table under ``heading``."""
    section = page.split(heading, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return {int(code) for row in rows for code in re.findall(r"\b\d{4}\b", row.split("|")[1])}


# --- the document ---------------------------------------------------------------------------


def test_document_is_valid_asyncapi_3(
    document: dict[str, Any], asyncapi_validator: Draft7Validator
) -> None:
    assert document["asyncapi"] == "3.0.0"
    errors = [
        f"{error.json_path}: {error.message:.300}"
        for error in asyncapi_validator.iter_errors(document)
    ]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "path, value",
    [
        (("operations", "markRead", "action"), "publish"),
        (("channels", "notifications", "adress"), "/typo/"),
        (("components", "schemas", "Item", "type"), "record"),
        (("components", "messages", "error", "contentType"), 7),
    ],
)
def test_the_asyncapi_schema_catches_a_broken_document(
    document: dict[str, Any],
    asyncapi_validator: Draft7Validator,
    path: tuple[str, ...],
    value: Any,
) -> None:
    """The vendored schema checks deep enough to notice a mistake (not only the top keys)."""
    broken = copy.deepcopy(document)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    assert not asyncapi_validator.is_valid(broken)


def test_every_operation_message_is_a_channel_message(document: dict[str, Any]) -> None:
    channel = document["channels"]["notifications"]["messages"]
    for name, operation in document["operations"].items():
        references = operation["messages"] + operation.get("reply", {}).get("messages", [])
        for reference in references:
            assert reference["$ref"].startswith("#/channels/notifications/messages/"), name
            assert reference["$ref"].rsplit("/", 1)[1] in channel, name
    listed = {
        frames.message_key(reference, document)
        for operation in document["operations"].values()
        for reference in operation["messages"] + operation.get("reply", {}).get("messages", [])
    }
    assert listed == set(document["components"]["messages"]), "a message no operation uses"


# --- the code -------------------------------------------------------------------------------


def test_client_messages_are_the_actions_the_consumer_dispatches(catalogue: Catalogue) -> None:
    # Every optional action on: the document lists them all.
    with vendor_settings(SEEN=True, SNOOZE=True):
        dispatched = set(NotificationConsumer().action_names)
    client = catalogue.messages[CLIENT]
    documented = {action for message in client.values() for action in message.actions}

    assert not dispatched - documented, "actions the consumer handles but asyncapi.yaml lacks"
    assert not documented - dispatched, "client messages in asyncapi.yaml the consumer lacks"


def test_error_codes_are_the_protocols(document: dict[str, Any]) -> None:
    codes = {value for name, value in vars(ErrorCode).items() if name.isupper()}
    assert set(document["components"]["schemas"]["ErrorCode"]["enum"]) == codes


def test_limits_are_the_protocols(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    assert schemas["NotificationId"]["maximum"] == MAX_ID
    string, integer = schemas["RequestId"]["oneOf"]
    assert string["maxLength"] == MAX_REQUEST_ID_LENGTH
    assert integer["maximum"] == MAX_ID == -integer["minimum"]


def test_close_codes_are_the_codes_and_securitys(document: dict[str, Any]) -> None:
    entries = document["x-close-codes"]
    application = {
        entry["code"]: entry["name"] for entry in entries if entry["sentBy"] == "application"
    }
    assert application == {int(code): code.name for code in CloseCode}
    assert all(entry["meaning"] and entry["clientAction"] for entry in entries)

    security = close_codes_in_table((DOCS / "security.md").read_text(encoding="utf-8"))
    assert {entry["code"] for entry in entries} == security
    protocol = close_codes_in_table(protocol_page())
    assert {code for code in protocol if code >= 4000} == set(application)


def item_row(**fields: Any) -> dict[str, Any]:
    created = datetime.datetime(2025, 3, 12, 9, 15, tzinfo=datetime.timezone.utc)
    return {
        "id": 7,
        "vendor_id": 3,
        "category": "Order Notifications",
        "message": "Hi",
        "context_data": {"order_id": 1},
        "is_read": False,
        "readed_at": None,
        "created_at": created,
        **fields,
    }


def built_frames() -> list[tuple[str, dict[str, Any]]]:
    read_at = datetime.datetime(2025, 3, 13, tzinfo=datetime.timezone.utc)
    read = item_row(is_read=True, readed_at=read_at)
    rows = [item_row(), read, item_row(id=9, category="General", context_data={})]
    counts = {"General": 1, "Order Notifications": 1}
    frame = payloads.notification_status_frame
    return [
        ("unreadNotifications", payloads.unread_notifications_frame(rows)),
        ("unreadNotifications", payloads.unread_notifications_frame([])),
        ("loadMoreReply", payloads.load_more_frame(2, True, rows)),
        ("newNotification", payloads.new_notification_frame(read)),
        ("syncReply", payloads.sync_frame(0, rows, False)),
        ("notificationRead", payloads.notification_read_frame(7, 0)),
        ("markReadSuccess", payloads.mark_read_frame(7, True)),
        ("markReadNotFound", payloads.mark_read_frame(7, False)),
        ("error", payloads.error_frame(ErrorCode.INVALID_FIELD, "no")),
        ("error", payloads.with_request_id(payloads.error_frame(ErrorCode.NOT_FOUND, "x"), "r")),
        ("markReadSuccess", payloads.with_request_id(payloads.mark_read_frame(1, True), -5)),
        ("unreadNotifications", payloads.unread_notifications_frame(rows, counts)),
        ("unreadNotifications", payloads.unread_notifications_frame([], {})),
        ("getUnreadCountsReply", payloads.unread_counts_frame(counts)),
        ("unreadCountChanged", payloads.unread_count_changed_frame({})),
        ("markAllReadReply", payloads.mark_all_read_frame(None, 0, 0)),
        ("markAllReadReply", payloads.mark_all_read_frame("General", 2, 1)),
        ("loadMoreCursorReply", payloads.cursor_page_frame(None, rows, True)),
        ("loadMoreCursorReply", payloads.cursor_page_frame(5, [], False)),
        *[
            (f"{key}{'Success' if found else 'NotFound'}", frame(action, 7, found))
            for key, action in [
                ("markUnread", "mark_unread"),
                ("archive", "archive"),
                ("unarchive", "unarchive"),
            ]
            for found in (True, False)
        ],
    ]


def seen_and_snoozed_frames() -> list[tuple[str, dict[str, Any]]]:
    """The frames of SEEN and SNOOZE, built with both on (items carry seen_at and
    snoozed_until, counts unseen_count)."""
    until = datetime.datetime(2025, 3, 14, 8, tzinfo=datetime.timezone.utc)
    seen = datetime.datetime(2025, 3, 13, tzinfo=datetime.timezone.utc)
    counts = payloads.UnreadCounts({"General": 1}, unseen=1)
    rows = [
        item_row(seen_at=None, snoozed_until=None),
        item_row(id=8, seen_at=seen, snoozed_until=until),
    ]
    with vendor_settings(SEEN=True, SNOOZE=True, ISO_TIMESTAMPS=True):
        return [
            ("unreadNotifications", payloads.unread_notifications_frame(rows, counts)),
            (
                "unreadNotifications",
                payloads.unread_notifications_frame([], payloads.UnreadCounts({}, 0)),
            ),
            ("newNotification", payloads.new_notification_frame(rows[1])),
            ("getUnreadCountsReply", payloads.unread_counts_frame(counts)),
            ("unreadCountChanged", payloads.unread_count_changed_frame(counts)),
            ("notificationRead", payloads.notification_read_frame(7, 1, 0)),
            ("markAllReadReply", payloads.mark_all_read_frame(None, 2, 0, 0)),
            ("loadMoreCursorReply", payloads.cursor_page_frame(None, rows, False)),
            ("markSeenReply", payloads.mark_seen_frame(9, 2, counts)),
            ("snoozeSuccess", payloads.snooze_frame(7, True, until, counts)),
            ("snoozeNotFound", payloads.snooze_frame(7, False)),
            ("unsnoozeSuccess", payloads.notification_status_frame("unsnooze", 7, True)),
            ("unsnoozeNotFound", payloads.notification_status_frame("unsnooze", 7, False)),
            ("notificationSnoozed", payloads.notification_snoozed_frame(7, until, counts)),
            ("notificationsWoke", payloads.notifications_woke_frame(rows[:1], counts)),
        ]


@pytest.mark.parametrize("key, frame", built_frames() + seen_and_snoozed_frames())
def test_every_frame_payloads_builds_is_its_message(
    catalogue: Catalogue, key: str, frame: dict[str, Any]
) -> None:
    # Through encode() and back, as it goes on the wire.
    assert catalogue.matches(SERVER, json.loads(payloads.encode(frame))) == [key]


# --- the docs -------------------------------------------------------------------------------


def test_every_message_has_a_valid_example_in_protocol_md(catalogue: Catalogue) -> None:
    shown: dict[str, set[str]] = {CLIENT: set(), SERVER: set()}
    invalid = []
    for example in json_examples(protocol_page()):
        for direction in (CLIENT, SERVER):
            if not catalogue.candidates(direction, example):
                continue
            matches = catalogue.matches(direction, example)
            shown[direction].update(matches)
            if not matches and not any(
                catalogue.matches(other, example) for other in (CLIENT, SERVER)
            ):
                invalid.append(json.dumps(example)[:200])
    assert not invalid, f"protocol.md examples asyncapi.yaml does not allow: {invalid}"
    for direction in (CLIENT, SERVER):
        missing = sorted(set(catalogue.messages[direction]) - shown[direction])
        assert not missing, f"{direction} messages with no ```json example in protocol.md"


def test_protocol_md_links_the_document() -> None:
    head = protocol_page().split("\n## ", 1)[0]
    assert "asyncapi.yaml" in head
    assert "asyncapi.yaml" in (DOCS / "index.md").read_text(encoding="utf-8")
    assert "asyncapi.yaml" in (ROOT / "README.md").read_text(encoding="utf-8")


# --- the frame checker (tests/frames.py) ----------------------------------------------------


@pytest.mark.parametrize(
    "direction, frame, key",
    [
        (CLIENT, {"action": "load_more", "page": 1}, "loadMore"),
        (CLIENT, {"action": "load_more", "before_id": 5, "limit": 10}, "loadMoreCursor"),
        (CLIENT, {"action": "load_more", "before_id": None, "is_read": None}, "loadMoreCursor"),
        (CLIENT, {"action": "mark_read", "notification_id": 1, "request_id": "r"}, "markRead"),
        (CLIENT, {"action": "mark_all_read", "category": None}, "markAllRead"),
        (
            SERVER,
            {
                "action": "load_more",
                "before_id": None,
                "notifications": [],
                "has_more": False,
                "next_before_id": None,
            },
            "loadMoreCursorReply",
        ),
        (
            SERVER,
            {"action": "load_more", "page": 3, "notifications": {}, "has_more": False},
            "loadMoreReply",
        ),
        (
            SERVER,
            {
                "action": "mark_unread",
                "status": "error",
                "error": "not_found",
                "notification_id": 4,
            },
            "markUnreadNotFound",
        ),
        (
            SERVER,
            {"action": "archive", "status": "success", "notification_id": 4},
            "archiveSuccess",
        ),
        (
            SERVER,
            {"action": "unread_count_changed", "unread_counts": {"Orders": 2}, "unread_total": 2},
            "unreadCountChanged",
        ),
    ],
)
def test_a_frame_matches_exactly_one_message(
    catalogue: Catalogue, direction: str, frame: dict[str, Any], key: str
) -> None:
    assert catalogue.matches(direction, frame) == [key]
    assert catalogue.problem(direction, json.dumps(frame)) is None


@pytest.mark.parametrize(
    "direction, data",
    [
        (CLIENT, '{"action": "mark_read", "notification_id": "1"}'),
        (CLIENT, '{"action": "mark_read", "notification_id": 1, "extra": true}'),
        (CLIENT, '{"action": "load_more", "page": 1, "before_id": 3}'),
        (CLIENT, '{"action": "nope"}'),
        (CLIENT, "[1]"),
        (CLIENT, "{"),
        (CLIENT, b'{"action": "sync", "since_id": 0}'),
        (SERVER, '{"action": "mark_read", "notification_id": 1}'),
        (SERVER, '{"action": "error", "error": "oops", "message": "m"}'),
        (
            SERVER,
            '{"action": "new_notification", "notification": {"id": 1, "vendor": 1, '
            '"category": "c", "message": "m", "context_data": "{}", "is_read": false, '
            '"readed_at": null, "created_at": "2025-03-12T10:15:00"}}',
        ),
        (SERVER, '{"action": "unread_notifications", "notifications": {}, "page": 1}'),
        (SERVER, '{"action": "unread_notifications", "notifications": {}, "unread_total": 0}'),
        (
            SERVER,
            '{"action": "new_notification", "notification": {"id": 1, "vendor": 1, '
            '"category": "c", "message": "m", "context_data": "{}", "is_read": false, '
            '"readed_at": null, "created_at": "12-03-2025 10:15:00", "archived_at": null}}',
        ),
        (
            SERVER,
            '{"action": "new_notification", "notification": {"id": 1, "vendor": 1, '
            '"category": "c", "message": "m", "context_data": "{}", "is_read": false, '
            '"readed_at": null, "created_at": "12-03-2025 10:15:00", '
            '"created_at_iso": "2025-03-12T10:15:00+01:00"}}',
        ),
        (CLIENT, '{"action": "load_more", "limit": 10}'),
        (CLIENT, '{"action": "load_more", "before_id": "5"}'),
        (CLIENT, '{"action": "mark_all_read", "category": ""}'),
        (
            SERVER,
            '{"action": "load_more", "status": "success", "notifications": [], '
            '"has_more": false, "next_before_id": null}',
        ),
        (
            SERVER,
            '{"action": "archive", "notification_id": 1, "status": "success", '
            '"archived_at": "12-03-2025 10:15:00"}',
        ),
    ],
)
def test_an_invalid_frame_is_reported(
    catalogue: Catalogue, direction: str, data: str | bytes
) -> None:
    assert catalogue.problem(direction, data) is not None


def test_the_plugin_is_registered() -> None:
    assert frames.RECORDER is not None, "tests/frames.py is not registered (tests/conftest.py)"


PLUGIN_PROBE = """
import pytest
from channels.testing import WebsocketCommunicator


async def application(scope, receive, send):
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": FRAME})
    await receive()


@pytest.mark.asyncio
async def test_probe():
    communicator = WebsocketCommunicator(application, "/")
    await communicator.connect()
    await communicator.receive_from()
    await communicator.disconnect()
"""


@pytest.mark.parametrize(
    "frame, passes",
    [
        ({"action": "notification_read", "notification_id": 1, "unread_total": 0}, True),
        ({"action": "notification_read", "notification_id": 1}, False),
    ],
)
def test_the_plugin_fails_a_test_that_receives_an_invalid_frame(
    tmp_path: Path, frame: dict[str, Any], passes: bool
) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(f"FRAME = {json.dumps(json.dumps(frame))}\n" + textwrap.dedent(PLUGIN_PROBE))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DJANGO_SETTINGS_MODULE": "tests.settings"}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.frames",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            str(probe),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    output = result.stdout + result.stderr
    assert (result.returncode == 0) is passes, output
    assert "frames validated against docs/asyncapi.yaml (0 client, 1 server" in output
    if not passes:
        assert "do not match docs/asyncapi.yaml" in output
        assert "'unread_total' is a required property" in output
