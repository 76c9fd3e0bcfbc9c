"""The client's actions that only read or change the vendor's notifications.

Each takes the vendor's id and the parsed request, validates its fields (a ``ProtocolError``
becomes an error frame), calls ``services`` in one thread hop and says what to answer and
what the vendor's other sockets should hear. No socket is needed to call them. The actions
that change the socket itself (``sync``, ``refresh_token``) stay on the consumer.
"""

from __future__ import annotations

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


Action = Callable[[Any, Request], Awaitable[Outcome]]


# What a change answers and tells the vendor's other sockets, whichever door it came in by:
# the socket's actions below and the HTTP API's views build their outcome with these.


def marked_read(notification_id: int, result: services.MarkReadResult) -> Outcome:
    # A collapsed item: the key and how many it read, so that clients fold their count.
    collapsed = payloads.collapse_fields(result.collapse_key, result.updated)
    others = None
    if result.newly_read:
        assert result.unread_total is not None
        others = payloads.notification_read_frame(notification_id, result.unread_total, collapsed)
    return Outcome(payloads.mark_read_frame(notification_id, result.found, collapsed), others)


def marked_all_read(category: str | None, result: services.MarkAllReadResult) -> Outcome:
    others = payloads.unread_count_changed_frame(result.unread_counts) if result.updated else None
    unread_total = sum(result.unread_counts.values())
    return Outcome(payloads.mark_all_read_frame(category, result.updated, unread_total), others)


def changed(action: str, notification_id: int, result: services.ChangeResult) -> Outcome:
    """The outcome of mark_unread, archive or unarchive."""
    others = None
    if result.unread_counts is not None:
        others = payloads.unread_count_changed_frame(result.unread_counts)
    collapsed = payloads.collapse_fields(result.collapse_key, result.updated)
    reply = payloads.notification_status_frame(action, notification_id, result.found, collapsed)
    return Outcome(reply, others)


def tell_vendor_sockets(vendor_id: Any, frame: payloads.Frame) -> None:
    """Push ``frame`` to every open socket of the vendor once the change commits (at once
    outside a transaction), from synchronous code such as an HTTP view."""
    event = delivery.push_event(payloads.encode(frame))
    delivery.after_commit(partial(delivery.send_event, delivery.vendor_group(vendor_id), event))


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
