"""A socket's timers put their items into its inbox, in order with everything else."""

from __future__ import annotations

import asyncio
import time

import pytest

from django_vendor_notifications import delivery, timers
from django_vendor_notifications.inbox import REPAIR, Inbox
from django_vendor_notifications.timers import TOKEN_EXPIRED_EVENT, SocketTimers
from tests.conftest import vendor_settings


def socket_timers() -> tuple[SocketTimers, Inbox]:
    inbox = Inbox(max_frames=10, max_bytes=10_000)
    return SocketTimers(inbox), inbox


async def test_catch_up_waits_for_a_quiet_spell_then_asks_for_one_repair(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(timers, "CATCH_UP_AFTER", 0.1)
    clock, inbox = socket_timers()
    started = time.monotonic()
    for _ in range(3):  # a burst of late pushes
        clock.catch_up_soon()
        await asyncio.sleep(0.05)
    assert len(inbox) == 0
    assert await asyncio.wait_for(inbox.get(), 1) is REPAIR
    # 0.1 s after the last sign, not after the first.
    assert time.monotonic() - started >= 0.2
    assert len(inbox) == 0


async def test_sockets_that_suspect_together_catch_up_at_the_same_moment() -> None:
    first, _ = socket_timers()
    second, _ = socket_timers()
    first.catch_up_soon()
    second.catch_up_soon()
    assert first.catch_up_due == second.catch_up_due
    assert round(first.catch_up_due / timers.CATCH_UP_GRID, 6).is_integer()
    first.cancel_all()
    second.cancel_all()


async def test_the_token_timer_puts_the_expiry_event_and_can_be_replaced() -> None:
    clock, inbox = socket_timers()
    with vendor_settings(TOKEN_EXPIRY_GRACE=0):
        clock.expire_token_at(time.time() + 60)
        clock.expire_token_at(time.time() + 0.05)  # a refreshed token replaces the old expiry
        assert (await asyncio.wait_for(inbox.get(), 1))["type"] == TOKEN_EXPIRED_EVENT
        clock.expire_token_at(None)
        assert clock.handles == {}


async def test_revalidation_repeats_and_cancel_all_stops_everything() -> None:
    clock, inbox = socket_timers()
    with vendor_settings(REVALIDATE_INTERVAL=0.02):
        clock.revalidate_periodically()
        for _ in range(2):
            assert (await asyncio.wait_for(inbox.get(), 1))["type"] == delivery.REVALIDATE_EVENT
        clock.catch_up_soon()
        clock.cancel_all()
        await asyncio.sleep(0.1)
        assert len(inbox) == 0
        assert clock.handles == {}
