"""Refusing a WebSocket handshake without a consumer, and so without the channel layer.

Channels' ``WebsocketDenier`` is a consumer: every handshake it refuses (a foreign Origin, a
path that matches no route) first takes a channel of the channel layer and starts receiving
on it. That costs a Redis round trip per refused handshake, anyone can send them, and on
Python 3.11 a channels-redis receive cancelled while its connection is still opening can be
left hanging, so a server asked to stop waits for it for ever (uvicorn did, after a burst of
refused handshakes). ``refuse_handshake`` answers the same way, HTTP 403, and touches nothing.
"""

from __future__ import annotations

from typing import Any


async def refuse_handshake(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI application that refuses the WebSocket handshake (a close before accept)."""
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close"})
