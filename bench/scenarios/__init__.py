"""One module per scenario; ``bench/run.py`` lists them in the order they run.

A scenario module has four names (``Scenario`` below):

- ``NAME``: what ``--only`` selects it by, and its key in the results' ``params.scenarios``.
- ``CONFIGS``: per profile ("quick", "full"), the servers and layers it runs on; a profile it
  does not name skips it. ``IN_PROCESS`` is the harness itself (no server).
- ``SIZES``: per profile, a frozen dataclass of its sizes (sockets, rounds, rates...), written
  into the results' ``params.scenarios[NAME]``.
- ``async def run(run: Run, config: Config) -> None``: measures on one config and adds its
  goal rows with ``run.add(...)`` (``bench.report.ratio_row`` / ``limit_row``), its raw figures
  with ``run.record(config, key, value)`` and chart points to ``run.series``.

It gets its server from the run: ``await run.app_server(config)`` (shared by the scenarios of
that config), ``run.own_app_server(config)`` (a fresh process) and ``await run.floor()``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bench.harness import Config, Run


class Scenario(Protocol):
    """A scenario module (read-only members, so each module may declare narrower types)."""

    @property
    def NAME(self) -> str: ...  # noqa: N802 - a module constant

    @property
    def CONFIGS(self) -> Mapping[str, Sequence[Config]]: ...  # noqa: N802

    @property
    def SIZES(self) -> Mapping[str, Any]: ...  # noqa: N802

    async def run(self, run: Run, config: Config) -> None: ...
