"""The benchmark's database: created and migrated on first use, seeded once and then reused."""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Any

from bench.harness.env import DATABASE_URL, log

#: The vendors whose connect times are compared for history size and category count.
HISTORY_VENDORS = ("hist-10-1", "hist-10-20", "hist-big-1", "hist-big-20")


def ensure_database() -> None:
    """Create the bench database if it does not exist, then set Django up and migrate."""
    import dj_database_url
    import psycopg

    settings = dj_database_url.parse(DATABASE_URL)
    with psycopg.connect(
        host=settings["HOST"],
        port=settings["PORT"] or 5432,
        user=settings["USER"],
        password=settings["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as connection:
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings["NAME"],)
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{settings["NAME"]}"')

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


@dataclass
class Seed:
    tokens: dict[str, str]
    vendor_ids: dict[str, int]
    #: A row of the connect-100 vendor, to mark read.
    unread_id: int
    #: The connect-100 vendor's first frame, which the bare consumer sends byte for byte.
    bare_frame: str
    #: A new_notification frame with @@ROUND@@ where each round's marker goes.
    fanout_template: str


def seed(history_rows: int) -> Seed:
    """Vendors and notifications, created with bulk_create; kept between runs when present.

    A vendor seeded with 0 rows is one a scenario creates notifications for; seeding empties
    it again.
    """
    from django.contrib.auth import get_user_model
    from django.db import connection
    from rest_framework_simplejwt.tokens import AccessToken

    from django_vendor_notifications import payloads, services
    from django_vendor_notifications.models import Notification
    from tests.testapp.models import Vendor

    base = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    user_model = get_user_model()

    def vendor(name: str, rows: int, categories: int, unread: int) -> Vendor:
        user, _ = user_model.objects.get_or_create(username=f"bench-{name}")
        found, _ = Vendor.objects.get_or_create(user=user, defaults={"name": name})
        existing = Notification.objects.filter(vendor=found)
        if existing.count() == rows and existing.filter(is_read=False).count() == unread:
            return found
        Notification.objects.filter(vendor=found).delete()
        started = time.monotonic()
        Notification.objects.bulk_create(
            (
                Notification(
                    vendor=found,
                    category=f"Category {i % categories}",
                    message=f"Notification {i} of {name}",
                    context_data={"order_id": i},
                    is_read=i < rows - unread,
                    is_recent_notification=i >= rows - unread,
                    created_at=base + datetime.timedelta(seconds=i),
                )
                for i in range(rows)
            ),
            batch_size=5000,
        )
        if rows:
            log(f"seeded {rows:,} notifications for {name} in {time.monotonic() - started:.1f}s")
        return found

    big = history_rows
    vendors = {
        "connect-100": vendor("connect-100", 200, 5, 100),
        "hist-10-1": vendor("hist-10-1", 10, 1, 10),
        "hist-10-20": vendor("hist-10-20", 10, 20, 10),
        "hist-big-1": vendor(f"hist-{big}-1", big, 1, 10),
        "hist-big-20": vendor(f"hist-{big}-20", big, 20, 10),
        "fanout": vendor("fanout", 0, 1, 0),
        "push": vendor("push", 0, 1, 0),
        "throughput": vendor("throughput", 0, 1, 0),
        "storm": vendor("storm", 0, 1, 0),
        "slow-reader": vendor("slow-reader", 0, 1, 0),
    }
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    tokens = {name: str(AccessToken.for_user(v.user)) for name, v in vendors.items()}
    connect_vendor = vendors["connect-100"]
    bare_frame = payloads.encode(services.unread_notifications(connect_vendor.pk))
    unread_id = (
        Notification.objects.filter(vendor=connect_vendor, is_read=False)
        .order_by("id")
        .values_list("id", flat=True)
        .first()
    )
    assert unread_id is not None
    sample = Notification(
        id=123456,
        vendor_id=vendors["fanout"].pk,
        category="Order Notifications",
        message="Order @@ROUND@@ has been placed.",
        context_data={"order_id": 42},
        created_at=base,
    )
    template = payloads.encode(payloads.new_notification_frame(services._row(sample)))
    return Seed(
        tokens=tokens,
        vendor_ids={name: v.pk for name, v in vendors.items()},
        unread_id=unread_id,
        bare_frame=bare_frame,
        fanout_template=template,
    )


def clear_notifications(vendor_id: Any) -> None:
    """Delete a scenario vendor's notifications, so each run of the scenario starts empty."""
    from django_vendor_notifications.models import Notification

    Notification.objects.filter(vendor_id=vendor_id).delete()
