"""Connect time against history size and category count: it must follow the unread rows only.

Vendors with 10 and with ``history_rows`` notifications (10 unread each), in 1 and in 20
categories; connect p50 of each pair compared.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.harness import (
    ALL_CONFIGS,
    DAPHNE_REDIS,
    HISTORY_VENDORS,
    Config,
    Run,
    interleaved_connects,
    log,
)
from bench.report import ratio_row, summary_ms

NAME = "history"


@dataclass(frozen=True)
class Sizes:
    samples: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": ALL_CONFIGS}
SIZES = {"quick": Sizes(samples=10), "full": Sizes(samples=40)}
LIMIT = 1.2


async def run(run: Run, config: Config) -> None:
    server = await run.app_server(config)
    log(f"{config}: history and categories")
    timings = await interleaved_connects(
        {key: server.app_url(key) for key in HISTORY_VENDORS}, SIZES[run.profile.name].samples
    )
    history = {key: summary_ms(value) for key, value in timings.items()}
    run.record(config, "history", history)
    rows = f"{run.profile.history_rows:,}"
    for label, big, small in (
        (f"connect p50, {rows} vs 10 notifications, 1 category", "hist-big-1", "hist-10-1"),
        (f"connect p50, {rows} vs 10 notifications, 20 categories", "hist-big-20", "hist-10-20"),
        (f"connect p50, 20 vs 1 categories, {rows} notifications", "hist-big-20", "hist-big-1"),
    ):
        run.add(
            ratio_row(
                label,
                str(config),
                history[big]["p50_ms"],
                history[small]["p50_ms"],
                LIMIT,
                baseline_name=small.replace("big", rows),
                goal=f"≤ {LIMIT}",
                values={"big": history[big], "small": history[small]},
            )
        )
