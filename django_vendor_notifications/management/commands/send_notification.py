"""``manage.py send_notification``: notify a vendor from the shell, a cron job or a script."""

from __future__ import annotations

import json
from typing import Any

from channels.layers import InMemoryChannelLayer
from django.core.exceptions import ObjectDoesNotExist
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from ...delivery import channel_layer
from ...permissions import get_vendor_model
from ...services import notify


class Command(BaseCommand):
    help = "Create a notification for a vendor and push it to the vendor's open sockets."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--vendor", required=True, help="Primary key of the vendor.")
        parser.add_argument("--message", required=True, help="Text of the notification.")
        parser.add_argument("--category", default=None, help="Category label.")
        parser.add_argument("--context", default=None, help="A JSON object for context_data.")
        parser.add_argument(
            "--collapse-key",
            default=None,
            help="Show the vendor's unread notifications with this key as one item.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        context = None
        if options["context"] is not None:
            try:
                context = json.loads(options["context"])
            except ValueError as exc:
                raise CommandError(f"--context is not valid JSON: {exc}") from exc
            if not isinstance(context, dict):
                raise CommandError("--context must be a JSON object.")
        vendor_model = get_vendor_model()
        try:
            vendor = vendor_model._default_manager.get(pk=options["vendor"])
        except (ObjectDoesNotExist, ValueError) as exc:
            raise CommandError(
                f"No {vendor_model._meta.label} with pk {options['vendor']!r}."
            ) from exc
        if isinstance(channel_layer(), InMemoryChannelLayer):
            self.stderr.write(
                "Warning: the in-memory channel layer does not reach server processes; the "
                "notification is saved and shown on the next connect."
            )
        try:
            with transaction.atomic():
                notification = notify(
                    vendor,
                    options["message"],
                    category=options["category"],
                    context=context,
                    collapse_key=options["collapse_key"],
                )
        except (ValueError, TypeError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(str(notification.pk))
