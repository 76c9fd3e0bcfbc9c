"""``manage.py prune_notifications``: delete old notifications, in batches, from a cron job."""

from __future__ import annotations

import datetime
import re
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from ...conf import app_settings
from ...services import older_than, prune
from ..progress import ProgressBar

AGE = re.compile(r"^(\d+)([hdw])$")
UNITS = {"h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> datetime.timedelta:
    """``90d``, ``12w`` or ``36h`` as a timedelta; CommandError for anything else."""
    match = AGE.match(text.strip())
    if match is None or int(match[1]) == 0:
        raise CommandError(
            f"--older-than {text!r} is not an age: give a positive whole number followed by "
            "h (hours), d (days) or w (weeks), e.g. 90d."
        )
    return datetime.timedelta(**{UNITS[match[2]]: int(match[1])})


class Command(BaseCommand):
    help = (
        "Delete notifications created before a cut-off: --older-than, or RETENTION_DAYS of "
        "VENDOR_NOTIFICATIONS. Read or unread, archived or not, of every vendor."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=None,
            help="Age of the oldest notification kept: Nh, Nd or Nw (e.g. 90d). "
            "Default: RETENTION_DAYS.",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Notifications deleted per DELETE statement (default 1000).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print how many notifications would be deleted, and delete none.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        batch_size = options["batch_size"]
        if batch_size < 1:
            raise CommandError(f"--batch-size must be a positive integer (got {batch_size}).")
        try:
            cutoff = timezone.now() - self.age(options["older_than"])
        except OverflowError:
            raise CommandError("The age is too large: the cut-off is before year 1.") from None
        total = older_than(cutoff).count()
        when = cutoff.isoformat(timespec="seconds")
        if options["dry_run"]:
            self.stdout.write(f"Would delete {total} notifications created before {when}.")
            return
        progress = ProgressBar(self.stdout, total)
        deleted = 0
        for count in prune(cutoff, batch_size):
            deleted += count
            progress.update(deleted)
        progress.finish()
        self.stdout.write(f"Deleted {deleted} notifications created before {when}.")

    def age(self, older_than: str | None) -> datetime.timedelta:
        if older_than is not None:
            return parse_age(older_than)
        days = app_settings.get("RETENTION_DAYS")
        if days is None:
            raise CommandError(
                "Nothing to prune by: pass --older-than (e.g. 90d) or set "
                f"{app_settings.setting_name('RETENTION_DAYS')}."
            )
        if type(days) is not int or days < 1:
            raise CommandError(
                f"{app_settings.setting_name('RETENTION_DAYS')} must be a positive whole number "
                f"of days (got {days!r})."
            )
        return datetime.timedelta(days=days)
