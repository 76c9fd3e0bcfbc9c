"""Connect → first frame for a vendor with 100 unread notifications, against bare Channels.

Sequential connects alternate app and bare one by one, so drift hits both; the bare consumer
sends the same bytes as its first frame.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.harness import ALL_CONFIGS, DAPHNE_REDIS, Config, Run, interleaved_connects, log
from bench.report import ratio_row, summary_ms

NAME = "connect"


@dataclass(frozen=True)
class Sizes:
    samples: int


CONFIGS = {"quick": (DAPHNE_REDIS,), "full": ALL_CONFIGS}
SIZES = {"quick": Sizes(samples=30), "full": Sizes(samples=150)}
#: Goal: app / bare at each percentile.
LIMITS = {"p50": 1.5, "p99": 2.0}


async def run(run: Run, config: Config) -> None:
    server = await run.app_server(config)
    log(f"{config}: connect → first frame")
    timings = await interleaved_connects(
        {"app": server.app_url("connect-100"), "bare": server.bare_url()},
        SIZES[run.profile.name].samples,
    )
    app, bare = summary_ms(timings["app"]), summary_ms(timings["bare"])
    run.record(config, "connect", {"app": app, "bare": bare})
    for q, limit in LIMITS.items():
        run.add(
            ratio_row(
                f"connect → first frame, 100 unread ({q})",
                str(config),
                app[f"{q}_ms"],
                bare[f"{q}_ms"],
                limit,
                baseline_name="bare",
                values={"app": app, "bare": bare},
            )
        )
