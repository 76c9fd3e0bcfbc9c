"""The WebSocket consumer: thin methods that validate input and call ``services``."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import payloads, services
from .conf import app_settings
from .protocol import CloseCode, ErrorCode, ProtocolError, Request, parse_request

logger = logging.getLogger(__name__)

open_session = database_sync_to_async(services.open_session)
unread_notifications = database_sync_to_async(services.unread_notifications)
notifications_page = database_sync_to_async(services.notifications_page)
mark_read = database_sync_to_async(services.mark_read)


class NotificationConsumer(AsyncWebsocketConsumer):
    """One vendor-notification socket. See ``docs/protocol.md`` for every frame."""

    session: services.Session | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_layer_alias = app_settings.CHANNEL_LAYER
        self.actions: dict[str, Callable[[Request], Awaitable[payloads.Frame]]] = {
            "mark_read": self.action_mark_read,
            "load_more": self.action_load_more,
        }

    async def dispatch(self, message: dict[str, Any]) -> None:
        # A push carries a ready-made frame and touches no database, so skip the worker-thread
        # hop Channels makes before every handler to close stale database connections: that
        # hop is most of the cost of a push.
        if message["type"] == services.PUSH_EVENT:
            await self.send(text_data=message["text"])
            return
        await super().dispatch(message)

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        # Accept before closing: a close before accept() reaches a browser as 1006, not 4001.
        await self.accept()
        user = self.scope.get("user")
        # int(): daphne's WebSocket library (autobahn) refuses any close code whose type is not
        # exactly int, an IntEnum included, and then closes with 1011 instead.
        if user is None or not user.is_authenticated:
            await self.close(code=int(CloseCode.AUTHENTICATION_FAILED))
            return
        session = await open_session(user)
        if session is None:
            await self.close(code=int(CloseCode.PERMISSION_DENIED))
            return
        # Join before reading the snapshot: a notification committed in between is then sent
        # twice (clients de-duplicate by id) rather than missed.
        for group in session.groups:
            await self.channel_layer.group_add(group, self.channel_name)
        self.session = session
        await self.send_frame(await unread_notifications(session.vendor_id))

    async def disconnect(self, code: int) -> None:
        if self.session is not None:
            for group in self.session.groups:
                await self.channel_layer.group_discard(group, self.channel_name)
            self.session = None

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
        found = await mark_read(self.session.vendor_id, notification_id)
        return payloads.mark_read_frame(notification_id, found)

    async def action_load_more(self, request: Request) -> payloads.Frame:
        page = request.positive_int("page")
        assert self.session is not None
        return await notifications_page(self.session.vendor_id, page)

    # --- channel-layer events --------------------------------------------------------------

    async def reload_unread_notifications(self, event: dict[str, Any]) -> None:
        if self.session is not None:
            await self.send_frame(await unread_notifications(self.session.vendor_id))

    async def send_frame(self, frame: payloads.Frame) -> None:
        await self.send(text_data=payloads.encode(frame))
