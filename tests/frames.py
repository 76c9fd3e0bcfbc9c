"""A pytest plugin: every frame the suite sends or receives must be one docs/asyncapi.yaml allows.

It wraps the two clients the tests talk through: channels.testing.WebsocketCommunicator
(send_input and receive_output, which send_to, send_json_to, receive_from, receive_json_from and
connect all go through) and the ``websockets`` asyncio client that the end-to-end tests use
(Connection.send and Connection.recv, which ``async for`` uses too).

A client frame must match exactly one of the document's client messages (those of its
``receive`` operations), a server frame exactly one of its server messages (``send`` operations
and replies): candidates are the messages whose payload's ``action`` allows the frame's, and
exactly one of them must validate. A close code the app sends in-process must be 1000 or one of
``x-close-codes``'s ``sentBy: application`` codes.

Tests that send invalid client frames on purpose carry ``@pytest.mark.invalid_client_frames``;
their client frames are counted but not checked. Server frames are always checked. A test that
produced an invalid frame fails with the frame and the schema errors.
"""

from __future__ import annotations

import json
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

ASYNCAPI_PATH = Path(__file__).resolve().parent.parent / "docs" / "asyncapi.yaml"
MARKER = "invalid_client_frames"
CLIENT, SERVER = "client", "server"
#: Closing normally is not in x-close-codes, which lists only codes that mean something.
NORMAL_CLOSURE = 1000


def load_document(path: Path = ASYNCAPI_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as file:
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        document: dict[str, Any] = yaml.load(file, Loader=loader)
    return document


def resolve(document: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref``s (``#/a/b``) until a node that is not one."""
    while isinstance(node, dict) and "$ref" in node:
        pointer = node["$ref"]
        assert pointer.startswith("#/"), f"only local references are supported: {pointer}"
        node = document
        for part in pointer[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def inline(document: dict[str, Any], node: Any) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (the schemas have no
    cycles): validating then follows no references, which keeps large frames cheap to check."""
    if isinstance(node, dict):
        if "$ref" in node:
            return inline(document, resolve(document, node))
        return {key: inline(document, value) for key, value in node.items()}
    if isinstance(node, list):
        return [inline(document, value) for value in node]
    return node


def message_key(reference: dict[str, Any], document: dict[str, Any]) -> str:
    """The components/messages key an operation's message reference ends at."""
    node: Any = reference
    key = ""
    while isinstance(node, dict) and "$ref" in node:
        key = node["$ref"].rsplit("/", 1)[-1]
        node = resolve(document, {"$ref": node["$ref"]})
    return key


def payload_actions(schema: dict[str, Any]) -> set[str]:
    action = schema.get("properties", {}).get("action", {})
    if "const" in action:
        return {action["const"]}
    return set(action.get("enum", ()))


@dataclass
class Message:
    key: str
    actions: set[str]
    validator: Draft7Validator


@dataclass
class Catalogue:
    """The document's messages, by direction, each with a compiled validator."""

    document: dict[str, Any]
    messages: dict[str, dict[str, Message]] = field(
        default_factory=lambda: {CLIENT: {}, SERVER: {}}
    )

    @classmethod
    def load(cls, path: Path = ASYNCAPI_PATH) -> Catalogue:
        document = load_document(path)
        catalogue = cls(document)
        for operation in document["operations"].values():
            direction = CLIENT if operation["action"] == "receive" else SERVER
            for reference in operation["messages"]:
                catalogue.add(direction, message_key(reference, document))
            for reference in operation.get("reply", {}).get("messages", []):
                catalogue.add(SERVER, message_key(reference, document))
        return catalogue

    def add(self, direction: str, key: str) -> None:
        if key in self.messages[direction]:
            return
        message = self.document["components"]["messages"][key]
        payload = inline(self.document, message["payload"])
        Draft7Validator.check_schema(payload)
        self.messages[direction][key] = Message(
            key, payload_actions(payload), Draft7Validator(payload)
        )

    @property
    def app_close_codes(self) -> set[int]:
        return {
            entry["code"]
            for entry in self.document["x-close-codes"]
            if entry.get("sentBy") == "application"
        }

    def candidates(self, direction: str, frame: dict[str, Any]) -> list[Message]:
        """The ``direction`` messages whose ``action`` allows the frame's."""
        return [
            message
            for message in self.messages[direction].values()
            if frame.get("action") in message.actions
        ]

    def matches(self, direction: str, frame: dict[str, Any]) -> list[str]:
        """The keys of the ``direction`` messages ``frame`` is valid for."""
        return [
            message.key
            for message in self.candidates(direction, frame)
            if message.validator.is_valid(frame)
        ]

    def problem(self, direction: str, data: str | bytes | None) -> str | None:
        """Why ``data`` (one frame's payload) is not a valid ``direction`` frame, or None."""
        try:
            return self.check(direction, data)
        except RecursionError:
            return f"nested too deeply to check: {data!r:.200}"

    def check(self, direction: str, data: str | bytes | None) -> str | None:
        if not isinstance(data, str):
            return f"a binary frame ({data!r:.80}): every frame is JSON text"
        try:
            frame = json.loads(data)
        except ValueError:
            return f"not JSON: {data!r:.200}"
        if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
            return f"not a JSON object with an 'action' string: {data!r:.200}"
        candidates = self.candidates(direction, frame)
        if not candidates:
            return f"no {direction} message has action {frame['action']!r}: {data!r:.200}"
        matches = [message.key for message in candidates if message.validator.is_valid(frame)]
        if len(matches) == 1:
            return None
        if matches:
            return f"matches several {direction} messages {matches}: {data!r:.200}"
        reasons = "\n".join(
            f"    {message.key}: {error.message:.200} at {error.json_path}"
            for message in candidates
            for error in list(message.validator.iter_errors(frame))[:3]
        )
        return f"matches no {direction} message:\n    frame: {data:.400}\n{reasons}"


class Recorder:
    """Counts the frames checked and keeps the problems of the running test phase."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.checked = {CLIENT: 0, SERVER: 0}
        self.excused = 0
        self.check_client = True
        self.problems: list[str] = []

    def client_frame(self, data: str | bytes | None, via: str) -> None:
        if not self.check_client:
            self.excused += 1
            return
        self.checked[CLIENT] += 1
        self.note(self.catalogue.problem(CLIENT, data), f"client frame sent through {via}")

    def server_frame(self, data: str | bytes | None, via: str) -> None:
        self.checked[SERVER] += 1
        self.note(self.catalogue.problem(SERVER, data), f"server frame received through {via}")

    def close_code(self, code: int | None) -> None:
        if code is None or code == NORMAL_CLOSURE or code in self.catalogue.app_close_codes:
            return
        self.note(f"close code {code} is not in x-close-codes", "server close")

    def note(self, problem: str | None, what: str) -> None:
        if problem is not None:
            self.problems.append(f"{what}: {problem}")

    def phase(self, item: pytest.Item) -> Generator[None, Any, Any]:
        """Around one phase of one test: fail it when it produced an invalid frame."""
        self.check_client = item.get_closest_marker(MARKER) is None
        self.problems = []
        try:
            result = yield
        except BaseException:
            if self.problems:
                item.add_report_section("call", "asyncapi", self.report())
            raise
        finally:
            self.check_client = True
        if self.problems:
            pytest.fail(self.report(), pytrace=False)
        return result

    def report(self) -> str:
        problems, self.problems = self.problems, []
        count = len(problems)
        shown = "\n".join(problems[:5])
        more = f"\n(and {count - 5} more)" if count > 5 else ""
        return (
            f"{count} frame(s) do not match docs/asyncapi.yaml "
            f"(mark a test that sends invalid client frames on purpose with "
            f"@pytest.mark.{MARKER}):\n{shown}{more}"
        )


RECORDER: Recorder | None = None


def install(recorder: Recorder) -> None:
    """Wrap the communicator's and the websockets client's send and receive, once."""
    from channels.testing import WebsocketCommunicator
    from websockets.asyncio.connection import Connection

    send_input = WebsocketCommunicator.send_input
    receive_output = WebsocketCommunicator.receive_output

    async def checked_send_input(self: Any, message: dict[str, Any]) -> Any:
        if message.get("type") == "websocket.receive":
            recorder.client_frame(
                message.get("text", message.get("bytes")), "WebsocketCommunicator"
            )
        return await send_input(self, message)

    async def checked_receive_output(self: Any, timeout: float = 1) -> Any:
        output = await receive_output(self, timeout)
        if output.get("type") == "websocket.send":
            recorder.server_frame(output.get("text", output.get("bytes")), "WebsocketCommunicator")
        elif output.get("type") == "websocket.close":
            recorder.close_code(output.get("code"))
        return output

    send = Connection.send
    recv = Connection.recv

    async def checked_send(self: Any, message: Any, **kwargs: Any) -> Any:
        if isinstance(message, str):
            recorder.client_frame(message, "websockets")
        elif isinstance(message, (bytes, bytearray, memoryview)):
            # send(bytes, text=True) sends a text frame.
            data = bytes(message)
            recorder.client_frame(
                data.decode("utf-8", "replace") if kwargs.get("text") else data, "websockets"
            )
        return await send(self, message, **kwargs)

    async def checked_recv(self: Any, *args: Any, **kwargs: Any) -> Any:
        data = await recv(self, *args, **kwargs)
        # recv(decode=False) reads a text frame as bytes; otherwise bytes mean a binary frame.
        as_bytes = kwargs.get("decode", args[0] if args else None) is False
        frame = data.decode("utf-8", "replace") if as_bytes else data
        recorder.server_frame(frame, "websockets")
        return data

    WebsocketCommunicator.send_input = checked_send_input
    WebsocketCommunicator.receive_output = checked_receive_output
    Connection.send = checked_send  # type: ignore[method-assign]
    Connection.recv = checked_recv  # type: ignore[method-assign]


def pytest_configure(config: pytest.Config) -> None:
    global RECORDER
    if RECORDER is None:
        RECORDER = Recorder(Catalogue.load())
        install(RECORDER)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, Any, Any]:
    assert RECORDER is not None
    return (yield from RECORDER.phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, Any, Any]:
    assert RECORDER is not None
    return (yield from RECORDER.phase(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, Any, Any]:
    assert RECORDER is not None
    return (yield from RECORDER.phase(item))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if RECORDER is None:
        return
    checked = RECORDER.checked
    terminalreporter.write_line(
        f"asyncapi: {checked[CLIENT] + checked[SERVER]} frames validated against "
        f"docs/asyncapi.yaml ({checked[CLIENT]} client, {checked[SERVER]} server; "
        f"{RECORDER.excused} client frames excused by @pytest.mark.{MARKER})"
    )
