"""The WebSocket consumer: thin methods that validate input and call ``services``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import delivery, payloads, services
from .conf import app_settings
from .protocol import (
    CloseCode,
    ErrorCode,
    ProtocolError,
    Request,
    parse_request,
    since_from_query_string,
)

logger = logging.getLogger(__name__)

open_session = database_sync_to_async(services.open_session)
unread_rows = database_sync_to_async(services.unread_rows)
notifications_page = database_sync_to_async(services.notifications_page)
mark_read = database_sync_to_async(services.mark_read)
rows_since = database_sync_to_async(services.rows_since)

#: How many recently sent notification ids a socket remembers to drop duplicates.
RECENT_IDS = 1024
#: Tries per group when joining (each bounded by LAYER_TIMEOUT as a whole).
JOIN_ATTEMPTS = 3


class NotificationConsumer(AsyncWebsocketConsumer):
    """One vendor-notification socket. See ``docs/protocol.md`` for every frame."""

    session: services.Session | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_layer_alias = app_settings.CHANNEL_LAYER
        self.accepted = False
        # Newest notification id this socket has accounted for; pushes whose previous_id is
        # newer reveal a gap (a full channel, a layer outage), filled from the database.
        self.last_id = 0
        self.recent_ids: deque[int] = deque(maxlen=RECENT_IDS)
        self.keepalive: asyncio.Task[None] | None = None
        self.actions: dict[str, Callable[[Request], Awaitable[payloads.Frame]]] = {
            "mark_read": self.action_mark_read,
            "load_more": self.action_load_more,
            "sync": self.action_sync,
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            # The channel layer failed under an open socket (Redis went away): it can no
            # longer receive pushes, so tell the client to come back and sync.
            logger.warning("Channel layer failed under a notification socket: %r", exc)
            await self.close_try_again_later()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # Pushes carry ready-made frames and touch no database, so they skip the worker-thread
        # hop Channels makes before every handler to close stale database connections: that
        # hop is most of the cost of a push.
        if message["type"] == delivery.PUSH_EVENT:
            await self.forward_push(message)
        elif message["type"] == delivery.BROADCAST_EVENT:
            await self.forward_broadcast(message)
        else:
            await super().dispatch(message)

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept before closing: a close before accept() reaches a browser as 1006, not 4001.
        await self.accept()
        self.accepted = True
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CloseCode.AUTHENTICATION_FAILED)
            return
        session = await open_session(user)
        if session is None:
            await self.close(code=CloseCode.PERMISSION_DENIED)
            return
        # Join before reading the snapshot: a notification committed in between then shows up
        # in both, and recent_ids drops the second copy, rather than being missed.
        if not await self.join_groups(session.groups):
            await self.close_try_again_later()
            return
        self.session = session
        self.last_id = session.last_id
        rows = await unread_rows(session.vendor_id)
        self.remember(row["id"] for row in rows)
        await self.send_frame(payloads.unread_notifications_frame(rows))
        self.keepalive = self.start_group_keepalive()
        await self.answer_since_parameter()

    async def disconnect(self, code: int) -> None:
        if self.keepalive is not None:
            self.keepalive.cancel()
        if self.session is not None:
            groups, self.session = self.session.groups, None
            with contextlib.suppress(Exception):
                # Best effort: when Redis is away the membership simply expires.
                for group in groups:
                    await self.channel_layer.group_discard(group, self.channel_name)

    async def join_groups(self, groups: Iterable[str]) -> bool:
        """Join every group within LAYER_TIMEOUT; False when the layer is unreachable."""

        async def join_all() -> None:
            for group in groups:
                for attempt in range(JOIN_ATTEMPTS):
                    try:
                        await self.channel_layer.group_add(group, self.channel_name)
                        break
                    except Exception as exc:
                        # Right after Redis restarts, pooled connections fail once each.
                        if attempt == JOIN_ATTEMPTS - 1 or not is_layer_failure(exc):
                            raise
                        await asyncio.sleep(0.05 * (attempt + 1))

        try:
            await asyncio.wait_for(join_all(), app_settings.LAYER_TIMEOUT)
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            logger.warning("Could not join notification groups: %r", exc)
            return False
        return True

    def start_group_keepalive(self) -> asyncio.Task[None] | None:
        """Re-join the groups before the layer's group_expiry drops this socket from them."""
        expiry = getattr(self.channel_layer, "group_expiry", None)
        if not expiry:
            return None
        return asyncio.get_running_loop().create_task(self.keep_groups_alive(expiry / 2))

    async def keep_groups_alive(self, interval: float) -> None:
        while self.session is not None:
            await asyncio.sleep(interval)
            if self.session is None or not await self.join_groups(self.session.groups):
                break

    async def close_try_again_later(self) -> None:
        with contextlib.suppress(Exception):
            if not self.accepted:
                await self.accept()
            await self.close(code=CloseCode.TRY_AGAIN_LATER)

    async def answer_since_parameter(self) -> None:
        """``?since=N`` on the URL: a reconnecting client wants a sync right after the snapshot."""
        try:
            since_id = since_from_query_string(self.scope.get("query_string", b""))
        except ProtocolError as error:
            await self.send_frame(payloads.error_frame(error.code, error.message))
            return
        if since_id is not None:
            await self.send_frame(await self.sync_frame(since_id))

    # --- client messages -------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.session is None:
            return
        request_id = None
        try:
            request = parse_request(text_data, bytes_data)
            request_id = request.request_id
            action = self.actions.get(request.action)
            if action is None:
                raise ProtocolError(
                    ErrorCode.UNKNOWN_ACTION,
                    f"Unknown action; expected one of {sorted(self.actions)}.",
                    request_id,
                )
            reply = await action(request)
        except ProtocolError as error:
            reply = payloads.error_frame(error.code, error.message)
            request_id = error.request_id
        except Exception:
            # Never a traceback to the client; the server log keeps it.
            logger.exception("Unexpected error while handling a notification socket message.")
            reply = payloads.error_frame(ErrorCode.INTERNAL_ERROR, "The server failed.")
        await self.send_frame(payloads.with_request_id(reply, request_id))

    async def action_mark_read(self, request: Request) -> payloads.Frame:
        notification_id = request.positive_int("notification_id")
        assert self.session is not None
        result = await mark_read(self.session.vendor_id, notification_id)
        if result.newly_read:
            # The vendor's other sockets (tabs, staff) update their badge; this one gets the
            # reply below.
            frame = payloads.notification_read_frame(notification_id, result.unread_total)
            event = delivery.push_event(payloads.encode(frame), exclude=self.channel_name)
            await delivery.asend_event(delivery.vendor_group(self.session.vendor_id), event)
        return payloads.mark_read_frame(notification_id, result.found)

    async def action_load_more(self, request: Request) -> payloads.Frame:
        page = request.positive_int("page")
        assert self.session is not None
        return await notifications_page(self.session.vendor_id, page)

    async def action_sync(self, request: Request) -> payloads.Frame:
        return await self.sync_frame(request.bounded_int("since_id", minimum=0))

    async def sync_frame(self, since_id: int) -> payloads.Frame:
        assert self.session is not None
        rows, has_more = await rows_since(self.session.vendor_id, since_id)
        self.remember(row["id"] for row in rows)
        return payloads.sync_frame(since_id, rows, has_more)

    # --- channel-layer events --------------------------------------------------------------

    async def forward_push(self, event: dict[str, Any]) -> None:
        if event.get("exclude") == self.channel_name or self.session is None:
            return
        notification_id = event.get("id")
        if notification_id is None:
            await self.send(text_data=event["text"])
        elif event["previous_id"] > self.last_id:
            # A notification before this one never reached this socket: send what is missing,
            # this one included, from the database.
            await self.fill_gap()
        elif notification_id not in self.recent_ids:
            self.remember((notification_id,))
            await self.send(text_data=event["text"])

    async def forward_broadcast(self, event: dict[str, Any]) -> None:
        if self.session is None:
            return
        notification_id = event["ids"].get(str(self.session.vendor_id))
        if notification_id is None or notification_id in self.recent_ids:
            return
        self.remember((notification_id,))
        text = (
            event["template"]
            .replace(delivery.ID_PLACEHOLDER, str(notification_id), 1)
            .replace(delivery.VENDOR_PLACEHOLDER, payloads.encode(self.session.vendor_id), 1)
        )
        await self.send(text_data=text)

    async def fill_gap(self) -> None:
        """Send every notification after last_id, as the pushes this socket missed."""
        assert self.session is not None
        has_more = True
        while has_more:
            rows, has_more = await rows_since(self.session.vendor_id, self.last_id)
            for row in rows:
                if row["id"] not in self.recent_ids:
                    await self.send_frame(payloads.new_notification_frame(row))
                self.remember((row["id"],))

    def remember(self, notification_ids: Iterable[int]) -> None:
        for notification_id in notification_ids:
            self.recent_ids.append(notification_id)
            self.last_id = max(self.last_id, notification_id)

    async def reload_unread_notifications(self, event: dict[str, Any]) -> None:
        if self.session is not None:
            rows = await unread_rows(self.session.vendor_id)
            await self.send_frame(payloads.unread_notifications_frame(rows))

    async def send_frame(self, frame: payloads.Frame) -> None:
        await self.send(text_data=payloads.encode(frame))


def is_layer_failure(exc: BaseException) -> bool:
    """Whether ``exc`` means the channel layer (Redis) is unreachable or too slow."""
    if isinstance(exc, (OSError, TimeoutError, asyncio.TimeoutError)):
        return True
    # redis-py's errors do not derive from OSError; match them without importing redis,
    # which is an optional dependency.
    return any(cls.__module__.startswith("redis") for cls in type(exc).__mro__)
