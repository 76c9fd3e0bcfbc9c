"""The plain actions, called without a socket: the reply and what the other sockets hear."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from asgiref.sync import sync_to_async

from django_vendor_notifications import actions
from django_vendor_notifications.models import Notification
from django_vendor_notifications.protocol import ErrorCode, ProtocolError, Request
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db(transaction=True)

MakeNotification = Callable[..., Notification]


async def test_mark_read_answers_the_asker_and_tells_the_other_sockets(
    vendor: Vendor, make_notification: MakeNotification
) -> None:
    first = await sync_to_async(make_notification)(vendor)
    await sync_to_async(make_notification)(vendor)
    request = Request("mark_read", {"notification_id": first.pk})
    outcome = await actions.mark_read(vendor.pk, request)
    assert outcome.reply == {
        "action": "mark_read",
        "status": "success",
        "notification_id": first.pk,
    }
    assert outcome.to_other_sockets == {
        "action": "notification_read",
        "notification_id": first.pk,
        "unread_total": 1,
    }
    # Read already: the same reply, nobody else needs to hear it again.
    again = await actions.mark_read(vendor.pk, request)
    assert (again.reply, again.to_other_sockets) == (outcome.reply, None)


async def test_another_vendors_notification_is_not_found_and_untouched(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> None:
    theirs = await sync_to_async(make_notification)(other_vendor)
    for name in ("mark_read", "archive", "mark_unread", "unarchive"):
        outcome = await actions.ACTIONS[name](
            vendor.pk, Request(name, {"notification_id": theirs.pk})
        )
        assert (outcome.reply["status"], outcome.reply["error"]) == ("error", "not_found")
        assert outcome.to_other_sockets is None
    await sync_to_async(theirs.refresh_from_db)()
    assert (theirs.is_read, theirs.archived_at) == (False, None)


async def test_load_more_refuses_page_and_before_id_together(vendor: Vendor) -> None:
    with pytest.raises(ProtocolError) as refused:
        await actions.load_more(vendor.pk, Request("load_more", {"page": 1, "before_id": 5}, 7))
    assert (refused.value.code, refused.value.request_id) == (ErrorCode.INVALID_FIELD, 7)


def test_every_action_name_maps_to_an_action() -> None:
    expected = {
        "mark_read",
        "load_more",
        "get_unread_counts",
        "mark_all_read",
        "mark_unread",
        "archive",
        "unarchive",
    }
    assert set(actions.ACTIONS) == expected
