"""backpressure: a daphne socket's frames wait while Twisted's write buffer is full; and a
client that left mid-send is ClientGone on every server.

The end-to-end proof is tests/e2e/test_faults.py (a client that stops reading on a real
daphne); these pin the gate's own rules.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any

import pytest
from autobahn.exception import Disconnected
from twisted.internet.testing import StringTransport

from django_vendor_notifications.backpressure import TransportGate, gated, install_gate
from django_vendor_notifications.consumers import ClientGone, send_or_raise_client_gone


class Producer:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def pauseProducing(self) -> None:  # noqa: N802
        self.calls.append("pause")

    def resumeProducing(self) -> None:  # noqa: N802
        self.calls.append("resume")

    def stopProducing(self) -> None:  # noqa: N802
        self.calls.append("stop")


class Protocol:
    """What daphne hands an application as the partial's argument: it has a transport."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport


def daphne_send(protocol: Protocol, sent: list[dict[str, Any]]) -> Any:
    async def handle_reply(protocol: Protocol, message: dict[str, Any]) -> None:
        sent.append(message)

    return functools.partial(handle_reply, protocol)


async def test_a_frame_waits_while_the_transport_is_paused_and_goes_when_it_drains() -> None:
    transport, sent = StringTransport(), []
    send = gated(daphne_send(Protocol(transport), sent))
    gate = transport.producer
    assert isinstance(gate, TransportGate)
    gate.pauseProducing()
    frame = asyncio.ensure_future(send({"type": "websocket.send", "text": "1"}))
    await asyncio.sleep(0.01)
    assert sent == [] and not frame.done()
    gate.resumeProducing()
    await asyncio.wait_for(frame, 1)
    assert sent == [{"type": "websocket.send", "text": "1"}]


async def test_a_close_never_waits_and_a_lost_connection_releases_a_waiting_frame() -> None:
    transport, sent = StringTransport(), []
    send = gated(daphne_send(Protocol(transport), sent))
    gate = transport.producer
    gate.pauseProducing()
    await asyncio.wait_for(send({"type": "websocket.close", "code": 4012}), 1)
    frame = asyncio.ensure_future(send({"type": "websocket.send", "text": "1"}))
    await asyncio.sleep(0.01)
    assert not frame.done()
    gate.stopProducing()
    await asyncio.wait_for(frame, 1)
    assert [message["type"] for message in sent] == ["websocket.close", "websocket.send"]


def test_the_gate_takes_the_place_of_the_upgrades_producer_and_passes_calls_on() -> None:
    transport, previous = StringTransport(), Producer()
    transport.registerProducer(previous, True)
    gate = install_gate(transport)
    assert gate is not None and transport.producer is gate
    gate.pauseProducing()
    gate.resumeProducing()
    gate.stopProducing()
    assert previous.calls == ["pause", "resume", "stop"]


async def test_other_servers_sends_are_left_as_they_are() -> None:
    async def uvicorn_send(message: dict[str, Any]) -> None:
        pass

    assert gated(uvicorn_send) is uvicorn_send
    no_transport = functools.partial(uvicorn_send)
    assert gated(no_transport) is no_transport
    # A transport of another kind (daphne serving TLS itself): no gate, the server buffers.
    other = daphne_send(Protocol(object()), [])
    assert gated(other) is other


@pytest.mark.parametrize("error", [Disconnected("Attempt to send on a closed protocol"),
                                   ConnectionResetError()])
async def test_a_send_to_a_client_that_left_is_client_gone_not_a_failure(error: Exception) -> None:
    async def server_send(message: dict[str, Any]) -> None:
        raise error

    with pytest.raises(ClientGone):
        await send_or_raise_client_gone(server_send)({"type": "websocket.send", "text": "1"})


async def test_any_other_send_error_is_left_as_it_is() -> None:
    async def server_send(message: dict[str, Any]) -> None:
        raise ValueError("not a client that left")

    with pytest.raises(ValueError):
        await send_or_raise_client_gone(server_send)({"type": "websocket.send", "text": "1"})
