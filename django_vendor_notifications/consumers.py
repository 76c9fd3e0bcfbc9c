"""The WebSocket consumer: thin methods that validate input and call ``services``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer

from . import auth, delivery, payloads, services, watchdog
from .conf import app_settings
from .layers import is_layer_failure
from .limits import TokenBucket, open_sockets
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
cursor_page = database_sync_to_async(services.cursor_page)
mark_read = database_sync_to_async(services.mark_read)
mark_all_read = database_sync_to_async(services.mark_all_read)
mark_unread = database_sync_to_async(services.mark_unread)
archive = database_sync_to_async(services.archive)
unarchive = database_sync_to_async(services.unarchive)
unread_counts = database_sync_to_async(services.unread_counts)
rows_since = database_sync_to_async(services.rows_since)
check_access = database_sync_to_async(services.check_access)
authenticate = database_sync_to_async(auth.authenticate)

#: How many recently sent notification ids a socket remembers to drop duplicates.
RECENT_IDS = 1024
#: Tries per group when joining (each bounded by LAYER_TIMEOUT as a whole).
JOIN_ATTEMPTS = 3
#: Seconds a message may take to handle, or a push to arrive after it was published, before
#: the socket assumes its channel may have overflowed meanwhile (a client that stopped reading
#: blocks send(); a burst outpaces the socket); it then catches up from the database
#: CATCH_UP_AFTER seconds after the last such message.
SLOW_DISPATCH = 1.0
CATCH_UP_AFTER = 1.0


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
        self.housekeeping: asyncio.Task[None] | None = None
        self.catch_up: asyncio.Task[None] | None = None
        self.catch_up_due = 0.0
        # Pushes, gap fills and catch-ups send in id order, one at a time.
        self.delivering = asyncio.Lock()
        # Set once a socket is being closed on purpose: nothing more is delivered to it.
        self.closing = False
        self.counted_user_id: Any = None
        self.expires_at: float | None = None
        self.rate_limit = TokenBucket(
            app_settings.RATE_LIMIT_PER_SECOND, app_settings.RATE_LIMIT_BURST
        )
        self.rejected_in_a_row = 0
        self.actions: dict[str, Callable[[Request], Awaitable[payloads.Frame]]] = {
            "mark_read": self.action_mark_read,
            "load_more": self.action_load_more,
            "sync": self.action_sync,
            "refresh_token": self.action_refresh_token,
            "get_unread_counts": self.action_get_unread_counts,
            "mark_all_read": self.action_mark_all_read,
            "mark_unread": self.action_mark_unread,
            "archive": self.action_archive,
            "unarchive": self.action_unarchive,
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
        started = time.monotonic()
        try:
            await self.dispatch_now(message)
        finally:
            if time.monotonic() - started > SLOW_DISPATCH and self.session is not None:
                # While this socket was stuck, its channel may have filled up, and a full
                # channel drops the newest pushes: no later push would reveal that gap.
                self.schedule_catch_up()

    async def dispatch_now(self, message: dict[str, Any]) -> None:
        # Pushes carry ready-made frames and touch no database, so they skip the worker-thread
        # hop Channels makes before every handler to close stale database connections: that
        # hop is most of the cost of a push.
        if message["type"] == delivery.PUSH_EVENT:
            await self.forward_push(message)
        elif message["type"] == delivery.BROADCAST_EVENT:
            await self.forward_broadcast(message)
        elif message["type"].startswith("websocket.") or hasattr(
            self, message["type"].replace(".", "_")
        ):
            await super().dispatch(message)
        else:
            # An event this version does not know (a newer publisher, a host's typo) must not
            # take the socket down.
            logger.warning("Ignoring unknown channel-layer event %r.", message["type"])

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        handshake = self.scope.get(auth.SCOPE_KEY) or {}
        # Accept before closing: a close before accept() reaches a browser as 1006, not 4001.
        # A client that authenticated with the bearer subprotocol must get it back, or the
        # browser fails the handshake.
        await self.accept(subprotocol=handshake.get("subprotocol"))
        self.accepted = True
        user = self.scope.get("user")
        # int(): daphne's WebSocket library (autobahn) refuses any close code whose type is not
        # exactly int, an IntEnum included, and then closes with 1011 instead.
        if user is None or not user.is_authenticated:
            await self.close_with(CloseCode.AUTHENTICATION_FAILED)
            return
        if not open_sockets.acquire(user.pk, app_settings.MAX_SOCKETS_PER_USER):
            await self.close_with(CloseCode.TOO_MANY_REQUESTS)
            return
        self.counted_user_id = user.pk
        self.expires_at = handshake.get("expires_at")
        session = await open_session(user)
        if session is None:
            await self.close_with(CloseCode.PERMISSION_DENIED)
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
        await self.send_frame(payloads.unread_notifications_frame(rows, session.unread_counts))
        self.housekeeping = asyncio.get_running_loop().create_task(self.keep_house())
        if app_settings.LAYER_CHECK_INTERVAL:
            watchdog.watchdog_for(self.channel_layer_alias).watch(self)
        await self.answer_since_parameter()

    async def disconnect(self, code: int) -> None:
        if self.housekeeping is not None:
            self.housekeeping.cancel()
        if self.catch_up is not None:
            self.catch_up.cancel()
        with contextlib.suppress(RuntimeError):  # no running loop: nothing was watched
            watchdog.watchdog_for(self.channel_layer_alias).forget(self)
        if self.counted_user_id is not None:
            open_sockets.release(self.counted_user_id)
            self.counted_user_id = None
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

    async def keep_house(self) -> None:
        """One timer per socket: re-join groups before group_expiry drops them, close when the
        token has expired (after TOKEN_EXPIRY_GRACE) and re-check access every
        REVALIDATE_INTERVAL."""
        loop = asyncio.get_running_loop()
        expiry = getattr(self.channel_layer, "group_expiry", None)
        rejoin_every = expiry / 2 if expiry else math.inf
        recheck_every = app_settings.REVALIDATE_INTERVAL or math.inf
        next_rejoin = loop.time() + rejoin_every
        next_recheck = loop.time() + recheck_every
        while self.session is not None and not self.closing:
            token_left = math.inf
            if self.expires_at is not None:
                token_left = self.expires_at + app_settings.TOKEN_EXPIRY_GRACE - time.time()
            now = loop.time()
            wait = min(next_rejoin - now, next_recheck - now, token_left)
            if wait > 0:
                await asyncio.sleep(min(wait, 3600))
                continue
            if token_left <= 0:
                await self.close_with(CloseCode.AUTHENTICATION_FAILED)
            elif now >= next_rejoin:
                next_rejoin = now + rejoin_every
                if not await self.join_groups(self.session.groups):
                    await self.close_try_again_later()
            else:
                next_recheck = now + recheck_every
                await self.session_revalidate({})

    async def heal(self) -> None:
        """The channel layer may have forgotten this socket (see ``watchdog``): join again,
        then fill any gap from the database."""
        if self.session is None or self.closing:
            return
        if not await self.join_groups(self.session.groups):
            await self.close_try_again_later()
            return
        self.schedule_catch_up()

    async def close_try_again_later(self) -> None:
        with contextlib.suppress(Exception):
            if not self.accepted:
                await self.accept()
            await self.close_with(CloseCode.TRY_AGAIN_LATER)

    async def close_with(self, code: CloseCode) -> None:
        self.closing = True
        # A plain int: daphne's WebSocket library rejects an IntEnum and would send 1011.
        await self.close(code=int(code))

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
        if self.session is None or self.closing:
            return
        if not self.rate_limit.allow():
            self.rejected_in_a_row += 1
            if self.rejected_in_a_row > app_settings.RATE_LIMIT_CLOSE_AFTER:
                await self.close_with(CloseCode.TOO_MANY_REQUESTS)
            else:
                await self.send_frame(
                    payloads.error_frame(ErrorCode.RATE_LIMITED, "Too many messages; slow down.")
                )
            return
        self.rejected_in_a_row = 0
        request_id = None
        try:
            check_size(text_data, bytes_data)
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
        if not self.closing:
            await self.send_frame(payloads.with_request_id(reply, request_id))

    async def action_mark_read(self, request: Request) -> payloads.Frame:
        notification_id = request.positive_int("notification_id")
        assert self.session is not None
        result = await mark_read(self.session.vendor_id, notification_id)
        if result.newly_read:
            assert result.unread_total is not None
            await self.push_to_other_sockets(
                payloads.notification_read_frame(notification_id, result.unread_total)
            )
        return payloads.mark_read_frame(notification_id, result.found)

    async def action_mark_all_read(self, request: Request) -> payloads.Frame:
        category = request.optional_label("category")
        assert self.session is not None
        result = await mark_all_read(self.session.vendor_id, category)
        if result.updated:
            await self.push_to_other_sockets(
                payloads.unread_count_changed_frame(result.unread_counts)
            )
        unread_total = sum(result.unread_counts.values())
        return payloads.mark_all_read_frame(category, result.updated, unread_total)

    async def action_mark_unread(self, request: Request) -> payloads.Frame:
        return await self.change_one(request, mark_unread)

    async def action_archive(self, request: Request) -> payloads.Frame:
        return await self.change_one(request, archive)

    async def action_unarchive(self, request: Request) -> payloads.Frame:
        return await self.change_one(request, unarchive)

    async def change_one(
        self,
        request: Request,
        change: Callable[[Any, int], Awaitable[services.ChangeResult]],
    ) -> payloads.Frame:
        """An action on one notification whose reply is success or not_found."""
        notification_id = request.positive_int("notification_id")
        assert self.session is not None
        result = await change(self.session.vendor_id, notification_id)
        if result.unread_counts is not None:
            await self.push_to_other_sockets(
                payloads.unread_count_changed_frame(result.unread_counts)
            )
        return payloads.notification_status_frame(request.action, notification_id, result.found)

    async def action_get_unread_counts(self, request: Request) -> payloads.Frame:
        assert self.session is not None
        return payloads.unread_counts_frame(await unread_counts(self.session.vendor_id))

    async def push_to_other_sockets(self, frame: payloads.Frame) -> None:
        """The vendor's other sockets (tabs, staff) update their badges; this socket gets the
        reply to its own request instead."""
        assert self.session is not None
        event = delivery.push_event(payloads.encode(frame), exclude=self.channel_name)
        await delivery.asend_event(delivery.vendor_group(self.session.vendor_id), event)

    async def action_load_more(self, request: Request) -> payloads.Frame:
        assert self.session is not None
        if "before_id" not in request.data:
            # The spec's page numbers.
            return await notifications_page(self.session.vendor_id, request.positive_int("page"))
        if "page" in request.data:
            raise ProtocolError(
                ErrorCode.INVALID_FIELD,
                "Send either 'page' or 'before_id', not both.",
                request.request_id,
            )
        return await cursor_page(
            self.session.vendor_id,
            request.optional_positive_int("before_id"),
            request.optional_positive_int("limit"),
            category=request.optional_label("category"),
            is_read=request.optional_bool("is_read"),
            archived=request.optional_bool("archived"),
        )

    async def action_refresh_token(self, request: Request) -> payloads.Frame:
        """Extend the socket's life with a fresh access token of the same user."""
        assert self.session is not None
        token = request.data.get("token")
        result = await authenticate(token if isinstance(token, str) else None)
        if not result.user.is_authenticated or result.user.pk != self.session.user_id:
            await self.close_with(CloseCode.AUTHENTICATION_FAILED)
            raise ProtocolError(
                ErrorCode.INVALID_FIELD, "'token' is not a valid access token of this user."
            )
        self.expires_at = result.expires_at
        if self.housekeeping is not None:
            # Wake the timer so it sleeps until the new expiry.
            self.housekeeping.cancel()
            self.housekeeping = asyncio.get_running_loop().create_task(self.keep_house())
        return {"action": "refresh_token", "status": "success", "expires_at": result.expires_at}

    async def action_sync(self, request: Request) -> payloads.Frame:
        return await self.sync_frame(request.bounded_int("since_id", minimum=0))

    async def sync_frame(self, since_id: int) -> payloads.Frame:
        assert self.session is not None
        rows, has_more = await rows_since(self.session.vendor_id, since_id)
        self.remember(row["id"] for row in rows)
        return payloads.sync_frame(since_id, rows, has_more)

    # --- channel-layer events --------------------------------------------------------------

    async def forward_push(self, event: dict[str, Any]) -> None:
        if event.get("exclude") == self.channel_name or self.session is None or self.closing:
            return
        notification_id = event.get("id")
        if notification_id is None:
            await self.send(text_data=event["text"])
            return
        if time.time() - event.get("sent_at", math.inf) > SLOW_DISPATCH:
            # A push this late waited behind a backlog in the socket's channel; a full channel
            # drops the newest pushes, and nothing later might reveal them.
            self.schedule_catch_up()
        async with self.delivering:
            if event["previous_id"] > self.last_id:
                # A notification before this one never reached this socket: send what is
                # missing, this one included, from the database.
                await self.fill_gap()
            elif notification_id not in self.recent_ids:
                self.remember((notification_id,))
                await self.send(text_data=event["text"])

    async def forward_broadcast(self, event: dict[str, Any]) -> None:
        if self.session is None or self.closing:
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
        while has_more and self.session is not None and not self.closing:
            rows, has_more = await rows_since(self.session.vendor_id, self.last_id)
            for row in rows:
                fresh = row["id"] not in self.recent_ids
                self.remember((row["id"],))
                if fresh:
                    await self.send_frame(payloads.new_notification_frame(row))

    def schedule_catch_up(self) -> None:
        """Fill any gap from the database once the socket has kept up for CATCH_UP_AFTER."""
        self.catch_up_due = time.monotonic() + CATCH_UP_AFTER
        if self.catch_up is None or self.catch_up.done():
            self.catch_up = asyncio.get_running_loop().create_task(self.catch_up_later())

    async def catch_up_later(self) -> None:
        # Never cancelled midway (only on disconnect): a fill cut short could leave an id
        # remembered but unsent.
        while (wait := self.catch_up_due - time.monotonic()) > 0:
            await asyncio.sleep(wait)
        async with self.delivering:
            if self.session is not None and not self.closing:
                await self.fill_gap()

    def remember(self, notification_ids: Iterable[int]) -> None:
        for notification_id in notification_ids:
            self.recent_ids.append(notification_id)
            self.last_id = max(self.last_id, notification_id)

    async def session_revalidate(self, event: dict[str, Any]) -> None:
        """Close the socket (4001/4003) when its user has lost access since it connected."""
        if self.session is None or self.closing:
            return
        code = await check_access(self.session.user_id, self.session.vendor_id)
        if code is not None:
            await self.close_with(code)

    async def reload_unread_notifications(self, event: dict[str, Any]) -> None:
        if self.session is not None:
            rows = await unread_rows(self.session.vendor_id)
            counts = await unread_counts(self.session.vendor_id)
            await self.send_frame(payloads.unread_notifications_frame(rows, counts))

    async def send_frame(self, frame: payloads.Frame) -> None:
        await self.send(text_data=payloads.encode(frame))


def check_size(text_data: str | None, bytes_data: bytes | None) -> None:
    """Refuse a client message larger than MAX_MESSAGE_BYTES before parsing it."""
    limit = app_settings.MAX_MESSAGE_BYTES
    # A str holds at most 4 UTF-8 bytes per character: skip encoding when it cannot be over.
    if text_data is not None and len(text_data) * 4 > limit:
        size = len(text_data.encode("utf-8", "surrogatepass"))
    else:
        size = len(bytes_data or b"")
    if size > limit:
        raise ProtocolError(ErrorCode.MESSAGE_TOO_LARGE, f"Messages are limited to {limit} bytes.")
