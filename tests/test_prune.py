"""``manage.py prune_notifications``: retention, in batches, with a dry run."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_vendor_notifications.models import Notification
from tests.conftest import vendor_settings
from tests.testapp.models import Vendor

pytestmark = pytest.mark.django_db

MakeNotification = Callable[..., Notification]


def prune(*args: str, stdout: Any = None) -> str:
    out = stdout if stdout is not None else StringIO()
    call_command("prune_notifications", *args, stdout=out)
    return out.getvalue() if isinstance(out, StringIO) else ""


@pytest.fixture
def aged(
    vendor: Vendor, other_vendor: Vendor, make_notification: MakeNotification
) -> dict[str, list[int]]:
    """Five notifications 100 days old (read, unread, archived, two vendors), two 10 days old."""
    now = timezone.now()

    def make(target: Vendor, days: int, **fields: Any) -> int:
        created_at = now - datetime.timedelta(days=days)
        return make_notification(target, f"{days} days", created_at=created_at, **fields).pk

    return {
        "old": [
            make(vendor, 100),
            make(vendor, 100, is_read=True),
            make(vendor, 100, archived_at=now),
            make(other_vendor, 100),
            make(other_vendor, 120),
        ],
        "recent": [make(vendor, 10), make(other_vendor, 10)],
    }


def remaining() -> list[int]:
    return sorted(Notification.objects.values_list("pk", flat=True))


def test_deletes_what_is_older_than_the_age(aged: dict[str, list[int]]) -> None:
    out = prune("--older-than", "90d")
    assert remaining() == sorted(aged["recent"])
    assert out.startswith("Deleted 5 notifications created before ")


@pytest.mark.parametrize(
    ("age", "left"), [("18w", 7), ("14w", 2), ("2500h", 6), ("2300h", 2), ("1d", 0)]
)
def test_units(aged: dict[str, list[int]], age: str, left: int) -> None:
    # Four are 100 days old (14.3 weeks, 2400 hours) and one 120 days (2880 hours).
    prune("--older-than", age)
    assert len(remaining()) == left


def test_dry_run_counts_and_deletes_nothing(aged: dict[str, list[int]]) -> None:
    out = prune("--older-than", "90d", "--dry-run")
    assert out.startswith("Would delete 5 notifications created before ")
    assert len(remaining()) == 7


def test_batches_are_id_ranges(aged: dict[str, list[int]]) -> None:
    with CaptureQueriesContext(connection) as queries:
        out = prune("--older-than", "90d", "--batch-size", "2")
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    # 5 rows, 2 a batch: three DELETE statements, each bounded by an id.
    assert len(deletes) == 3
    assert all("id" in sql and "<=" in sql for sql in deletes[:2])
    assert remaining() == sorted(aged["recent"])
    assert "Deleted 5 notifications" in out


def test_retention_days_is_the_default_age(aged: dict[str, list[int]]) -> None:
    with vendor_settings(RETENTION_DAYS=30):
        prune()
    assert remaining() == sorted(aged["recent"])


def test_older_than_wins_over_retention_days(aged: dict[str, list[int]]) -> None:
    with vendor_settings(RETENTION_DAYS=5):
        prune("--older-than", "110d")
    assert len(remaining()) == 6


def test_nothing_to_prune_by(aged: dict[str, list[int]]) -> None:
    with pytest.raises(CommandError, match=r"pass --older-than .* or set .*RETENTION_DAYS"):
        prune()
    assert len(remaining()) == 7


def test_bad_retention_days(aged: dict[str, list[int]]) -> None:
    with (
        vendor_settings(RETENTION_DAYS="90"),
        pytest.raises(CommandError, match=r'RETENTION_DAYS"\] must be a positive whole number'),
    ):
        prune()
    assert len(remaining()) == 7


@pytest.mark.parametrize("age", ["90", "90m", "-1d", "0d", "d", "1.5d", "90 days", "", "9e9d"])
def test_bad_older_than(aged: dict[str, list[int]], age: str) -> None:
    with pytest.raises(CommandError, match="--older-than|too large"):
        prune("--older-than", age)
    assert len(remaining()) == 7


def test_bad_older_than_message_says_what_is_accepted() -> None:
    with pytest.raises(CommandError) as error:
        prune("--older-than", "3mo")
    assert "'3mo' is not an age" in str(error.value)
    assert "h (hours), d (days) or w (weeks)" in str(error.value)


def test_age_beyond_the_calendar(aged: dict[str, list[int]]) -> None:
    with pytest.raises(CommandError, match="too large"):
        prune("--older-than", "999999999w")
    assert len(remaining()) == 7


@pytest.mark.parametrize("size", ["0", "-5"])
def test_bad_batch_size(aged: dict[str, list[int]], size: str) -> None:
    with pytest.raises(CommandError, match="--batch-size must be a positive integer"):
        prune("--older-than", "90d", "--batch-size", size)
    assert len(remaining()) == 7


def read_terminal(fd: int) -> str:
    chunks = []
    os.set_blocking(fd, False)
    while True:
        try:
            chunk = os.read(fd, 65536)
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


def test_progress_bar_only_on_a_terminal(aged: dict[str, list[int]]) -> None:
    # Not a terminal (a cron job's mail, a log): no bar.
    assert "[" not in prune("--older-than", "110d", "--batch-size", "1")
    # A real pseudo-terminal: the bar is drawn and redrawn per batch.
    controller, terminal = os.openpty()
    try:
        with open(terminal, "w", closefd=False) as stdout:
            prune("--older-than", "90d", "--batch-size", "2", stdout=stdout)
        shown = read_terminal(controller)
    finally:
        os.close(controller)
        os.close(terminal)
    assert "] 2/4" in shown
    assert "] 4/4" in shown
    assert "[" + "#" * 30 + "]" in shown
    assert "Deleted 4 notifications" in shown
    assert remaining() == sorted(aged["recent"])
