"""The email digest for users who are away: who is due, what goes in, the templates, never
twice, and ``manage.py send_notification_digests`` on Django's locmem email backend."""

from __future__ import annotations

import datetime
import os
import smtplib
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core import mail
from django.core.mail.backends import locmem
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_vendor_notifications import preferences, presence, services
from django_vendor_notifications.models import Notification, UserPresence
from django_vendor_notifications.permissions import VendorAccessPolicy, get_access_policy
from tests.conftest import make_user, vendor_settings
from tests.test_prune import read_terminal
from tests.testapp.models import Role, Staff, Vendor

pytestmark = pytest.mark.django_db

ORDERS = "Order Notifications"
PAYOUTS = "Payout Notifications"
REVIEWS = "Review Notifications"
HOUR = datetime.timedelta(hours=1)


@pytest.fixture(autouse=True)
def digests_on() -> Iterator[None]:
    with vendor_settings(DIGESTS=True, PREFERENCES=True, DIGEST_AFTER=3600, DIGEST_MAX_ITEMS=2):
        yield


def ago(delta: datetime.timedelta) -> datetime.datetime:
    return timezone.now() - delta


def away(user: Any, since: datetime.timedelta = 3 * HOUR) -> None:
    """``user`` closed their last socket ``since`` ago."""
    presence.seen(user.pk, at=ago(since))


def notification(
    vendor: Any, message: str, category: str = ORDERS, age: datetime.timedelta = 2 * HOUR
) -> Notification:
    """A notification created ``age`` ago: by default while its users were away, and older
    than DIGEST_AFTER."""
    return Notification.objects.create(
        vendor=vendor, message=message, category=category, created_at=ago(age)
    )


def digests(*args: str) -> str:
    out = StringIO()
    call_command("send_notification_digests", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


@pytest.fixture
def mailed_owner(owner: Any) -> Any:
    owner.email = "owner@example.com"
    owner.save()
    return owner


def test_the_email_renders_counts_and_newest_items_in_text_and_html(
    mailed_owner: Any, vendor: Vendor
) -> None:
    away(mailed_owner)
    notification(vendor, "Order #1 placed", age=2.5 * HOUR)
    notification(vendor, "Order #2 <script>alert(1)</script>", age=2 * HOUR)
    notification(vendor, "Payout sent", PAYOUTS, age=1.5 * HOUR)

    out = digests()

    assert "Sent 1 digests, 0 failed; 1 users away, 0 with nothing to send." in out
    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    assert email.subject == "3 unread notifications for Vendor A"
    text = email.body
    assert f"{ORDERS}: 2" in text
    assert f"{PAYOUTS}: 1" in text
    # DIGEST_MAX_ITEMS = 2: the newest two, newest first, and how many more there are.
    assert text.index("Payout sent") < text.index("Order #2 <script>alert(1)</script>")
    assert "Order #1 placed" not in text
    assert "and 1 more" in text
    [(html, mimetype)] = email.alternatives
    assert mimetype == "text/html"
    assert "Order #2 &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<script>" not in html
    assert f"<td>{ORDERS}</td><td>2</td>" in html


def test_only_what_is_still_unread_and_from_the_time_away(
    mailed_owner: Any, vendor: Vendor
) -> None:
    away(mailed_owner, since=3 * HOUR)
    notification(vendor, "kept")
    read = notification(vendor, "read")
    services.mark_read(vendor.pk, read.pk)
    archived = notification(vendor, "archived")
    services.archive(vendor.pk, archived.pk)
    notification(vendor, "seen before leaving", age=4 * HOUR)
    notification(vendor, "too fresh", age=datetime.timedelta(minutes=10))

    digests()

    [email] = mail.outbox
    assert "kept" in email.body
    for left_out in ("read", "archived", "seen before leaving", "too fresh"):
        assert left_out not in email.body.replace("unread", "")


def test_a_snoozed_notification_is_not_emailed_while_it_sleeps(
    mailed_owner: Any, vendor: Vendor
) -> None:
    away(mailed_owner, since=3 * HOUR)
    notification(vendor, "kept")
    sleeping = notification(vendor, "sleeping")
    with vendor_settings(SNOOZE=True):
        until = services.snooze_until((timezone.now() + HOUR).isoformat())
        assert services.snooze(vendor.pk, sleeping.pk, until).found
        digests()

    [email] = mail.outbox
    assert "kept" in email.body
    assert "sleeping" not in email.body


def test_never_the_same_notification_twice(mailed_owner: Any, vendor: Vendor) -> None:
    away(mailed_owner)
    notification(vendor, "first")
    digests()
    assert "Sent 0 digests" in digests()
    assert len(mail.outbox) == 1
    # A notification read between two runs is not sent; a new one is, alone.
    read_later = notification(vendor, "read between runs", age=1.5 * HOUR)
    services.mark_read(vendor.pk, read_later.pk)
    notification(vendor, "second", age=1.2 * HOUR)
    out = digests()
    assert "Sent 1 digests" in out
    assert len(mail.outbox) == 2
    second = mail.outbox[1].body
    assert "second" in second and "first" not in second and "read between runs" not in second
    assert "1 unread notification for" in mail.outbox[1].subject
    assert "Sent 0 digests, 0 failed; 1 users away, 1 with nothing to send." in digests()
    assert len(mail.outbox) == 2


def test_muted_categories_and_opted_out_users_are_left_out(
    mailed_owner: Any, vendor: Vendor
) -> None:
    away(mailed_owner)
    notification(vendor, "an order")
    notification(vendor, "a review", REVIEWS)
    notification(vendor, "a payout", PAYOUTS)
    preferences.change(mailed_owner.pk, {ORDERS: "muted", PAYOUTS: "digest"})
    with vendor_settings(DIGESTS=True, DIGEST_MAX_ITEMS=10, PREFERENCE_DEFAULTS={REVIEWS: "muted"}):
        digests()
    [email] = mail.outbox
    assert "a payout" in email.body
    assert "an order" not in email.body and "a review" not in email.body

    notification(vendor, "another payout", PAYOUTS, age=1.5 * HOUR)
    presence.set_digest_opt_out(mailed_owner.pk)
    assert "0 users away" in digests()
    presence.set_digest_opt_out(mailed_owner.pk, False)
    digests()
    assert len(mail.outbox) == 2


def test_with_preferences_off_every_category_is_emailed(mailed_owner: Any, vendor: Vendor) -> None:
    away(mailed_owner)
    notification(vendor, "an order")
    preferences.change(mailed_owner.pk, {ORDERS: "muted"})
    with vendor_settings(DIGESTS=True, PREFERENCES=False):
        digests()
    [email] = mail.outbox
    assert "an order" in email.body


def test_users_present_or_without_email_or_access_are_skipped(
    mailed_owner: Any, vendor: Vendor, staff: Any
) -> None:
    notification(vendor, "hello")
    # A socket open (refreshed 5 minutes ago): present.
    away(mailed_owner, since=datetime.timedelta(minutes=5))
    # Away, but no email address.
    away(staff)
    # Away with an address, but no vendor to read.
    stranger = make_user("stranger", email="stranger@example.com")
    away(stranger)
    out = digests()
    assert mail.outbox == []
    assert "Sent 0 digests, 0 failed; 2 users away, 2 with nothing to send." in out


def test_staff_get_their_vendors_digest(vendor: Vendor, staff: Any) -> None:
    staff.email = "staff@example.com"
    staff.save()
    away(staff)
    notification(vendor, "for the staff too")
    digests()
    [email] = mail.outbox
    assert email.to == ["staff@example.com"]
    assert "for the staff too" in email.body


def test_dry_run_sends_nothing_and_changes_nothing(mailed_owner: Any, vendor: Vendor) -> None:
    away(mailed_owner)
    notification(vendor, "an order")
    before = list(UserPresence.objects.values())
    out = digests("--dry-run")
    assert (
        f"Would send owner@example.com (user {mailed_owner.pk}, Vendor A) 1 notifications "
        f"({ORDERS}: 1)." in out
    )
    assert "Would send 1 digests; 1 users away, 0 with nothing to send." in out
    assert mail.outbox == []
    assert list(UserPresence.objects.values()) == before
    digests()
    assert len(mail.outbox) == 1


def test_digests_off_refuses_to_run() -> None:
    with vendor_settings(DIGESTS=False), pytest.raises(CommandError, match="DIGESTS"):
        digests()


@pytest.mark.parametrize("args", [("--limit", "0"), ("--batch-size", "0"), ("--batch-size", "501")])
def test_bad_arguments(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        digests(*args)


def owners_away(count: int) -> list[Any]:
    owners = []
    for i in range(count):
        owner = make_user(email=f"owner{i}@example.com")
        vendor = Vendor.objects.create(user=owner, name=f"Vendor {i}")
        for j in range(3):
            notification(vendor, f"Notification {j}", (ORDERS, PAYOUTS)[j % 2])
        # A staff member of each vendor, role checked in the same query as the others.
        member = make_user(email=f"staff{i}@example.com")
        role = Role.objects.create(name=f"role {i}", can_view_notifications=True)
        Staff.objects.create(vendor=vendor, user=member, role=role)
        preferences.change(member.pk, {PAYOUTS: "muted"})
        away(owner)
        away(member)
        owners.append(owner)
    return owners


#: A run of one batch: how many users are away; then in the batch's transaction the rows
#: with their users, the vendors (owners, then staff with their role), the preferences, the
#: counts per category, the newest items and the marks; then the empty batch that ends it.
RUN_QUERIES = 9


@pytest.mark.parametrize("users", [3, 30])
def test_queries_per_batch_do_not_grow_with_its_users(
    users: int, django_assert_max_num_queries: Any
) -> None:
    owners_away(users)
    with CaptureQueriesContext(connection) as queries:
        digests("--batch-size", "100")
    assert len(mail.outbox) == 2 * users
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    assert len(statements) == RUN_QUERIES, "\n".join(statements)
    UserPresence.objects.update(digested_up_to=0)
    # Savepoints (the batch's transaction inside the test's) count on some databases.
    with django_assert_max_num_queries(RUN_QUERIES + 4):
        digests("--batch-size", "100")


def test_batches_and_limit(mailed_owner: Any, vendor: Vendor) -> None:
    owners_away(3)
    out = digests("--batch-size", "2", "--limit", "3", "-v", "2")
    assert "2/3 users" in out
    assert "Sent 3 digests, 0 failed; 3 users away" in out
    assert len(mail.outbox) == 3
    digests("--batch-size", "2")
    # Every user away once: the three first are not emailed again.
    assert len(mail.outbox) == 6
    assert len({email.to[0] for email in mail.outbox}) == 6


def use_email_backend(settings: Any, backend: str) -> None:
    """The default mailer's backend: MAILERS where it is set (Django 6.1 and later, which
    refuses EMAIL_BACKEND beside it), else EMAIL_BACKEND."""
    if hasattr(settings, "MAILERS"):
        settings.MAILERS = {"default": {"BACKEND": backend}}
    else:
        settings.EMAIL_BACKEND = backend


class RefusingBackend(locmem.EmailBackend):
    """Django's locmem backend, refusing one address as a mail server might."""

    def send_messages(self, messages: Any) -> int:
        if any("refused@example.com" in message.to for message in messages):
            raise smtplib.SMTPRecipientsRefused({"refused@example.com": (550, b"no")})
        return super().send_messages(messages)


def test_a_failing_email_is_counted_and_the_others_go_on(
    mailed_owner: Any, vendor: Vendor, settings: Any, caplog: Any
) -> None:
    refused = make_user("refused", email="refused@example.com")
    refused_vendor = Vendor.objects.create(user=refused, name="Refused")
    away(refused)
    away(mailed_owner)
    notification(refused_vendor, "for the refused one")
    notification(vendor, "for the owner")
    use_email_backend(settings, f"{__name__}.RefusingBackend")
    out, err = StringIO(), StringIO()
    call_command("send_notification_digests", stdout=out, stderr=err)
    assert "Sent 1 digests, 1 failed; 2 users away" in out.getvalue()
    assert f"user {refused.pk}" in err.getvalue()
    assert "could not be sent" in caplog.text
    [email] = mail.outbox
    assert email.to == ["owner@example.com"]
    # At most once: the refused digest is not tried again.
    use_email_backend(settings, "django.core.mail.backends.locmem.EmailBackend")
    assert "Sent 0 digests" in digests()


def test_progress_bar_on_a_terminal(mailed_owner: Any, vendor: Vendor) -> None:
    owners_away(2)
    assert "[" not in digests()
    UserPresence.objects.update(digested_up_to=0)
    controller, terminal = os.openpty()
    try:
        with open(terminal, "w", closefd=False) as stdout:
            call_command("send_notification_digests", "--batch-size", "2", stdout=stdout)
        shown = read_terminal(controller)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "] 2/4" in shown
    assert "[" + "#" * 30 + "] 4/4" in shown
    assert "Sent 4 digests" in shown


# --- the access policy, for many users at once ------------------------------------------------


def one_by_one(users: list[Any]) -> dict[Any, Any]:
    """What the per-user methods say, as a socket's connect asks them: {user pk: vendor pk}."""
    policy = get_access_policy()
    asked = [(user, policy.get_vendor(user)) for user in users]
    return {user.pk: v.pk for user, v in asked if v is not None and policy.can_access(user, v)}


class OwnersOnly(VendorAccessPolicy):
    def can_access(self, user: Any, vendor: Any) -> bool:
        return self.is_owner(user, vendor)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"STAFF_PERMISSION_LOOKUP": None},
        {"VENDOR_STAFF_LOOKUP": None, "STAFF_PERMISSION_LOOKUP": None},
        {"ACCESS_POLICY": f"{__name__}.OwnersOnly"},
    ],
    ids=repr,
)
def test_get_vendors_answers_as_get_vendor_and_can_access_do(
    overrides: dict[str, Any], vendor: Vendor, staff: Any, staff_without_permission: Any
) -> None:
    other = Vendor.objects.create(user=make_user(), name="Vendor B")
    # Staff of two vendors: the lower pk decides, and its role.
    both = make_user()
    Staff.objects.create(vendor=vendor, user=both, role=Role.objects.create(name="no"))
    allowed = Role.objects.create(name="yes", can_view_notifications=True)
    Staff.objects.create(vendor=other, user=both, role=allowed)
    # An owner who is also staff elsewhere acts for their own vendor.
    Staff.objects.create(vendor=vendor, user=other.user, role=allowed)
    users = [vendor.user, other.user, staff, staff_without_permission, both, make_user()]
    with vendor_settings(**overrides):
        expected = one_by_one(users)
        found = get_access_policy().get_vendors(users)
    assert {pk: v.pk for pk, v in found.items()} == expected
    assert vendor.user.pk in expected
