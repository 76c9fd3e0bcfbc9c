"""What the busy-inbox features cost a connect's inbox query, on the bench's PostgreSQL.

    python -m bench.inbox_features        # make bench-inbox-features

One inbox query (``services.inbox_state``: newest id, unread counts, unread snapshot) is the
whole database cost of a connect's snapshot. This times it, median of ROUNDS on a warm
connection, for vendors of 20,000 unread notifications (plus 20,000 read ones) shaped the ways
the features meet them, as a ratio to the baseline measured in the same run: the same vendor
with COLLAPSE, SEEN and SNOOZE off, which is the query every host ran before these
features existed. The vendors are the script's own (``inbox-…``), created once and reused.
"""

from __future__ import annotations

import datetime
import statistics
import time
from collections.abc import Callable
from typing import Any

from bench.harness.env import configure_django

ROUNDS = 200
UNREAD = 20_000
READ = 20_000


def median_ms(step: Callable[[], Any], rounds: int = ROUNDS) -> float:
    step()  # warm the plan and the connection
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        step()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def vendor(name: str, *, keys: int, snoozed: int = 0, seen: int = 0) -> Any:
    """A vendor with READ read and UNREAD unread notifications; the unread ones spread over
    ``keys`` collapse keys (0: none), the newest ``snoozed`` of them snoozed for a day and the
    oldest ``seen`` of them seen."""
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.utils import timezone

    from django_vendor_notifications.models import Notification
    from tests.testapp.models import Vendor

    user, _ = get_user_model().objects.get_or_create(username=f"bench-inbox-{name}")
    found, _ = Vendor.objects.get_or_create(user=user, defaults={"name": f"inbox-{name}"})
    if Notification.objects.filter(vendor=found).count() == READ + UNREAD:
        return found
    Notification.objects.filter(vendor=found).delete()
    base = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)
    now = timezone.now()
    total = READ + UNREAD

    def row(i: int) -> Notification:
        unread_index = i - READ
        unread = unread_index >= 0
        return Notification(
            vendor=found,
            category=f"Category {i % 5}",
            message=f"Notification {i}",
            is_read=not unread,
            is_recent_notification=unread,
            collapse_key=f"key-{unread_index % keys}" if unread and keys else "",
            snoozed_until=now + datetime.timedelta(days=1)
            if unread and unread_index >= UNREAD - snoozed
            else None,
            seen_at=now if unread and unread_index < seen else None,
            created_at=base + datetime.timedelta(seconds=i),
        )

    Notification.objects.bulk_create((row(i) for i in range(total)), batch_size=5000)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return found


def main() -> None:
    configure_django()
    from bench.harness.seeding import ensure_database

    ensure_database()
    from django.conf import settings
    from django.db import connection
    from django.test import override_settings

    from django_vendor_notifications import services

    def vendor_settings(**overrides: Any) -> override_settings:
        return override_settings(
            VENDOR_NOTIFICATIONS={**settings.VENDOR_NOTIFICATIONS, **overrides}
        )

    plain = vendor("plain", keys=0)
    shapes: list[tuple[str, Any, dict[str, Any]]] = [
        ("no key, features off (baseline)", plain, {}),
        ("no key, COLLAPSE on", plain, {"COLLAPSE": True}),
        ("no key, SEEN and SNOOZE on", plain, {"SEEN": True, "SNOOZE": True}),
        ("one key for all 20,000, COLLAPSE on", vendor("one-key", keys=1), {"COLLAPSE": True}),
        ("20 keys of 1,000, COLLAPSE on", vendor("twenty-keys", keys=20), {"COLLAPSE": True}),
        (
            "20 keys, 100 snoozed, half seen, all on",
            vendor("all", keys=20, snoozed=100, seen=UNREAD // 2),
            {"COLLAPSE": True, "SEEN": True, "SNOOZE": True},
        ),
    ]
    print(f"inbox query of a vendor with {UNREAD:,} unread + {READ:,} read, on {connection.vendor}")
    print(f"median of {ROUNDS} runs each\n")
    print(f"{'shape':<42} {'items':>6} {'ms':>8} {'× baseline':>11}")
    baseline = None
    for label, found, overrides in shapes:
        with vendor_settings(**overrides):
            state = services.inbox_state(found.pk)
            ms = median_ms(lambda found=found: services.inbox_state(found.pk))
        baseline = baseline or ms
        print(f"{label:<42} {len(state.unread_rows):>6} {ms:>8.2f} {ms / baseline:>10.2f}×")


if __name__ == "__main__":
    main()
