"""``manage.py wake_snoozed_notifications``: wake every vendor's due snoozed notifications and
push them to the vendors' open sockets, from a cron job (every minute, say).

Open sockets wake their own vendor's notifications on a timer, and a connect wakes what is due
before its snapshot; this command is for hosts that want the push even when no socket of a
vendor holds a timer for it. Safe to run beside the sockets: each notification wakes once.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ...conf import app_settings
from ...services import wake_due


class Command(BaseCommand):
    help = "Wake the snoozed notifications whose time has come and push them live (SNOOZE)."

    def handle(self, *args: Any, **options: Any) -> None:
        if not app_settings.SNOOZE:
            raise CommandError(
                f"{app_settings.setting_name('SNOOZE')} is off: nothing is ever snoozed."
            )
        total = 0
        while True:
            # At most SYNC_LIMIT a call; go on while a call found that many.
            woken = wake_due()
            total += woken.count
            if woken.count < app_settings.SYNC_LIMIT:
                break
        self.stdout.write(f"Woke {total} snoozed notification{'s' if total != 1 else ''}.")
