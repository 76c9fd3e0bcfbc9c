"""The admin: changelist, search and the mark-as-read action."""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from django_vendor_notifications import presence
from django_vendor_notifications.models import Notification, UserPresence
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_vendor_notifications_notification_changelist"
FIRST_READ = datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)


@pytest.fixture
def admin_client_logged_in() -> Client:
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def rows(vendor: Vendor, make_notification: Callable[..., Notification]) -> dict[str, Any]:
    return {
        "order": make_notification(vendor, "Order #123 has been placed.", category="Orders"),
        "payout": make_notification(vendor, "Payout sent", category="Payouts"),
        "read": make_notification(
            vendor,
            "Old order note",
            is_read=True,
            is_recent_notification=False,
            readed_at=FIRST_READ,
        ),
    }


def test_changelist_loads(admin_client_logged_in: Client, rows: dict[str, Any]) -> None:
    response = admin_client_logged_in.get(reverse(CHANGELIST))
    assert response.status_code == 200
    content = response.content.decode()
    assert "Order #123 has been placed." in content
    assert "Payout sent" in content
    assert response.context["cl"].result_count == 3


def test_changelist_refuses_anonymous(rows: dict[str, Any]) -> None:
    response = Client().get(reverse(CHANGELIST))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_search(admin_client_logged_in: Client, rows: dict[str, Any]) -> None:
    response = admin_client_logged_in.get(reverse(CHANGELIST), {"q": "order"})
    assert response.status_code == 200
    found = {n.pk for n in response.context["cl"].result_list}
    assert found == {rows["order"].pk, rows["read"].pk}


def test_filters_and_date_hierarchy(admin_client_logged_in: Client, rows: dict[str, Any]) -> None:
    response = admin_client_logged_in.get(reverse(CHANGELIST), {"is_read__exact": "0"})
    assert {n.pk for n in response.context["cl"].result_list} == {
        rows["order"].pk,
        rows["payout"].pk,
    }
    year = rows["order"].created_at.year
    response = admin_client_logged_in.get(reverse(CHANGELIST), {"created_at__year": year})
    assert response.status_code == 200


def test_change_form_loads(admin_client_logged_in: Client, rows: dict[str, Any]) -> None:
    url = reverse("admin:django_vendor_notifications_notification_change", args=[rows["order"].pk])
    response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    assert "Order #123 has been placed." in response.content.decode()


def test_mark_as_read_action(admin_client_logged_in: Client, rows: dict[str, Any]) -> None:
    response = admin_client_logged_in.post(
        reverse(CHANGELIST),
        {
            "action": "mark_as_read",
            "_selected_action": [rows["order"].pk, rows["read"].pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    assert "1 notification(s) marked as read." in response.content.decode()
    order = Notification.objects.get(pk=rows["order"].pk)
    assert order.is_read is True
    assert order.is_recent_notification is False
    assert order.readed_at is not None
    # Already read: the first readed_at is kept.
    assert Notification.objects.get(pk=rows["read"].pk).readed_at == FIRST_READ
    # Not selected: untouched.
    assert Notification.objects.get(pk=rows["payout"].pk).is_read is False


def test_presence_changelist_and_opt_out(admin_client_logged_in: Client, owner: Any) -> None:
    presence.seen(owner.pk)
    row = UserPresence.objects.get(user=owner)
    changelist = reverse("admin:django_vendor_notifications_userpresence_changelist")
    assert admin_client_logged_in.get(changelist).status_code == 200
    assert (
        admin_client_logged_in.get(
            reverse("admin:django_vendor_notifications_userpresence_add")
        ).status_code
        == 403
    )
    change = reverse("admin:django_vendor_notifications_userpresence_change", args=[row.pk])
    response = admin_client_logged_in.post(change, {"user": owner.pk, "digest_opt_out": "on"})
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.digest_opt_out is True
