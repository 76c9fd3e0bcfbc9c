"""``manage.py send_notification_digests``: email users who are away their unread notifications,
from the host's scheduler (cron, Celery beat). See docs/preferences-and-digests.md."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ... import digests
from ...conf import app_settings
from ..progress import ProgressBar


class Command(BaseCommand):
    help = (
        "Email each user who has been away longer than DIGEST_AFTER a digest of their "
        "vendor's unread notifications (DIGESTS of VENDOR_NOTIFICATIONS must be on)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Print who would get a digest of what; send nothing and change nothing.",
        )
        parser.add_argument(
            "--limit",
            type=int,
            default=None,
            help="Handle at most this many users who are away (default: all of them).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=100,
            help=f"Users read per batch (default 100, at most {digests.MAX_BATCH_SIZE}).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not app_settings.DIGESTS:
            raise CommandError(
                f"Digests are off: set {app_settings.setting_name('DIGESTS')} to True."
            )
        limit, batch_size, dry_run = options["limit"], options["batch_size"], options["dry_run"]
        if limit is not None and limit < 1:
            raise CommandError(f"--limit must be a positive integer (got {limit}).")
        if not 1 <= batch_size <= digests.MAX_BATCH_SIZE:
            raise CommandError(
                f"--batch-size must be between 1 and {digests.MAX_BATCH_SIZE} (got {batch_size})."
            )
        away = digests.due(digests.cutoff()).count()
        total = away if limit is None else min(away, limit)
        progress = ProgressBar(self.stdout, total)
        # A dry run lists each user, so it has no bar to redraw over its lines.
        progress.shown = progress.shown and not dry_run
        tally: Counter[str] = Counter()
        for done, outcome in enumerate(
            digests.run(batch_size=batch_size, limit=limit, dry_run=dry_run), start=1
        ):
            tally[outcome.status] += 1
            if outcome.digest is not None and dry_run:
                self.stdout.write(self.describe(outcome.digest))
            elif outcome.status == "failed":
                self.stderr.write(f"Could not send the digest of user {outcome.user.pk}.")
            progress.update(done)
            if not progress.shown and options["verbosity"] >= 2 and done % batch_size == 0:
                self.stdout.write(f"{done}/{total} users")
        progress.finish()
        handled = sum(tally.values())
        if dry_run:
            self.stdout.write(
                f"Would send {tally['would_send']} digests; {handled} users away, "
                f"{tally['nothing']} with nothing to send. Nothing was sent or changed."
            )
        else:
            self.stdout.write(
                f"Sent {tally['sent']} digests, {tally['failed']} failed; {handled} users away, "
                f"{tally['nothing']} with nothing to send."
            )

    def describe(self, digest: digests.Digest) -> str:
        counts = ", ".join(f"{label}: {n}" for label, n in digest.counts.items())
        return (
            f"Would send {digest.email} (user {digest.user.pk}, {digest.vendor}) "
            f"{digest.total} notifications ({counts})."
        )
