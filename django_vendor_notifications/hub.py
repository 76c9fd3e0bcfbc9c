"""One channel-layer membership per group per server process, fanned out in memory.

Channels' own shape makes every socket a member of its groups in the channel layer: a message to
a vendor with 500 open sockets crosses Redis carrying 500 channel names, is received 500 times
and wakes 500 receive loops. The hub makes the *process* the member instead. The first local
socket that needs a group makes the hub join it, with a channel of the hub's own for that
group; a message to the group then crosses the layer once per process, and the hub hands the
same event to each local socket's bounded inbox (``inbox.Inbox``) without awaiting any of them.
The last socket to leave starts a short linger (GROUP_LINGER) after which the hub leaves the
group, so reconnect churn does not join and leave per socket.

The groups are the spec's, so host code that calls ``group_send("notifications_42", ...)``
still reaches every socket of user 42 on every process. Each group has a channel of its own
rather than one channel for all groups, because a channel-layer message does not say which
group it was sent to, and host events must reach exactly that group's sockets.

Connect reads the database *before* it subscribes (one thread hop, see ``services``), so a
notification committed in between must not be lost: each group keeps the events of the last
moments (``REPLAY_SIZE``), and a socket joining a group the hub already held replays those that
arrived after its snapshot began. A group joined after that has no such record: the socket is
told to catch up from the database instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from .conf import app_settings
from .layers import is_layer_failure, receives_through_one_read
from .watchdog import Watchdog

logger = logging.getLogger(__name__)

#: Events each group remembers for sockets that subscribe just after reading their snapshot.
REPLAY_SIZE = 64
#: Tries per group when joining (all within LAYER_TIMEOUT): right after Redis restarts, pooled
#: connections fail once each.
JOIN_ATTEMPTS = 3
#: What the hub sends a group's channel, once it has left the group, to end its receive loop.
STOP_EVENT = "vendor_notifications.hub.stop"
#: Seconds between a push being published and reaching the hub after which the layer may have
#: dropped newer ones (a full channel drops the newest); the group's sockets then catch up.
LATE_EVENT = 1.0


class Member(Protocol):
    """A local socket as the hub sees it."""

    socket_id: str

    def deliver(self, event: dict[str, Any]) -> None:
        """Take ``event`` for sending later; must not block or await."""

    def suspect_gap(self) -> None:
        """Pushes may have been lost: catch up from the database."""

    def layer_failed(self) -> None:
        """The channel layer stopped delivering this group: the socket cannot stay live."""


class Group:
    """A group the hub holds for its local members."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.channel: str | None = None
        #: socket_id → member, in subscription order.
        self.members: dict[str, Member] = {}
        #: Event-loop time at which the layer membership was last (re)established; None while
        #: joining.
        self.joined_at: float | None = None
        self.joining: asyncio.Future[None] | None = None
        self.receiver: asyncio.Task[None] | None = None
        self.leave_timer: asyncio.TimerHandle | None = None
        #: (loop time received, event) of the latest events, for sockets that subscribe late.
        self.recent: deque[tuple[float, dict[str, Any]]] = deque(maxlen=REPLAY_SIZE)

    def replayable_since(self, since: float) -> bool:
        """Whether every event this group received after ``since`` is still in ``recent``."""
        if self.joined_at is None or self.joined_at > since:
            return False
        return len(self.recent) < REPLAY_SIZE or self.recent[0][0] <= since


class Hub:
    """The groups one channel layer holds for the sockets of one event loop (one process)."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        self.groups: dict[str, Group] = {}
        self.loop = asyncio.get_running_loop()
        self.maintenance: asyncio.Task[None] | None = None
        #: The probe that notices when the layer forgot the hub's memberships.
        self.probe = Watchdog(layer)
        #: Messages received from the layer (for tests).
        self.received = 0

    # --- membership ----------------------------------------------------------------------

    async def subscribe(self, member: Member, names: Iterable[str], since: float) -> bool:
        """Add ``member`` to groups ``names``, joining in the layer those the hub lacks.

        ``since`` is the loop time at which the member read its snapshot. Events the hub
        received after it are handed to the member now. Returns False when some group cannot
        vouch for that (it was joined after ``since``): the member must catch up from the
        database. Raises the layer's error when a group cannot be joined within LAYER_TIMEOUT;
        the member is then in no group.
        """
        names = tuple(dict.fromkeys(names))
        groups = [self.group(name) for name in names]
        # Members first: a linger timer must not leave a group while this socket joins another.
        for group in groups:
            group.members[member.socket_id] = member
            if group.leave_timer is not None:
                group.leave_timer.cancel()
                group.leave_timer = None
        try:
            await asyncio.wait_for(
                asyncio.gather(*(self.join(group) for group in groups if group.joined_at is None)),
                app_settings.LAYER_TIMEOUT,
            )
        except BaseException:
            self.unsubscribe(member, names)
            raise
        complete = all(group.replayable_since(since) for group in groups)
        # In the order the events arrived, across groups, as live delivery would have had them.
        replay = sorted(
            (entry for group in groups for entry in group.recent if entry[0] >= since),
            key=lambda entry: entry[0],
        )
        for _, event in replay:
            if event.get("exclude") != member.socket_id:
                member.deliver(event)
        self.start_maintenance()
        return complete

    def unsubscribe(self, member: Member, names: Iterable[str]) -> None:
        """Take ``member`` out of ``names``; a group left empty is left after GROUP_LINGER."""
        for name in names:
            group = self.groups.get(name)
            if group is None or group.members.pop(member.socket_id, None) is None:
                continue
            if not group.members and group.leave_timer is None:
                group.leave_timer = self.loop.call_later(
                    app_settings.GROUP_LINGER, self.leave_if_unused, group
                )

    def group(self, name: str) -> Group:
        group = self.groups.get(name)
        if group is None:
            group = self.groups[name] = Group(name)
        return group

    async def join(self, group: Group) -> None:
        """Make the hub's channel for ``group`` a member of it in the layer (once at a time)."""
        if group.joining is None:
            group.joining = self.loop.create_task(self.join_now(group))
        joining = group.joining
        try:
            await asyncio.shield(joining)
        finally:
            if joining.done() and group.joining is joining:
                group.joining = None

    async def join_now(self, group: Group) -> None:
        await self.probe.ensure_joined()
        if group.channel is None:
            group.channel = await self.layer.new_channel()
        await self.group_add(group)
        group.joined_at = self.loop.time()
        if group.receiver is None or group.receiver.done():
            group.receiver = self.loop.create_task(self.receive(group))

    async def group_add(self, group: Group) -> None:
        for attempt in range(JOIN_ATTEMPTS):
            try:
                await self.layer.group_add(group.name, group.channel)
                return
            except Exception as exc:
                if attempt == JOIN_ATTEMPTS - 1 or not is_layer_failure(exc):
                    raise
                await asyncio.sleep(0.05 * (attempt + 1))

    def leave_if_unused(self, group: Group) -> None:
        group.leave_timer = None
        if group.members or self.groups.get(group.name) is not group:
            return
        del self.groups[group.name]
        self.loop.create_task(self.leave(group))

    async def leave(self, group: Group) -> None:
        if group.joining is not None:
            group.joining.cancel()
        if group.channel is not None and group.joined_at is not None:
            with contextlib.suppress(Exception):
                # Best effort: when Redis is away the membership expires with group_expiry.
                await asyncio.wait_for(
                    self.layer.group_discard(group.name, group.channel),
                    app_settings.LAYER_TIMEOUT,
                )
        await self.stop_receiving(group)

    async def stop_receiving(self, group: Group) -> None:
        """End ``group``'s receive loop. On channels-redis's core layer a cancelled receive
        can live on for ever (``receives_through_one_read``; 2 in 1,000 cancels under traffic
        here), so the loop is sent a stop event on its own channel and returns by itself. Other
        layers' receives are cancelled, which on RedisPubSubChannelLayer also unsubscribes."""
        receiver = group.receiver
        if receiver is None or receiver.done():
            return
        if group.channel is not None and receives_through_one_read(self.layer):
            try:
                await asyncio.wait_for(
                    self.layer.send(group.channel, {"type": STOP_EVENT, "channel": group.channel}),
                    app_settings.LAYER_TIMEOUT,
                )
                return
            except Exception as exc:
                if not is_layer_failure(exc):
                    logger.exception("Stopping the receive of group %s failed.", group.name)
                # Redis is away: the receive fails soon anyway; a cancel is all that is left.
        receiver.cancel()

    # --- delivery --------------------------------------------------------------------------

    async def receive(self, group: Group) -> None:
        assert group.channel is not None
        while True:
            try:
                event = await self.layer.receive(group.channel)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if is_layer_failure(exc):
                    logger.warning("Channel layer failed under group %s: %r", group.name, exc)
                else:
                    logger.exception("Receiving for group %s failed.", group.name)
                self.fail(group)
                return
            if event.get("type") == STOP_EVENT and event.get("channel") == group.channel:
                return
            self.fan_out(group, event)

    def fan_out(self, group: Group, event: dict[str, Any]) -> None:
        """Hand ``event`` to each local member of ``group`` without waiting for any."""
        self.received += 1
        group.recent.append((self.loop.time(), event))
        members = list(group.members.values())
        late = time.time() - event.get("sent_at", math.inf) > LATE_EVENT
        exclude = event.get("exclude")
        for member in members:
            if member.socket_id != exclude:
                if late:
                    member.suspect_gap()
                member.deliver(event)

    def fail(self, group: Group) -> None:
        """The layer stopped delivering ``group``: its members cannot stay live."""
        if self.groups.get(group.name) is group:
            del self.groups[group.name]
        if group.leave_timer is not None:
            group.leave_timer.cancel()
        if group.receiver is not None and group.receiver is not asyncio.current_task():
            # Ended as a left group's is: a cancel alone may never end it (stop_receiving).
            self.loop.create_task(self.stop_receiving(group))
        for member in list(group.members.values()):
            member.layer_failed()
        group.members.clear()

    # --- keeping memberships -----------------------------------------------------------------

    async def heal(self) -> None:
        """The layer may have forgotten the hub's memberships (Redis restarted empty): join
        every group again, one join per group, and have the members catch up."""
        await self.rejoin_all(catch_up=True)

    async def rejoin_all(self, *, catch_up: bool = False) -> None:
        """Join every held group again (one group_add each, whatever the number of sockets);
        a group that cannot be joined fails its members (4013)."""
        for group in list(self.groups.values()):
            if group.joined_at is None:
                continue
            try:
                await asyncio.wait_for(self.group_add(group), app_settings.LAYER_TIMEOUT)
            except Exception as exc:
                if not is_layer_failure(exc):
                    logger.exception("Re-joining group %s failed.", group.name)
                self.fail(group)
                continue
            if catch_up:
                group.joined_at = self.loop.time()
                for member in list(group.members.values()):
                    member.suspect_gap()

    def start_maintenance(self) -> None:
        if self.maintenance is None or self.maintenance.done():
            self.maintenance = self.loop.create_task(self.maintain())
            # A group joined while the task was ending must not go unwatched.
            self.maintenance.add_done_callback(self.restart_maintenance)

    def restart_maintenance(self, task: asyncio.Task[None]) -> None:
        if self.groups and not task.cancelled() and not self.loop.is_closed():
            self.start_maintenance()

    async def maintain(self) -> None:
        """Re-join before group_expiry drops the memberships, and run the watchdog's probe."""
        expiry = getattr(self.layer, "group_expiry", None)
        rejoin_every = expiry / 2 if expiry else math.inf
        next_rejoin = self.loop.time() + rejoin_every
        try:
            while self.groups:
                interval = app_settings.LAYER_CHECK_INTERVAL
                await asyncio.sleep(min(interval or 3600, max(next_rejoin - self.loop.time(), 0)))
                if not self.groups:
                    break
                if self.loop.time() >= next_rejoin:
                    next_rejoin = self.loop.time() + rejoin_every
                    await self.rejoin_all()
                elif interval and not await self.probe.round():
                    await self.heal()
        finally:
            await self.probe.close()


_hubs: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, weakref.WeakKeyDictionary[Any, Hub]] = (
    weakref.WeakKeyDictionary()
)


def hub_for(layer: Any) -> Hub:
    """The running event loop's hub for the channel layer instance ``layer``."""
    per_loop = _hubs.setdefault(asyncio.get_running_loop(), weakref.WeakKeyDictionary())
    hub = per_loop.get(layer)
    if hub is None:
        hub = per_loop[layer] = Hub(layer)
    return hub
