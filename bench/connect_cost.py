"""What a connect costs in the server's worker thread, step by step, without a socket.

    python -m bench.connect_cost          # make bench-connect-cost (after a bench run seeded)

The connect → first frame scenario compares the app with a bare Channels consumer that sends
the same bytes but reads no database. This splits the app's extra time into its parts, on the
database a bench run seeded and its connect-100 vendor (100 unread), pinned to core 0 as the
servers are: the token's user, the access policy's vendor query, the inbox query (built, compiled,
run) against the same SQL run raw, the health check Django adds to each hop on a persistent
connection, and the frame's formatting and encoding. Each step is timed 300 times on a warm
connection; the table shows medians.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

from bench import harness
from bench.harness.env import SERVER_CORE

ROUNDS = 300


def median_ms(step: Callable[[], Any], rounds: int = ROUNDS) -> float:
    from django.db import close_old_connections

    timings = []
    for _ in range(rounds):
        # As Channels does before each hop: the next query pays the health check.
        close_old_connections()
        started = time.perf_counter()
        step()
        timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def steps() -> list[tuple[str, Callable[[], Any]]]:
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.db.models.query import QuerySet
    from django.test.utils import CaptureQueriesContext
    from rest_framework_simplejwt.tokens import AccessToken

    from django_vendor_notifications import payloads, services

    owner = get_user_model()._default_manager.get(username="bench-connect-100")
    token = str(AccessToken.for_user(owner))
    vendor_id = services.entitled_vendor_id(owner)
    state = services.inbox_state(vendor_id)
    with CaptureQueriesContext(connection) as captured:
        services.inbox_state(vendor_id)
    inbox_sql = captured.captured_queries[0]["sql"]

    def inbox_querysets_only() -> None:
        # inbox_state() up to the point where it would iterate (build, no SQL).
        iterate = QuerySet.__iter__
        QuerySet.__iter__ = lambda self: iter(())  # type: ignore[method-assign]
        try:
            services.inbox_state(vendor_id)
        finally:
            QuerySet.__iter__ = iterate  # type: ignore[method-assign]

    def inbox_raw() -> None:
        with connection.cursor() as cursor:
            cursor.execute(inbox_sql)
            cursor.fetchall()

    def health_check() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    def whole_connect() -> None:
        started = services.start_session(owner_by_token())
        payloads.encode(payloads.unread_notifications_frame(started.unread_rows))

    def owner_by_token() -> Any:
        from rest_framework_simplejwt.authentication import JWTAuthentication

        authentication = JWTAuthentication()
        return authentication.get_user(authentication.get_validated_token(token.encode()))

    return [
        ("whole connect: start_session() + first frame", whole_connect),
        ("token checked, user read (1 query)", owner_by_token),
        ("access policy: entitled vendor (1 query)", lambda: services.entitled_vendor_id(owner)),
        ("inbox_state() (1 query)", lambda: services.inbox_state(vendor_id)),
        ("inbox_state(), building its querysets only", inbox_querysets_only),
        ("inbox_state()'s SQL run raw (round trip + fetch)", inbox_raw),
        (
            "first frame: format 100 items + encode",
            lambda: payloads.encode(payloads.unread_notifications_frame(state.unread_rows)),
        ),
        ("health check (SELECT 1, once per hop)", health_check),
    ]


def main() -> int:
    harness.configure_django()
    os.sched_setaffinity(0, {int(SERVER_CORE)})
    # The database a bench run seeded (make bench-quick is enough); not re-seeded here.
    import django

    django.setup()
    print("| step | median |\n|---|---|")
    for name, step in steps():
        print(f"| {name} | {median_ms(step):.2f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
