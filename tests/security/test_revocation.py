"""Threat 3: access revoked while a socket is open, by another process.

Each case changes the database the way a host would (an admin action, a worker) in a separate
``manage.py shell`` process on the same database and Redis as the server, then notifies the
vendor. The revoked user's sockets must close with 4003 (4001 when the account is dead) within
5 seconds of that process finishing and receive nothing more; a socket of a user who keeps
access stays open and gets the notification.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission

from tests.conftest import access_token_for, make_user
from tests.testapp.models import Role, Staff, Vendor

from .conftest import WITHIN, SecurityServer, frames_until_close, receive_frame, still_serves

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

#: The bystander's own re-check runs first, in the server's one database thread, queued with
#: the victims'; the push waits behind it (a socket must not send before it knows it may). On a
#: loaded machine that queue sets the time, so the bystander gets longer than the victims' 5 s.
BYSTANDER_WITHIN = 3 * WITHIN

PREAMBLE = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django_vendor_notifications.services import notify
from tests.testapp.models import Role, Staff, Vendor
User = get_user_model()
"""


@dataclass
class Case:
    server: str
    #: Users whose sockets must close, with the code.
    victims: list[tuple[Any, int]]
    #: A user who keeps access, and whose socket must get the notification.
    bystander: Any
    #: What the other process runs; ends by notifying the bystander's vendor.
    code: str
    tokens: dict[int, str] = field(default_factory=dict)


def staff_of(vendor: Vendor, *, can_view: bool = True) -> Any:
    user = make_user()
    role = Role.objects.create(name="manager", can_view_notifications=can_view)
    Staff.objects.create(vendor=vendor, user=user, role=role)
    return user


def view_permission() -> Permission:
    return Permission.objects.get(
        codename="view_notification", content_type__app_label="django_vendor_notifications"
    )


def role_cases(vendor: Vendor, other_vendor: Vendor) -> dict[str, Callable[[], Case]]:
    owner = vendor.user

    def staff_case(victim_code: int, code: str) -> Case:
        staff = staff_of(vendor)
        return Case("daphne_server", [(staff, victim_code)], owner,
                    code.format(staff=staff.pk) + f"\nnotify({vendor.pk}, 'after')")  # fmt: skip

    return {
        "deactivate-user": lambda: Case(
            "daphne_server",
            [(owner, 4001)],
            staff_of(vendor),
            f"u = User.objects.get(pk={owner.pk}); u.is_active = False; u.save()\n"
            f"notify({vendor.pk}, 'after')",
        ),
        "delete-user": lambda: staff_case(4001, "User.objects.get(pk={staff}).delete()"),
        "delete-owner-and-with-it-the-vendor": lambda: Case(
            "daphne_server",
            [(owner, 4001)],
            other_vendor.user,
            f"User.objects.get(pk={owner.pk}).delete()\nnotify({other_vendor.pk}, 'after')",
        ),
        "remove-staff-membership": lambda: staff_case(
            4003, "Staff.objects.get(user_id={staff}).delete()"
        ),
        "move-staff-to-a-role-without-permission": lambda: staff_case(
            4003,
            "s = Staff.objects.get(user_id={staff}); "
            "s.role = Role.objects.create(name='packer'); s.save()",
        ),
        "revoke-the-roles-permission": lambda: staff_case(
            4003,
            "r = Role.objects.get(staff__user_id={staff}); "
            "r.can_view_notifications = False; r.save()",
        ),
        "delete-vendor": lambda: Case(
            "daphne_server",
            [(owner, 4003), (staff_of(vendor), 4003)],
            other_vendor.user,
            f"Vendor.objects.get(pk={vendor.pk}).delete()\nnotify({other_vendor.pk}, 'after')",
        ),
    }


def permission_cases(vendor: Vendor) -> dict[str, Callable[[], Case]]:
    """The strict server entitles staff by the Django permission view_notification."""

    def direct() -> Case:
        staff = staff_of(vendor, can_view=False)
        staff.user_permissions.add(view_permission())
        return Case(
            "strict_server",
            [(staff, 4003)],
            vendor.user,
            f"u = User.objects.get(pk={staff.pk})\n"
            "u.user_permissions.remove(Permission.objects.get(codename='view_notification'))\n"
            f"notify({vendor.pk}, 'after')",
        )

    def through_group(code: str) -> Callable[[], Case]:
        def make() -> Case:
            staff = staff_of(vendor, can_view=False)
            group = Group.objects.create(name=f"notified-{staff.pk}")
            group.permissions.add(view_permission())
            staff.groups.add(group)
            return Case(
                "strict_server",
                [(staff, 4003)],
                vendor.user,
                f"g = Group.objects.get(name='notified-{staff.pk}')\n"
                f"u = User.objects.get(pk={staff.pk})\n{code}\nnotify({vendor.pk}, 'after')",
            )

        return make

    return {
        "remove-user-permission": direct,
        "remove-user-from-group": through_group("u.groups.remove(g)"),
        "remove-group-from-user": through_group("g.user_set.remove(u)"),
        "remove-permission-from-group": through_group(
            "g.permissions.remove(Permission.objects.get(codename='view_notification'))"
        ),
    }


CASES = [
    "deactivate-user",
    "delete-user",
    "delete-owner-and-with-it-the-vendor",
    "remove-staff-membership",
    "move-staff-to-a-role-without-permission",
    "revoke-the-roles-permission",
    "delete-vendor",
    "remove-user-permission",
    "remove-user-from-group",
    "remove-group-from-user",
    "remove-permission-from-group",
]


@pytest.fixture(params=CASES)
def case(request: pytest.FixtureRequest, vendor: Vendor, other_vendor: Vendor) -> Case:
    """The users and the revoking code, set up outside the event loop."""
    makers = {**role_cases(vendor, other_vendor), **permission_cases(vendor)}
    made = makers[request.param]()
    for user in [user for user, _ in made.victims] + [made.bystander]:
        made.tokens[user.pk] = access_token_for(user)
    return made


async def test_revocation_from_another_process_closes_the_users_sockets(
    case: Case, request: pytest.FixtureRequest
) -> None:
    server: SecurityServer = request.getfixturevalue(case.server)
    connections = [server.connect(case.tokens[user.pk], bearer=True) for user, _ in case.victims]
    victims = [await connection.__aenter__() for connection in connections]
    try:
        async with server.connect(case.tokens[case.bystander.pk], bearer=True) as bystander:
            for ws in [*victims, bystander]:
                assert (await receive_frame(ws))["action"] == "unread_notifications"

            log_offset = server.log_offset()
            _, worker_log = await server.run_django_with_log("shell", "-c", PREAMBLE + case.code)
            # The push left the other process: what follows is the server's part.
            assert "Could not publish" not in worker_log, worker_log
            outcomes = await asyncio.gather(*(frames_until_close(ws, WITHIN) for ws in victims))

            for (frames, code), (_, expected) in zip(outcomes, case.victims, strict=True):
                assert code == expected
                # Nothing more was delivered: not the notification sent after the revocation.
                assert [frame["action"] for frame in frames] == []
            try:
                pushed = await receive_frame(bystander, BYSTANDER_WITHIN)
            except asyncio.TimeoutError:
                pytest.fail(
                    f"no push for the bystander within {BYSTANDER_WITHIN}s; the server logged:\n"
                    f"{server.log_since(log_offset)[-20000:]}"
                )
            assert pushed["action"] == "new_notification"
            assert pushed["notification"]["message"] == "after"
            await still_serves(bystander)
    finally:
        for connection in connections:
            await connection.__aexit__(None, None, None)
