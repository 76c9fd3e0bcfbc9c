"""``manage.py seed_demo``: (re)create the demo's users, vendors and notifications.

Idempotent: each run starts from the same data. The demo users, their vendors and the roles
keep their rows (so their ids, and the README's ``send_notification --vendor 1``, stay valid
from one run to the next); their staff rows and notifications are replaced, their passwords
reset and new tokens issued.
``--json`` prints one JSON object and nothing else, for scripts and tests.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.utils import timezone
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from django_vendor_notifications.models import Notification

from ...models import Vendor, VendorRole, VendorStaff

DEMO_PASSWORD = "demo-password"
# Role in the demo -> username.
USERNAMES = {
    "owner": "demo-owner",
    "staff": "demo-manager",
    "staff_no_permission": "demo-packer",
    "customer": "demo-customer",
    "other_owner": "demo-other-owner",
    "admin": "demo-admin",
}
ROLES = {"Manager": True, "Packer": False}
# More than two pages of PAGE_SIZE (20), so "load more" has something to page through.
OWNER_NOTIFICATIONS = 45
OWNER_UNREAD = 12
OTHER_NOTIFICATIONS = 5
OTHER_UNREAD = 3
# Three categories rotate, so every page and the unread snapshot hold more than one.
SAMPLES = [
    ("Order Notifications", "Order #{number} has been placed."),
    ("General Notifications", "Your shop report #{number} is ready."),
    ("Payment Notifications", "Payout #{number} has been sent to your bank."),
]


class Command(BaseCommand):
    help = "Reset the demo users, vendors and notifications (ids kept); print logins."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--json", action="store_true", help="Print one JSON object (ids and tokens) only."
        )
        parser.add_argument(
            "--url",
            default="http://127.0.0.1:8000/",
            help="Where the demo is served, for the ready link in the summary.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            users, vendors = self.recreate()
        notifications = {
            role: list(
                Notification.objects.filter(vendor=vendors[role])
                .order_by("id")
                .values_list("id", flat=True)
            )
            for role in ("owner", "other_owner")
        }
        tokens = {
            role: str(AccessToken.for_user(users[role]))
            for role in ("owner", "staff", "staff_no_permission", "customer", "other_owner")
        }
        tokens["owner_refresh"] = str(RefreshToken.for_user(users["owner"]))
        result = {
            "vendors": [
                {"id": vendor.pk, "name": vendor.name, "owner": vendor.user_id}
                for vendor in vendors.values()
            ],
            "users": {
                role: {"id": user.pk, "username": user.username} for role, user in users.items()
            },
            "password": DEMO_PASSWORD,
            "tokens": tokens,
            "notifications": notifications,
        }
        if options["json"]:
            self.stdout.write(json.dumps(result))
        else:
            self.print_summary(result, options["url"])

    def recreate(self) -> tuple[dict[str, Any], dict[str, Vendor]]:
        user_model = get_user_model()
        users = {}
        for role, username in USERNAMES.items():
            user, _ = user_model._default_manager.update_or_create(
                username=username,
                defaults={
                    "email": f"{username}@example.com",
                    "is_active": True,
                    "is_staff": role == "admin",
                    "is_superuser": role == "admin",
                },
            )
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
            users[role] = user
        vendors = {
            role: Vendor.objects.update_or_create(user=users[role], defaults={"name": name})[0]
            for role, name in (("owner", "Demo Bakery"), ("other_owner", "Other Shop"))
        }
        # The demo users' other rows go (a vendor created for a demo user by hand, a staff row),
        # then the demo vendors' staff and notifications are made again.
        Vendor.objects.filter(user__in=users.values()).exclude(
            pk__in=[vendor.pk for vendor in vendors.values()]
        ).delete()
        VendorStaff.objects.filter(vendor__in=vendors.values()).delete()
        VendorStaff.objects.filter(user__in=users.values()).delete()
        Notification.objects.filter(vendor__in=vendors.values()).delete()
        roles = {
            name: VendorRole.objects.update_or_create(
                name=name, defaults={"can_view_notifications": allowed}
            )[0]
            for name, allowed in ROLES.items()
        }
        VendorStaff.objects.create(
            vendor=vendors["owner"], user=users["staff"], role=roles["Manager"]
        )
        VendorStaff.objects.create(
            vendor=vendors["owner"], user=users["staff_no_permission"], role=roles["Packer"]
        )
        make_notifications(vendors["owner"], OWNER_NOTIFICATIONS, OWNER_UNREAD)
        make_notifications(vendors["other_owner"], OTHER_NOTIFICATIONS, OTHER_UNREAD)
        return users, vendors

    def print_summary(self, result: dict[str, Any], url: str) -> None:
        users = result["users"]
        write = self.stdout.write
        write(self.style.SUCCESS("Demo data created."))
        write(f"Password of every demo user: {DEMO_PASSWORD}")
        write(f"  {users['owner']['username']:<18} owns vendor {result['vendors'][0]['id']}")
        write(f"  {users['staff']['username']:<18} staff, role may view notifications")
        write(f"  {users['staff_no_permission']['username']:<18} staff, role may not (4003)")
        write(f"  {users['customer']['username']:<18} no vendor (4003)")
        write(f"  {users['other_owner']['username']:<18} owns vendor {result['vendors'][1]['id']}")
        write(f"  {users['admin']['username']:<18} superuser for /admin/")
        write("Send a notification to demo-owner's vendor from another shell:")
        write(
            f"  python example_project/manage.py send_notification "
            f'--vendor {result["vendors"][0]["id"]} --message "Hello"'
        )
        write(f"Open the demo as {users['owner']['username']}:")
        # In the fragment, which a browser never sends: no server or proxy logs it.
        write(f"  {url.rstrip('/')}/#token={result['tokens']['owner']}")


def make_notifications(vendor: Vendor, count: int, unread: int) -> None:
    """``count`` notifications an hour apart; the newest ``unread`` of them are unread."""
    now = timezone.now()
    rows = []
    for index in range(count):
        category, message = SAMPLES[index % len(SAMPLES)]
        number = 1000 + index
        age = timedelta(hours=count - index)
        is_read = index < count - unread
        rows.append(
            Notification(
                vendor=vendor,
                category=category,
                message=message.format(number=number),
                context_data={"reference": number},
                is_read=is_read,
                is_recent_notification=not is_read,
                readed_at=now - age + timedelta(minutes=30) if is_read else None,
                created_at=now - age,
            )
        )
    Notification.objects.bulk_create(rows)
