"""The floor: a raw ``websockets`` server that broadcasts what one Redis pub/sub channel carries.

No framework, no channel layer, no per-socket work: ``websockets.broadcast()`` writes each
published frame to every open socket. Whatever the app costs above this is overhead.

    python -m bench.floor PORT REDIS_URL CHANNEL FIRST_FRAME_FILE
"""

from __future__ import annotations

import asyncio
import sys

import redis.asyncio as redis
from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int, redis_url: str, channel: str, first_frame: str) -> None:
    sockets: set[ServerConnection] = set()

    async def handler(ws: ServerConnection) -> None:
        sockets.add(ws)
        try:
            await ws.send(first_frame)
            await ws.wait_closed()
        finally:
            sockets.discard(ws)

    client = redis.Redis.from_url(redis_url)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(channel)
    async with serve(handler, "127.0.0.1", port, compression=None, max_queue=None):
        async for message in pubsub.listen():
            if message["type"] == "message":
                broadcast(sockets, message["data"].decode())


if __name__ == "__main__":
    port, redis_url, channel, frame_file = sys.argv[1:5]
    with open(frame_file, encoding="utf-8") as file:
        frame = file.read()
    asyncio.run(main(int(port), redis_url, channel, frame))
