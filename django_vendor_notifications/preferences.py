"""Preferences per user and category: which notifications reach a user's sockets live.

The rule, in one place: a user's preference for a category is their stored choice, or else the
category's default in PREFERENCE_DEFAULTS, or else ``live``. Only choices are stored (a sparse
table, as openwisp-notifications does), so changing a default changes it for everyone who did
not choose. A category in UNMUTABLE_CATEGORIES is always ``live``, whatever is stored.

Muted and digest categories are still stored, counted, in the snapshot, in ``sync`` and in
pages: only the live push to that user's sockets is left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction

from .conf import app_settings
from .models import DELIVERY_VALUES, NotificationPreference
from .protocol import is_label

LIVE = "live"
VALUES = DELIVERY_VALUES


class PreferenceError(ValueError):
    """A change that cannot be made: ``code`` is the protocol's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


#: What ``PreferenceError.code`` holds: an unknown label or value, or a category the host does
#: not let users mute.
INVALID = "invalid_field"
CANNOT_MUTE = "cannot_mute"


def stored(user_id: Any) -> dict[str, str]:
    """The user's own choices, {label: value}. One query on the (user, category) index."""
    rows = NotificationPreference.objects.filter(user_id=user_id).values_list(
        "category", "delivery"
    )
    return dict(rows)


def effective(choices: Mapping[str, str]) -> dict[str, str]:
    """Every category a user has a preference for, by name: the known categories
    (CATEGORIES), those with a default, and those the user chose; each one's value under the
    rule. A category not in the result is ``live``."""
    known = dict.fromkeys(app_settings.CATEGORIES or (), LIVE)
    result = {**known, **app_settings.PREFERENCE_DEFAULTS, **choices}
    for label in app_settings.UNMUTABLE_CATEGORIES:
        if label in result:
            result[label] = LIVE
    return dict(sorted(result.items()))


def quiet(choices: Mapping[str, str]) -> frozenset[str]:
    """The categories not pushed live to a user with these choices."""
    return frozenset(label for label, value in effective(choices).items() if value != LIVE)


def validated(changes: Any) -> dict[str, str | None]:
    """``changes`` ({label: value, or None to go back to the default}) checked, or a
    PreferenceError naming what is wrong."""
    if not isinstance(changes, dict) or not changes:
        raise PreferenceError(
            INVALID, "'preferences' must be an object of category labels to a value or null."
        )
    allowed = app_settings.CATEGORIES
    unmutable = app_settings.UNMUTABLE_CATEGORIES
    for label, value in changes.items():
        if not is_label(label) or (allowed is not None and label not in allowed):
            raise PreferenceError(INVALID, f"Unknown category {label!r}.")
        if value is not None and value not in VALUES:
            raise PreferenceError(
                INVALID, f"The preference of {label!r} must be one of {list(VALUES)} or null."
            )
        if label in unmutable and value not in (None, LIVE):
            raise PreferenceError(CANNOT_MUTE, f"{label!r} cannot be muted.")
    return changes


def change(user_id: Any, changes: Mapping[str, str | None]) -> dict[str, str]:
    """Store the (validated) changes: a value is the user's choice, None removes it (the
    default applies again). The user's choices afterwards. Three queries at most."""
    chosen = {label: value for label, value in changes.items() if value is not None}
    cleared = [label for label, value in changes.items() if value is None]
    mine = NotificationPreference.objects.filter(user_id=user_id)
    with transaction.atomic(using=mine.db):
        if cleared:
            mine.filter(category__in=cleared).delete()
        if chosen:
            NotificationPreference.objects.bulk_create(
                [
                    NotificationPreference(user_id=user_id, category=label, delivery=value)
                    for label, value in chosen.items()
                ],
                update_conflicts=True,
                unique_fields=["user", "category"],
                update_fields=["delivery"],
            )
    return stored(user_id)
