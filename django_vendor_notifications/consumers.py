"""The WebSocket consumer: thin methods that validate input and call ``services``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from . import actions, auth, backpressure, delivery, payloads, preferences, presence, services
from .conf import app_settings
from .database import DatabaseUnavailable, in_thread
from .drain import DRAIN_EVENT, drain_for_loop
from .feed import Feed, Verdict
from .hub import Hub, hub_for
from .inbox import BROKEN, REPAIR, Inbox
from .layers import is_layer_failure
from .limits import TokenBucket, open_sockets, pending_connects
from .protocol import (
    CloseCode,
    ErrorCode,
    ProtocolError,
    Request,
    parse_request,
    since_from_query_string,
)
from .shared_reads import SharedReads
from .timers import TOKEN_EXPIRED_EVENT, WAKE_EVENT, SocketTimers

logger = logging.getLogger(__name__)

start_session = in_thread(services.start_session)
rows_since = in_thread(services.rows_since)
#: Catch-ups after a lost probe or a late event, and reloads (a host's reload event reaches
#: every socket of a vendor at once): a vendor's sockets share one query.
rows_since_shared = SharedReads(rows_since)
inbox_state_shared = SharedReads(in_thread(services.inbox_state))
recheck = in_thread(services.recheck)
wake_due = in_thread(services.wake_due)
authenticate = in_thread(auth.authenticate)

#: Handlers that touch no database or open their own thread hop: called directly, without the
#: hop Channels makes before every handler to close stale database connections.
OWN_HANDLERS = frozenset(
    {
        "websocket_connect",
        "websocket_receive",
        "websocket_disconnect",
        "session_revalidate",
        "reload_unread_notifications",
    }
)


class NotificationConsumer(AsyncWebsocketConsumer):
    """One vendor-notification socket. See ``docs/protocol.md`` for every frame.

    The socket is not a channel-layer member itself: the process's ``hub`` holds the groups and
    hands each event to the socket's ``inbox``; one loop per socket takes the client's messages
    and those events in order and handles them here.
    """

    session: services.Session | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.channel_layer_alias = app_settings.CHANNEL_LAYER
        #: Names this socket in events (``exclude``) across every process.
        self.socket_id = secrets.token_hex(8)
        self.inbox = Inbox(app_settings.SOCKET_QUEUE_FRAMES, app_settings.SOCKET_QUEUE_BYTES)
        self.hub: Hub | None = None
        self.feed = Feed()
        self.accepted = False
        # Set once a socket is being closed on purpose: nothing more is delivered to it.
        self.closing = False
        self.counted_user_id: Any = None
        self.handshake: auth.Handshake | None = None
        self.timers = SocketTimers(self.inbox)
        self.rate_limit = TokenBucket(
            app_settings.RATE_LIMIT_PER_SECOND, app_settings.RATE_LIMIT_BURST
        )
        self.rejected_in_a_row = 0
        #: Categories not pushed live to this socket: its user muted them (PREFERENCES).
        self.quiet: frozenset[str] = frozenset()
        #: The actions that change this socket itself; the rest are ``actions.ACTIONS``.
        self.own_actions: dict[str, Callable[[Request], Awaitable[payloads.Frame]]] = {
            "sync": self.action_sync,
            "refresh_token": self.action_refresh_token,
            "get_preferences": self.action_get_preferences,
            "set_preferences": self.action_set_preferences,
        }

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.scope = scope
        handshake = scope.get(auth.SCOPE_KEY)
        # How the client authenticated, when it came through JWTAuthMiddleware.
        self.handshake = handshake if isinstance(handshake, auth.Handshake) else None
        if self.handshake is not None and type(self).connect is NotificationConsumer.connect:
            # connect() checks the token in its own thread hop; a subclass that overrides it
            # may read scope["user"] first, so gets it checked by the middleware as before.
            self.handshake.checked_by_consumer = True
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.base_send = send_or_raise_client_gone(backpressure.gated(send))
        reader = asyncio.get_running_loop().create_task(self.read_client(receive))
        try:
            while True:
                item = await self.inbox.get()
                try:
                    await self.dispatch(item)
                except DatabaseUnavailable as exc:
                    await self.without_database(item, exc)
        except StopConsumer:
            pass
        except ClientGone as gone:
            # Not a failure of ours: the client left while a frame was on its way.
            logger.debug("A notification socket's client left mid-send: %r", gone.__cause__)
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            logger.warning("Channel layer failed under a notification socket: %r", exc)
            await self.close_try_again_later()
        finally:
            reader.cancel()
            self.release()

    async def read_client(self, receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        """Move the client's messages into the inbox, until it disconnects."""
        try:
            while True:
                message = await receive()
                self.inbox.put_client(message)
                if message["type"] == "websocket.disconnect":
                    return
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("Reading from a notification socket failed.")
            self.inbox.put_client({"type": "websocket.disconnect", "code": 1006})

    async def dispatch(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == delivery.PUSH_EVENT:
            await self.forward_push(message)
        elif kind == delivery.BROADCAST_EVENT:
            await self.forward_broadcast(message)
        elif kind == delivery.PREFERENCES_EVENT:
            await self.preferences_changed(message)
        elif message is REPAIR:
            await self.fill_gap()
        elif message is BROKEN:
            await self.close_try_again_later()
        elif kind == WAKE_EVENT:
            await self.wake_snoozed()
        elif kind == TOKEN_EXPIRED_EVENT:
            if not self.closing:
                await self.close_with(CloseCode.AUTHENTICATION_FAILED)
        elif kind == DRAIN_EVENT:
            if not self.closing:
                await self.close_with(CloseCode.SERVER_RESTARTING)
        elif (handler := kind.replace(".", "_")) in OWN_HANDLERS:
            await getattr(self, handler)(message)
        elif hasattr(self, handler):
            # A host's own event handler on a subclass: Channels' usual way.
            await super().dispatch(message)
        else:
            # An event this version does not know (a newer publisher, a host's typo) must not
            # take the socket down.
            logger.warning("Ignoring unknown channel-layer event %r.", kind)

    async def without_database(self, item: dict[str, Any], exc: DatabaseUnavailable) -> None:
        """``item`` could not be handled for want of the database. A connect (its session, or
        the sync its ?since= asked for) is closed with 4013: the client comes back later with
        ?since= and misses nothing. An event is tried again later, so that a gap is still
        filled and a reload still sent once the database is back. (A client's request is
        answered ``unavailable`` where it is handled, in ``receive``.)"""
        kind = item.get("type")
        logger.warning("The database is unavailable for a socket's %s (%s).", kind, exc)
        if kind == "websocket.connect":
            await self.close_try_again_later()
        elif item is REPAIR or kind == delivery.PUSH_EVENT:
            self.timers.catch_up_soon()
        elif kind in (delivery.RELOAD_EVENT, WAKE_EVENT):
            self.timers.put_later(item)
        # A revalidation is skipped: the next one (REVALIDATE_INTERVAL) checks again.

    # --- the hub's side (hub.Member) -------------------------------------------------------

    def deliver(self, event: dict[str, Any]) -> None:
        self.inbox.put_event(event)

    def suspect_gap(self) -> None:
        self.timers.catch_up_soon()

    def layer_failed(self) -> None:
        # The client reconnects (4013) and recovers with ?since=.
        self.inbox.break_down()

    # --- the drain's side (drain.Drainable) -------------------------------------------------

    def drain(self) -> None:
        self.inbox.put_event({"type": DRAIN_EVENT})

    # --- lifecycle -------------------------------------------------------------------------

    async def connect(self) -> None:
        handshake = self.handshake
        # Accept before closing: a close before accept() reaches a browser as 1006, not 4001.
        # A client that authenticated with the bearer subprotocol must get it back, or the
        # browser fails the handshake.
        await self.accept(subprotocol=handshake.subprotocol if handshake else None)
        self.accepted = True
        if drain_for_loop().draining:
            # This process is stopping: send the client elsewhere before any database work.
            await self.close_with(CloseCode.SERVER_RESTARTING)
            return
        if not pending_connects.enter(app_settings.MAX_PENDING_CONNECTS):
            # A reconnect storm: turn this one away now rather than queue it behind hundreds
            # of others for the one database thread; its client backs off and comes back.
            await self.close_with(CloseCode.TRY_AGAIN_LATER)
            return
        try:
            await self.start_socket()
        finally:
            pending_connects.leave()

    async def start_socket(self) -> None:
        """Everything from accept to the first frame: the session, the groups, the snapshot."""
        handshake = self.handshake
        snapshot_began = asyncio.get_running_loop().time()
        # The one thread hop of a connect: token, user, vendor, counts, newest id, snapshot.
        started = await start_session(self.scope.get("user"))
        if isinstance(started, CloseCode):
            await self.close_with(started)
            return
        session = started.session
        if not open_sockets.acquire(session.user_id, app_settings.MAX_SOCKETS_PER_USER):
            await self.close_with(CloseCode.TOO_MANY_REQUESTS)
            return
        self.counted_user_id = session.user_id
        if started.preferences is not None:
            self.quiet = preferences.quiet(started.preferences)
        self.feed = Feed(session.last_id)
        self.feed.remember(row["id"] for row in started.unread_rows)
        # The hub hands over what its groups received since the snapshot began, or says it
        # cannot (a group it had to join: a round trip bare Channels pays on every connect),
        # and then the socket catches up from the database by id, after the first frame.
        complete = await self.subscribe(session, snapshot_began)
        if complete is None:
            await self.close_try_again_later()
            return
        self.session = session
        drain_for_loop().add(self)
        await self.send_frame(
            payloads.unread_notifications_frame(started.unread_rows, session.unread_counts)
        )
        self.timers.expire_token_at(handshake.expires_at if handshake else None)
        self.timers.revalidate_periodically()
        if started.woke is not None:
            # What this connect woke: the vendor's other sockets get it pushed; this one has
            # it in its snapshot.
            await self.publish_to_vendor(started.woke, exclude=self.socket_id)
        self.timers.wake_at(session.next_wake)
        if not complete:
            self.inbox.request_repair()
        await self.answer_since_parameter()

    async def subscribe(self, session: services.Session, since: float) -> bool | None:
        """Join the session's groups through the hub: whether the hub vouches for everything
        since ``since``, or None when the channel layer is unreachable."""
        if self.channel_layer is None:
            return True
        self.hub = hub_for(self.channel_layer)
        try:
            return await self.hub.subscribe(self, session.groups, since)
        except Exception as exc:
            if not is_layer_failure(exc):
                raise
            logger.warning("Could not join notification groups: %r", exc)
            self.hub = None
            return None

    async def disconnect(self, code: int) -> None:
        self.release()

    def release(self) -> None:
        """Leave the hub's groups, stop the timers and free the user's socket slot (once)."""
        self.timers.cancel_all()
        if self.counted_user_id is not None:
            open_sockets.release(self.counted_user_id)
            self.counted_user_id = None
        if self.session is not None:
            drain_for_loop().discard(self)
            if app_settings.DIGESTS:
                # When the user was last here: the digest's "away since".
                presence.left(self.session.user_id)
            groups, self.session = self.session.groups, None
            if self.hub is not None:
                self.hub.unsubscribe(self, groups)

    async def close_try_again_later(self) -> None:
        if self.closing:
            return
        with contextlib.suppress(Exception):
            if not self.accepted:
                await self.accept()
                self.accepted = True
            await self.close_with(CloseCode.TRY_AGAIN_LATER)

    async def close_with(self, code: CloseCode) -> None:
        self.closing = True
        # A plain int: daphne's WebSocket library (autobahn) refuses any close code whose type
        # is not exactly int, an IntEnum included, and then closes with 1011 instead.
        await self.close(code=int(code))

    async def answer_since_parameter(self) -> None:
        """``?since=N`` on the URL: a reconnecting client wants a sync right after the snapshot."""
        try:
            since_id = since_from_query_string(self.scope.get("query_string", b""))
        except ProtocolError as error:
            await self.send_frame(payloads.error_frame(error.code, error.message))
            return
        if since_id is not None:
            # For want of the database this raises, and without_database() closes with 4013:
            # the client must not go on believing it has caught up.
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
            reply = await self.perform(request)
        except ProtocolError as error:
            reply = payloads.error_frame(error.code, error.message)
            request_id = error.request_id
        except DatabaseUnavailable as exc:
            logger.warning("A notification request failed: the database is unavailable (%s).", exc)
            reply = payloads.error_frame(
                ErrorCode.UNAVAILABLE, "The database is unavailable; try again shortly."
            )
        except Exception:
            # Never a traceback to the client; the server log keeps it.
            logger.exception("Unexpected error while handling a notification socket message.")
            reply = payloads.error_frame(ErrorCode.INTERNAL_ERROR, "The server failed.")
        if not self.closing:
            await self.send_frame(payloads.with_request_id(reply, request_id))

    @property
    def action_names(self) -> frozenset[str]:
        """Every action a client may send."""
        return frozenset({*self.own_actions, *actions.enabled_actions()})

    async def perform(self, request: Request) -> payloads.Frame:
        """Run the request's action: the reply, after the vendor's other sockets heard of it."""
        assert self.session is not None
        if (own_action := self.own_actions.get(request.action)) is not None:
            return await own_action(request)
        action = actions.enabled_actions().get(request.action)
        if action is None:
            raise ProtocolError(
                ErrorCode.UNKNOWN_ACTION,
                f"Unknown action; expected one of {sorted(self.action_names)}.",
                request.request_id,
            )
        outcome = await action(self.session.vendor_id, request)
        if outcome.to_other_sockets is not None:
            # The vendor's other sockets (tabs, staff) update their badges; this socket gets
            # the reply to its own request instead.
            await self.publish_to_vendor(outcome.to_other_sockets, outcome.wake_at, self.socket_id)
        if outcome.to_all_sockets is not None:
            await self.publish_to_vendor(outcome.to_all_sockets)
        self.timers.wake_at(outcome.wake_at)
        return outcome.reply

    async def publish_to_vendor(
        self, frame: payloads.Frame, wake_at: Any = None, exclude: str | None = None
    ) -> None:
        assert self.session is not None
        event = actions.vendor_event(frame, wake_at, exclude)
        await delivery.asend_event(delivery.vendor_group(self.session.vendor_id), event)

    async def wake_snoozed(self) -> None:
        """The wake timer fired (SNOOZE): wake what is due and push it to every socket of the
        vendor, this one included. Every socket of the vendor may fire at once; the one whose
        UPDATE cleared a row publishes it, the others find nothing to publish."""
        if self.session is None or self.closing:
            return
        woken = await wake_due(self.session.vendor_id, publish=False)
        for frame in woken.frames.values():
            await self.publish_to_vendor(frame)
        self.timers.wake_at(woken.next_wake)

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
        self.timers.expire_token_at(result.expires_at)
        return {"action": "refresh_token", "status": "success", "expires_at": result.expires_at}

    async def action_get_preferences(self, request: Request) -> payloads.Frame:
        assert self.session is not None
        actions.require_preferences(request)
        choices = await actions.stored_preferences(self.session.user_id)
        self.quiet = preferences.quiet(choices)
        return actions.preferences_reply("get_preferences", choices)

    async def action_set_preferences(self, request: Request) -> payloads.Frame:
        """Store the user's choices; this socket and the user's other ones follow them."""
        assert self.session is not None
        changes = actions.preference_changes(request)
        choices = await actions.change_preferences(self.session.user_id, changes)
        self.quiet = preferences.quiet(choices)
        event = actions.preferences_event(choices, exclude=self.socket_id)
        await delivery.asend_event(delivery.user_group(self.session.user_id), event)
        return actions.preferences_reply("set_preferences", choices)

    async def action_sync(self, request: Request) -> payloads.Frame:
        return await self.sync_frame(request.bounded_int("since_id", minimum=0))

    async def sync_frame(self, since_id: int) -> payloads.Frame:
        assert self.session is not None
        rows, has_more = await rows_since(self.session.vendor_id, since_id)
        self.feed.remember(row["id"] for row in rows)
        return payloads.sync_frame(since_id, rows, has_more)

    # --- channel-layer events --------------------------------------------------------------

    async def forward_push(self, event: dict[str, Any]) -> None:
        if self.session is None or self.closing:
            return
        if "id" not in event:
            # A read-state change of another socket of the vendor: no id to account for.
            await self.send(text_data=event["text"])
            # A snooze: this socket wakes it when its time comes, as the snoozing one does.
            self.timers.wake_at(event.get("wake_at"))
            return
        verdict = self.feed.judge_push(event)
        if verdict is Verdict.SEND:
            # A muted category is accounted for (judged) but not sent.
            if event.get("category") not in self.quiet:
                await self.send(text_data=event["text"])
        elif verdict is Verdict.FILL_GAP:
            # A notification before this one never reached this socket: send what is missing,
            # this one included, from the database.
            await self.fill_gap()

    async def forward_broadcast(self, event: dict[str, Any]) -> None:
        if self.session is None or self.closing:
            return
        vendor_id = self.session.vendor_id
        text = self.feed.broadcast_text(event, payloads.encode(vendor_id), str(vendor_id))
        if text is not None and event.get("category") not in self.quiet:
            await self.send(text_data=text)

    async def fill_gap(self) -> None:
        """Send every notification after the feed's last id, as the pushes this socket missed."""
        while self.session is not None and not self.closing:
            rows, has_more = await rows_since_shared(self.session.vendor_id, self.feed.last_id)
            for row in self.feed.unsent(rows):
                if row["category"] not in self.quiet:
                    await self.send_frame(payloads.new_notification_frame(row))
            if not has_more:
                return

    async def preferences_changed(self, event: dict[str, Any]) -> None:
        """The user changed their preferences on another socket (or over HTTP)."""
        if self.session is None or self.closing:
            return
        self.quiet = frozenset(event.get("quiet") or ())
        await self.send(text_data=event["text"])

    async def session_revalidate(self, event: dict[str, Any]) -> None:
        """Close the socket (4001/4003) when its user has lost access since it connected; while
        it may stay, its user is still present (DIGESTS)."""
        if self.session is None or self.closing:
            return
        code = await recheck(self.session.user_id, self.session.vendor_id)
        if code is not None:
            await self.close_with(code)

    async def reload_unread_notifications(self, event: dict[str, Any]) -> None:
        if self.session is not None:
            state = await inbox_state_shared(self.session.vendor_id)
            await self.send_frame(
                payloads.unread_notifications_frame(state.unread_rows, state.unread_counts)
            )
            self.timers.wake_at(state.next_wake)

    async def send_frame(self, frame: payloads.Frame) -> None:
        await self.send(text_data=payloads.encode(frame))


class ClientGone(Exception):
    """The server refused a frame because the client has disconnected."""


def send_or_raise_client_gone(
    send: Callable[[dict[str, Any]], Awaitable[None]],
) -> Callable[[dict[str, Any]], Awaitable[None]]:
    """The server's ``send``, raising ClientGone where the server says the client has gone,
    which is no layer failure."""

    async def send_to_client(message: dict[str, Any]) -> None:
        try:
            await send(message)
        except Exception as exc:
            if not is_client_gone(exc):
                raise
            raise ClientGone() from exc

    return send_to_client


def is_client_gone(exc: BaseException) -> bool:
    """uvicorn raises ClientDisconnected (an OSError); daphne lets autobahn's Disconnected
    through for a frame sent after the client's close frame arrived but before daphne hears
    that the connection is closed (seen once in a 6-minute soak)."""
    if isinstance(exc, OSError):
        return True
    return any(
        cls.__name__ == "Disconnected" and cls.__module__.startswith("autobahn")
        for cls in type(exc).__mro__
    )


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
