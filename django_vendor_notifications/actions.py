"""The client's actions that only read or change the vendor's notifications.

Each takes the vendor's id and the parsed request, validates its fields (a ``ProtocolError``
becomes an error frame), calls ``services`` in one thread hop and says what to answer and
what the vendor's other sockets should hear. No socket is needed to call them. The actions
that change the socket itself (``sync``, ``refresh_token``) stay on the consumer.
"""

from __future__ import annotations

import datetime
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from . import delivery, payloads, preferences, services
from .conf import app_settings
from .database import in_thread
from .protocol import ErrorCode, ProtocolError, Request

notifications_page = in_thread(services.notifications_page)
cursor_page = in_thread(services.cursor_page)
mark_read_now = in_thread(services.mark_read)
mark_all_read_now = in_thread(services.mark_all_read)
mark_unread_now = in_thread(services.mark_unread)
archive_now = in_thread(services.archive)
mark_seen_now = in_thread(services.mark_seen_counted)
snooze_now = in_thread(services.snooze)
unsnooze_now = in_thread(services.unsnooze)
unarchive_now = in_thread(services.unarchive)
unread_counts = in_thread(services.unread_counts)
stored_preferences = in_thread(preferences.stored)
change_preferences = in_thread(preferences.change)


@dataclass(frozen=True)
class Outcome:
    #: The reply to the socket that asked.
    reply: payloads.Frame
    #: A frame for the vendor's other sockets (tabs, staff), when their badges changed.
    to_other_sockets: payloads.Frame | None = None
    #: A frame for every socket of the vendor, this one included (a notification woken).
    to_all_sockets: payloads.Frame | None = None
    #: SNOOZE: a notification wakes then; the vendor's sockets make sure a timer is due by then.
    wake_at: datetime.datetime | None = None


Action = Callable[[Any, Request], Awaitable[Outcome]]


# What a change answers and tells the vendor's other sockets, whichever door it came in by:
# the socket's actions below and the HTTP API's views build their outcome with these.


def marked_read(notification_id: int, result: services.MarkReadResult) -> Outcome:
    # A collapsed item: the key and how many it read, so that clients fold their count.
    collapsed = payloads.collapse_fields(result.collapse_key, result.updated)
    others = None
    if result.newly_read:
        assert result.unread_total is not None
        others = payloads.notification_read_frame(
            notification_id, result.unread_total, result.unseen_count, collapsed
        )
    return Outcome(payloads.mark_read_frame(notification_id, result.found, collapsed), others)


def marked_all_read(category: str | None, result: services.MarkAllReadResult) -> Outcome:
    others = payloads.unread_count_changed_frame(result.unread_counts) if result.updated else None
    counts = result.unread_counts
    unseen = getattr(counts, "unseen", None)
    reply = payloads.mark_all_read_frame(category, result.updated, sum(counts.values()), unseen)
    return Outcome(reply, others)


def changed(action: str, notification_id: int, result: services.ChangeResult) -> Outcome:
    """The outcome of mark_unread, archive or unarchive."""
    others = None
    if result.unread_counts is not None:
        others = payloads.unread_count_changed_frame(result.unread_counts)
    collapsed = payloads.collapse_fields(result.collapse_key, result.updated)
    reply = payloads.notification_status_frame(action, notification_id, result.found, collapsed)
    return Outcome(reply, others)


def tell_vendor_sockets(
    vendor_id: Any, frame: payloads.Frame, wake_at: datetime.datetime | None = None
) -> None:
    """Push ``frame`` to every open socket of the vendor once the change commits (at once
    outside a transaction), from synchronous code such as an HTTP view."""
    event = vendor_event(frame, wake_at)
    delivery.after_commit(partial(delivery.send_event, delivery.vendor_group(vendor_id), event))


def vendor_event(
    frame: payloads.Frame, wake_at: datetime.datetime | None = None, exclude: str | None = None
) -> dict[str, Any]:
    """The push of ``frame`` to a vendor's sockets; with ``wake_at`` (SNOOZE), each socket
    also sets its wake timer for then, if it has none earlier."""
    event = delivery.push_event(payloads.encode(frame), exclude=exclude)
    if wake_at is not None:
        event["wake_at"] = wake_at.timestamp()
    return event


def tell_outcome(vendor_id: Any, outcome: Outcome) -> None:
    """Tell the vendor's sockets what ``outcome`` says they should hear, from synchronous
    code (an HTTP view): its asker has no socket, so every socket hears it."""
    for frame in (outcome.to_other_sockets, outcome.to_all_sockets):
        if frame is not None:
            tell_vendor_sockets(vendor_id, frame, outcome.wake_at)


# Preferences belong to a user, not a vendor: the consumer calls these with its user's id, and
# the HTTP API's views with the request's user.


def preferences_reply(action: str, choices: dict[str, str]) -> payloads.Frame:
    """The reply to get_preferences or set_preferences, for a user with these choices."""
    return payloads.preferences_frame(
        action, preferences.effective(choices), app_settings.UNMUTABLE_CATEGORIES
    )


def preferences_event(choices: dict[str, str], exclude: str | None = None) -> dict[str, Any]:
    """What the user's other sockets hear once they changed their preferences."""
    frame = payloads.preferences_changed_frame(preferences.effective(choices))
    return delivery.preferences_event(payloads.encode(frame), preferences.quiet(choices), exclude)


def tell_user_sockets(user_id: Any, choices: dict[str, str]) -> None:
    """Tell every open socket of the user their new preferences once the change commits,
    from synchronous code such as an HTTP view."""
    event = preferences_event(choices)
    delivery.after_commit(partial(delivery.send_event, delivery.user_group(user_id), event))


def preference_changes(request: Request) -> dict[str, str | None]:
    """The ``preferences`` of a set_preferences request, validated."""
    require_preferences(request)
    try:
        return preferences.validated(request.data.get("preferences"))
    except preferences.PreferenceError as error:
        raise ProtocolError(error.code, error.message, request.request_id) from None


def require_preferences(request: Request) -> None:
    if not app_settings.PREFERENCES:
        raise ProtocolError(
            ErrorCode.UNKNOWN_ACTION,
            "Preferences are not enabled on this server.",
            request.request_id,
        )


async def mark_read(vendor_id: Any, request: Request) -> Outcome:
    notification_id = request.positive_int("notification_id")
    return marked_read(notification_id, await mark_read_now(vendor_id, notification_id))


async def mark_all_read(vendor_id: Any, request: Request) -> Outcome:
    category = request.optional_label("category")
    return marked_all_read(category, await mark_all_read_now(vendor_id, category))


def change_one(
    change: Callable[[Any, int], Awaitable[services.ChangeResult]],
) -> Action:
    """An action on one notification whose reply is success or not_found."""

    async def action(vendor_id: Any, request: Request) -> Outcome:
        notification_id = request.positive_int("notification_id")
        return changed(request.action, notification_id, await change(vendor_id, notification_id))

    return action


async def get_unread_counts(vendor_id: Any, request: Request) -> Outcome:
    return Outcome(payloads.unread_counts_frame(await unread_counts(vendor_id)))


async def load_more(vendor_id: Any, request: Request) -> Outcome:
    if "before_id" not in request.data:
        # The spec's page numbers.
        return Outcome(await notifications_page(vendor_id, request.positive_int("page")))
    if "page" in request.data:
        raise ProtocolError(
            ErrorCode.INVALID_FIELD,
            "Send either 'page' or 'before_id', not both.",
            request.request_id,
        )
    page = await cursor_page(
        vendor_id,
        request.optional_positive_int("before_id"),
        request.optional_positive_int("limit"),
        category=request.optional_label("category"),
        is_read=request.optional_bool("is_read"),
        archived=request.optional_bool("archived"),
    )
    return Outcome(page)


# Seen and snoozed: registered only with SEEN / SNOOZE on (see ``enabled_actions``).


def marked_seen(up_to_id: int, result: services.MarkSeenResult) -> Outcome:
    counts = result.unread_counts
    others = payloads.unread_count_changed_frame(counts) if result.updated else None
    return Outcome(payloads.mark_seen_frame(up_to_id, result.updated, counts), others)


def snoozed(notification_id: int, result: services.SnoozeResult) -> Outcome:
    if not result.found:
        return Outcome(payloads.snooze_frame(notification_id, False))
    assert result.snoozed_until is not None and result.unread_counts is not None
    until, counts = result.snoozed_until, result.unread_counts
    reply = payloads.snooze_frame(notification_id, True, until, counts)
    others = payloads.notification_snoozed_frame(notification_id, until, counts)
    return Outcome(reply, others, wake_at=until)


def unsnoozed(notification_id: int, found: bool, woken: services.Woken) -> Outcome:
    """The reply to unsnooze; the woken notification goes to every socket of the vendor."""
    reply = payloads.notification_status_frame("unsnooze", notification_id, found)
    frame = next(iter(woken.frames.values()), None)
    return Outcome(reply, to_all_sockets=frame)


def snooze_request(request: Request) -> tuple[int, datetime.datetime]:
    """A snooze request's notification_id and ``until``, validated."""
    notification_id = request.positive_int("notification_id")
    try:
        return notification_id, services.snooze_until(request.data.get("until"))
    except services.SnoozeError as error:
        raise ProtocolError(ErrorCode.INVALID_FIELD, str(error), request.request_id) from None


async def mark_seen(vendor_id: Any, request: Request) -> Outcome:
    up_to_id = request.positive_int("up_to_id")
    return marked_seen(up_to_id, await mark_seen_now(vendor_id, up_to_id))


async def snooze(vendor_id: Any, request: Request) -> Outcome:
    notification_id, until = snooze_request(request)
    return snoozed(notification_id, await snooze_now(vendor_id, notification_id, until))


async def unsnooze(vendor_id: Any, request: Request) -> Outcome:
    notification_id = request.positive_int("notification_id")
    return unsnoozed(notification_id, *await unsnooze_now(vendor_id, notification_id))


SEEN_ACTIONS: dict[str, Action] = {"mark_seen": mark_seen}
SNOOZE_ACTIONS: dict[str, Action] = {"snooze": snooze, "unsnooze": unsnooze}


def enabled_actions() -> dict[str, Action]:
    """ACTIONS, and those of SEEN and SNOOZE when they are on: off, a client that sends one
    gets unknown_action, as from a server without them."""
    enabled = dict(ACTIONS)
    if app_settings.SEEN:
        enabled.update(SEEN_ACTIONS)
    if app_settings.SNOOZE:
        enabled.update(SNOOZE_ACTIONS)
    return enabled


#: Every action of this module, by the name a client sends.
ACTIONS: dict[str, Action] = {
    "mark_read": mark_read,
    "load_more": load_more,
    "get_unread_counts": get_unread_counts,
    "mark_all_read": mark_all_read,
    "mark_unread": change_one(mark_unread_now),
    "archive": change_one(archive_now),
    "unarchive": change_one(unarchive_now),
}
