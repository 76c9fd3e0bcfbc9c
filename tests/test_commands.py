"""``manage.py send_notification``."""

from __future__ import annotations

import json
from io import StringIO
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.management import CommandError, call_command

from django_vendor_notifications import delivery
from django_vendor_notifications.models import Notification
from tests.conftest import vendor_settings
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db


def send(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("send_notification", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_creates_notification_and_prints_id(
    vendor: Vendor, channel_layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks() as callbacks:
        out, err = send(
            "--vendor",
            str(vendor.pk),
            "--message",
            "Order #5 placed — für Sie",
            "--category",
            "Order Notifications",
            "--context",
            '{"order_id": 5, "items": [1, 2]}',
        )
    notification = Notification.objects.get()
    assert out.strip() == str(notification.pk)
    assert notification.vendor_id == vendor.pk
    assert notification.category == "Order Notifications"
    assert notification.message == "Order #5 placed — für Sie"
    assert notification.context_data == {"order_id": 5, "items": [1, 2]}
    # The push is scheduled for after the command's transaction commits.
    assert len(callbacks) == 1
    # The test settings use the in-memory layer, which cannot reach a server process.
    assert "in-memory channel layer" in err


def test_defaults(vendor: Vendor) -> None:
    out, _ = send("--vendor", str(vendor.pk), "--message", "hi")
    notification = Notification.objects.get(pk=int(out))
    assert notification.category == "General Notifications"
    assert notification.context_data == {}


def test_push_reaches_vendor_group(
    vendor: Vendor, channel_layer: Any, django_capture_on_commit_callbacks: Any
) -> None:
    channel = async_to_sync(channel_layer.new_channel)()
    async_to_sync(channel_layer.group_add)(delivery.vendor_group(vendor.pk), channel)
    with django_capture_on_commit_callbacks(execute=True):
        out, _ = send("--vendor", str(vendor.pk), "--message", "pushed")
    message = async_to_sync(channel_layer.receive)(channel)
    frame = json.loads(message["text"])
    assert frame["action"] == "new_notification"
    assert frame["notification"]["id"] == int(out)


@pytest.mark.parametrize("pk", ["999999", "abc", ""])
def test_unknown_vendor(vendor: Vendor, pk: str) -> None:
    with pytest.raises(CommandError, match="No testapp.Vendor"):
        send("--vendor", pk, "--message", "x")
    assert not Notification.objects.exists()


@pytest.mark.parametrize("context", ["{not json", "", "{'a': 1}"])
def test_bad_json(vendor: Vendor, context: str) -> None:
    with pytest.raises(CommandError, match="not valid JSON"):
        send("--vendor", str(vendor.pk), "--message", "x", "--context", context)
    assert not Notification.objects.exists()


@pytest.mark.parametrize("context", ["[1, 2]", '"text"', "1", "null"])
def test_context_must_be_object(vendor: Vendor, context: str) -> None:
    with pytest.raises(CommandError, match="JSON object"):
        send("--vendor", str(vendor.pk), "--message", "x", "--context", context)
    assert not Notification.objects.exists()


def test_disallowed_category(vendor: Vendor) -> None:
    with (
        vendor_settings(CATEGORIES=["General Notifications"]),
        pytest.raises(CommandError, match="Unknown category 'Payouts'"),
    ):
        send("--vendor", str(vendor.pk), "--message", "x", "--category", "Payouts")
    assert not Notification.objects.exists()


def test_missing_required_arguments(vendor: Vendor) -> None:
    with pytest.raises(CommandError, match="--message"):
        send("--vendor", str(vendor.pk))


def test_collapse_key(vendor: Vendor) -> None:
    for _ in range(2):
        send("--vendor", str(vendor.pk), "--message", "Order", "--collapse-key", "new-order")
    assert list(Notification.objects.values_list("collapse_key", flat=True)) == ["new-order"] * 2
    with pytest.raises(CommandError, match="collapse_key"):
        send("--vendor", str(vendor.pk), "--message", "x", "--collapse-key", "k" * 101)
    assert Notification.objects.count() == 2
