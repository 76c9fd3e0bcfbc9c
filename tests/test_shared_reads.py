"""SharedReads: identical reads in one loop turn share a call; later ones never reuse an
answer that was read before they asked."""

from __future__ import annotations

import asyncio

import pytest

from django_vendor_notifications.shared_reads import SharedReads


class Table:
    """A stand-in for the database: a read returns what was committed when it ran."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.reads = 0

    async def read(self, since: int) -> list[int]:
        self.reads += 1
        answer = [row for row in self.rows if row > since]
        await asyncio.sleep(0.01)  # the round trip
        return answer


async def test_callers_in_one_loop_turn_share_one_read() -> None:
    table = Table()
    table.rows = [1, 2, 3]
    shared = SharedReads(table.read)
    answers = await asyncio.gather(*(shared(0) for _ in range(50)), shared(2))
    assert answers == [[1, 2, 3]] * 50 + [[3]]
    # One read per distinct argument.
    assert (table.reads, shared.calls) == (2, 2)


async def test_a_caller_after_the_read_started_gets_a_read_of_its_own() -> None:
    table = Table()
    shared = SharedReads(table.read)
    first = asyncio.ensure_future(shared(0))
    await asyncio.sleep(0.001)  # the first read has started
    table.rows.append(7)  # committed after it started, before the second caller asks
    second = await shared(0)
    assert await first == []
    assert second == [7]
    assert table.reads == 2


async def test_one_caller_cancelled_does_not_cancel_the_others() -> None:
    table = Table()
    table.rows = [5]
    shared = SharedReads(table.read)
    leaving = asyncio.ensure_future(shared(0))
    staying = asyncio.ensure_future(shared(0))
    await asyncio.sleep(0)
    leaving.cancel()
    assert await staying == [5]
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_a_failed_read_fails_every_caller_of_it() -> None:
    async def broken(since: int) -> list[int]:
        raise ConnectionError("database away")

    shared = SharedReads(broken)
    results = await asyncio.gather(shared(0), shared(0), return_exceptions=True)
    assert [type(result) for result in results] == [ConnectionError, ConnectionError]
    assert shared.calls == 1
