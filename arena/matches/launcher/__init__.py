"""Launch strategies: how a match gets its game-server process.

The view never knows which strategy runs; it calls `get_launcher().launch(match)`
with the `MatchInfo` of the match it just created.
`GAME_SERVER_LAUNCHER` picks one by name:

* ``subprocess`` — a fresh `python -m arena.gameserver <id>` per match (simple,
  ~0.3 s of CPU per launch).
* ``warm`` — a pre-imported zygote forks one child per match (milliseconds).
* ``fleet`` — the launch is sent through Celery to a game host chosen by free
  capacity (`arena.fleet`), which launches it with its own warm launcher.

Both read the child's stdout for the `Port: N` line and then stop listening.

`launch_many()` starts several matches at once (a batch, `PUT /api/matches`): by
default up to GAME_LAUNCH_CONCURRENCY `launch()` calls in threads, so their waits
(the child reaching its port) overlap; the fleet sends every launch first and
then collects the answers.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from arena.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo


@dataclass(frozen=True)
class LaunchResult:
    """Where the game server listens: `host` is the address players are told."""

    port: int
    pid: int
    host: str = ""  # empty: this machine's GAME_SERVER_HOST


class LaunchError(Exception):
    """A launch that did not produce a listening game server.

    `code` is one of ``no_free_port``, ``launch_failed``, ``launch_timeout``,
    and for the fleet ``no_capacity`` (no live host has room) and
    ``broker_unavailable`` (the launch could not be sent or answered).
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


logger = logging.getLogger("arena.launcher")

LaunchOutcome = LaunchResult | LaunchError


class Launcher(Protocol):
    def launch(self, match: MatchInfo) -> LaunchResult:
        """Start a game server for the match and return once it listens."""

    def prepare(self) -> None:
        """Get ready now for fast launches later (a server process calls it at start).

        Raises LaunchError if it cannot; a later `launch()` tries again.
        """

    def launch_many(self, matches: Sequence[MatchInfo]) -> list[LaunchOutcome]:
        """Start game servers for several matches at once: one outcome per match, in
        order, a `LaunchError` for each that failed (never raised: one launch
        failing leaves the others alone).

        Default: `launch()` in up to GAME_LAUNCH_CONCURRENCY threads. A strategy
        with a cheaper way to overlap its launches overrides it."""
        return launch_in_threads(self.launch, matches)


def launch_in_threads(launch: Callable[[MatchInfo], LaunchResult], matches: Sequence[MatchInfo]) -> list[LaunchOutcome]:
    """`launch(match)` for each match, up to GAME_LAUNCH_CONCURRENCY at a time.

    Every launch starts within GAME_SERVER_LAUNCH_TIMEOUT of the call (one still
    queued then fails with ``launch_timeout`` without starting), and each is
    bounded by its own timeout, so the whole batch ends within twice that: well
    before the supervisor fails matches left `launching`. A single match runs in
    the calling thread (no pool: the single `PUT /api/match` pays nothing).
    """
    if len(matches) == 1:
        return [_outcome(launch, matches[0])]
    latest_start = time.monotonic() + settings.GAME_SERVER_LAUNCH_TIMEOUT

    def run(match: MatchInfo) -> LaunchOutcome:
        try:
            if time.monotonic() > latest_start:
                return LaunchError("launch_timeout", "the batch ran out of time before this launch could start")
            return _outcome(launch, match)
        finally:
            connections.close_all()  # this pool thread's own, if the launch opened one

    workers = max(1, min(int(settings.GAME_LAUNCH_CONCURRENCY), len(matches)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="arena-launch") as pool:
        return list(pool.map(run, matches))


def _outcome(launch: Callable[[MatchInfo], LaunchResult], match: MatchInfo) -> LaunchOutcome:
    try:
        return launch(match)
    except LaunchError as error:
        return error
    except Exception as error:  # a bug must fail this match, not its neighbours in the batch
        logger.exception("launch of match %s raised", match.id)
        return LaunchError("launch_failed", f"the launcher raised {error.__class__.__name__}")


STRATEGIES = {
    "subprocess": "arena.matches.launcher.process.SubprocessLauncher",
    "warm": "arena.matches.launcher.warm.WarmLauncher",
    "fleet": "arena.fleet.launcher.FleetLauncher",
}


@cache
def _launcher(name: str) -> Launcher:
    try:
        path = STRATEGIES[name]
    except KeyError:
        raise LaunchError("launch_failed", f"unknown GAME_SERVER_LAUNCHER {name!r}") from None
    return import_string(path)()


def get_launcher() -> Launcher:
    return _launcher(settings.GAME_SERVER_LAUNCHER)
