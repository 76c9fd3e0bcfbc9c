"""Database queries per connect, mark_read and load_more, through the real consumer in-process.

Counted with CaptureQueriesContext in the worker thread database_sync_to_async runs in. The
goal is about a warm connect, the common one: the process already holds the vendor's groups
because another socket of the vendor is open. A vendor's first connect is recorded beside it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.harness import IN_PROCESS, WEBSOCKET_PATH, Config, Run
from bench.report import Row, info_row

NAME = "queries"


@dataclass(frozen=True)
class Sizes:
    #: A 10-row, a big-history and a 200-row (100 unread) vendor: the count must not move.
    vendors: tuple[str, ...] = ("hist-10-1", "hist-big-20", "connect-100")


CONFIGS = {"quick": (IN_PROCESS,), "full": (IN_PROCESS,)}
SIZES = {"quick": Sizes(), "full": Sizes()}
CONNECT_LIMIT = 3


class WorkerQueries:
    """CaptureQueriesContext in the thread database_sync_to_async runs in."""

    count = 0

    async def __aenter__(self) -> WorkerQueries:
        from channels.db import database_sync_to_async
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.context = CaptureQueriesContext(connection)
        await database_sync_to_async(self.context.__enter__)()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        from channels.db import database_sync_to_async

        await database_sync_to_async(self.stop)()

    def stop(self) -> None:
        # The connection is per thread: read what it captured in the same thread.
        self.context.__exit__(None, None, None)
        self.count = len(self.context.captured_queries)


async def connected(token: str) -> Any:
    """A communicator that has connected and read its first frame."""
    from channels.testing import WebsocketCommunicator

    from bench.asgi import application

    communicator = WebsocketCommunicator(application, f"{WEBSOCKET_PATH}?token={token}")
    accepted, _ = await communicator.connect(timeout=10)
    assert accepted
    await communicator.receive_from(timeout=10)
    return communicator


async def count_vendor(run: Run, vendor: str) -> dict[str, int]:
    """Cold connect, warm connect (a second socket of the vendor), mark_read, load_more."""
    from channels.db import database_sync_to_async

    from django_vendor_notifications import services

    token = run.seed.tokens[vendor]
    result: dict[str, int] = {}
    async with WorkerQueries() as queries:
        first = await connected(token)
    result["cold_connect"] = queries.count
    async with WorkerQueries() as queries:
        second = await connected(token)
    result["connect"] = queries.count
    for action, message in (
        ("mark_read", {"action": "mark_read", "notification_id": run.seed.unread_id}),
        ("load_more", {"action": "load_more", "page": 2}),
    ):
        async with WorkerQueries() as queries:
            await second.send_json_to(message)
            await second.receive_from(timeout=10)
        result[action] = queries.count
    # mark_read's row belongs to connect-100 (the connect scenario's 100 unread): unread again.
    await database_sync_to_async(services.mark_unread)(
        run.seed.vendor_ids["connect-100"], run.seed.unread_id
    )
    for communicator in (second, first):
        await communicator.disconnect()
    return result


async def run(run: Run, config: Config) -> None:
    from channels.db import database_sync_to_async
    from channels.layers import InMemoryChannelLayer, channel_layers
    from django.db import connections

    channel_layers.set("default", InMemoryChannelLayer())
    vendors = SIZES[run.profile.name].vendors
    counts = {vendor: await count_vendor(run, vendor) for vendor in vendors}
    run.record(config, "queries", counts)
    rows = run.profile.history_rows
    baseline = f"10 rows / {rows:,} rows / 200 rows"
    for action in ("connect", "mark_read", "load_more"):
        values = {vendor: result[action] for vendor, result in counts.items()}
        run.add(
            queries_row(action, values, baseline, CONNECT_LIMIT if action == "connect" else None)
        )
    cold = {vendor: result["cold_connect"] for vendor, result in counts.items()}
    run.add(
        info_row(
            "DB queries per connect, the vendor's first (cold)",
            str(config),
            " / ".join(str(value) for value in cold.values()),
            baseline=baseline,
            values=cold,
        )
    )
    await database_sync_to_async(connections.close_all)()


def queries_row(action: str, values: dict[str, int], baseline: str, limit: int | None) -> Row:
    """The same count for every vendor (history size must not matter), at most ``limit``."""
    top = max(values.values())
    constant = len(set(values.values())) == 1
    scenario = (
        "DB queries per connect (warm)" if action == "connect" else f"DB queries per {action}"
    )
    return Row(
        scenario=scenario,
        config=str(IN_PROCESS),
        measured=" / ".join(str(value) for value in values.values()),
        baseline=baseline,
        ratio=top / limit if limit else None,
        goal="constant" + (f", ≤ {limit}" if limit else ""),
        passed=constant and (limit is None or top <= limit),
        values=values,
    )
