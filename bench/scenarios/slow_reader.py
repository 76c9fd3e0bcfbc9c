"""One slow reader among N sockets of a vendor under sustained notification pushes.

One client stops reading (its TCP window closes: a small receive buffer, reading paused) while
the others keep reading; their p99 publish → receive latency must stay within 1.5× of the same
pushes with no slow reader, measured before and after it on the same sockets. Then the slow
reader reads again and must get every notification it missed (recorded, not a goal).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from bench.harness import (
    BOTH_SERVERS,
    DAPHNE_REDIS,
    Config,
    Run,
    WireSockets,
    clear_notifications,
    log,
    sent_at,
    stamp,
)
from bench.report import ratio_row, summary_ms

NAME = "slow-reader"


@dataclass(frozen=True)
class Sizes:
    sockets: int
    #: Notifications pushed per second; each reaches every socket of the vendor.
    pushes_per_s: float
    phase_s: float
    #: Extra characters in each message, so the stalled socket's backlog grows faster.
    padding: int = 1000
    #: SO_RCVBUF of the slow reader: the TCP window it can offer.
    receive_buffer: int = 4096


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": BOTH_SERVERS}
SIZES = {
    "quick": Sizes(sockets=200, pushes_per_s=20, phase_s=2),
    "full": Sizes(sockets=1000, pushes_per_s=5, phase_s=12),
}
LIMIT = 1.5
ID = re.compile(rb'"id":(\d+)')


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    vendor_id = run.seed.vendor_ids["slow-reader"]
    await sync_to_async(clear_notifications)(vendor_id)
    server = await run.app_server(config)
    url = server.app_url("slow-reader")
    log(f"{config}: one slow reader among {sizes.sockets} sockets")
    readers, slow = WireSockets(), WireSockets()
    await readers.open(url, sizes.sockets - 1)
    try:
        # Discarded: the first pushes pay for cold caches on both sides.
        await push_phase(readers, vendor_id, dataclasses.replace(sizes, phase_s=1))
        before, _ = await push_phase(readers, vendor_id, sizes)
        await slow.open(url, 1, receive_buffer=sizes.receive_buffer)
        slow.sockets[0].pause()
        with_slow, missed = await push_phase(readers, vendor_id, sizes)
        caught_up = await resume(slow, missed)
        await slow.close()
        after, _ = await push_phase(readers, vendor_id, sizes)
    finally:
        await slow.close()
        await readers.close()
    alone = summary_ms(before["latencies"] + after["latencies"])
    loaded = summary_ms(with_slow["latencies"])
    values: dict[str, Any] = {
        "without": alone,
        "with": loaded,
        "before": summary_ms(before["latencies"]),
        "after": summary_ms(after["latencies"]),
        "delivered": {
            phase: f"{result['delivered']}/{result['expected']}"
            for phase, result in (("before", before), ("with", with_slow), ("after", after))
        },
        "slow_reader": caught_up,
    }
    run.record(config, "slow_reader", values)
    run.add(
        ratio_row(
            f"one slow reader among {sizes.sockets:,} sockets: the others' p99",
            str(config),
            loaded["p99_ms"],
            alone["p99_ms"],
            LIMIT,
            baseline_name="no slow reader",
            values=values,
        )
    )


def create_rows(vendor_id: int, count: int, padding: int) -> tuple[int, list[dict[str, Any]]]:
    """``count`` committed notifications of the vendor, as rows, and the vendor's newest id
    before them (what their first push names as previous)."""
    from django.utils import timezone

    from django_vendor_notifications import services
    from django_vendor_notifications.models import Notification

    newest = Notification.objects.newest_ids(vendor_id).first() or 0
    now = timezone.now()
    created = Notification.objects.bulk_create(
        Notification(
            vendor_id=vendor_id,
            category="Order Notifications",
            message=f"Order {number} has been placed. {'x' * padding}",
            created_at=now,
        )
        for number in range(count)
    )
    return newest, [services._row(notification) for notification in created]


async def push_phase(
    readers: WireSockets, vendor_id: int, sizes: Sizes
) -> tuple[dict[str, Any], list[int]]:
    """Push notifications at the size's rate for phase_s; the readers' latencies and the ids.

    The rows are committed first and each push is the event notify() would publish (its id and
    the previous id, so sockets judge gaps and a stalled one repairs from the table), with the
    publish time in the frame: publisher-side INSERT and commit times stay out of the latency.
    """
    from django_vendor_notifications import delivery, payloads

    # Every row created is pushed: the next phase's first push names the newest as previous.
    count = max(1, round(sizes.pushes_per_s * sizes.phase_s))
    previous, rows = await sync_to_async(create_rows)(vendor_id, count, sizes.padding)
    group = delivery.vendor_group(vendor_id)
    latencies: list[float] = []

    def on_frame(payload: bytes, at: float) -> None:
        sent = sent_at(payload)
        if sent is not None:
            latencies.append(at - sent)

    readers.on_frame = on_frame
    ids: list[int] = []
    started = time.perf_counter()
    while rows:
        elapsed = time.perf_counter() - started
        for _ in range(min(int(elapsed * sizes.pushes_per_s) + 1 - len(ids), len(rows))):
            row = rows.pop(0)
            stamped = {**row, "message": f"{row['message']} {stamp(time.perf_counter())}"}
            text = payloads.encode(payloads.new_notification_frame(stamped))
            event = delivery.push_event(text, notification_id=row["id"], previous_id=previous)
            await delivery.asend_event(group, event)
            ids.append(row["id"])
            previous = row["id"]
        await asyncio.sleep(0.005)
    expected = len(ids) * len(readers)
    deadline = time.perf_counter() + 3
    while len(latencies) < expected and time.perf_counter() < deadline:
        await asyncio.sleep(0.02)
    readers.on_frame = lambda payload, at: None
    return {"latencies": latencies, "delivered": len(latencies), "expected": expected}, ids


async def resume(slow: WireSockets, missed: list[int]) -> dict[str, Any]:
    """Let the slow reader read again; which of the ids it missed reach it within 5 s."""
    stalled = slow.sockets[0]
    if stalled.closed.done():
        return {"closed_by_server": True, "missed": len(missed), "received": 0}
    wanted, seen = set(missed), set[int]()
    done = asyncio.Event()

    def on_frame(payload: bytes, at: float) -> None:
        seen.update(int(match) for match in ID.findall(payload) if int(match) in wanted)
        if seen >= wanted:
            done.set()

    slow.on_frame = on_frame
    started = time.perf_counter()
    stalled.resume()
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(done.wait(), 5)
    return {
        "closed_by_server": stalled.closed.done() and not done.is_set(),
        "missed": len(wanted),
        "received": len(seen),
        "caught_up_s": time.perf_counter() - started if done.is_set() else None,
    }
