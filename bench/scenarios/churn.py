"""Churn: cycles of N connects then N disconnects on a fresh process; the RSS after the last
cycle against after the first must not grow by more than 10 % (nothing kept per socket)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from bench.harness import DAPHNE_REDIS, Config, Run, Sockets, log
from bench.report import limit_row

NAME = "churn"


@dataclass(frozen=True)
class Sizes:
    cycles: int
    sockets: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": (DAPHNE_REDIS,)}
SIZES = {"quick": Sizes(cycles=4, sockets=100), "full": Sizes(cycles=20, sockets=500)}
GROWTH_LIMIT_PCT = 10


async def run(run: Run, config: Config) -> None:
    sizes = SIZES[run.profile.name]
    sockets = Sockets()
    async with run.own_app_server(config) as server:
        url = server.app_url("fanout")
        await sockets.open(url, 10)
        await sockets.close()
        await asyncio.sleep(0.5)
        rss = [server.server.rss_mib()]
        for _ in range(sizes.cycles):
            await sockets.open(url, sizes.sockets)
            await sockets.close()
            await asyncio.sleep(0.3)
            rss.append(server.server.rss_mib())
    log(f"churn: RSS {rss[0]:.1f} → {rss[1]:.1f} (after cycle 1) → {rss[-1]:.1f} MiB")
    growth = (rss[-1] - rss[1]) / rss[1] * 100
    run.series["rss_churn"] = {"app": [[i, value] for i, value in enumerate(rss)]}
    run.add(
        limit_row(
            f"{sizes.cycles} cycles of {sizes.sockets} connects/disconnects: RSS growth after "
            "cycle 1",
            str(config),
            growth,
            GROWTH_LIMIT_PCT,
            unit="%",
            baseline=f"{rss[1]:.1f} → {rss[-1]:.1f} MiB (cold start {rss[0]:.1f})",
            values={"rss_mib": rss, "growth_from_cold_pct": (rss[-1] - rss[0]) / rss[0] * 100},
        )
    )
