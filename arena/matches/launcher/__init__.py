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

import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
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

    def launch_many(self, matches: Iterable[MatchInfo]) -> Iterator[tuple[int, LaunchOutcome]]:
        """Start game servers for several matches at once. Yields (position of the
        match in `matches`, its outcome) as each launch ends, in any order: a
        `LaunchResult`, or the `LaunchError` of one that failed (never raised: one
        launch failing leaves the others alone).

        `matches` is consumed lazily, so the caller may write match n+1 while match
        n launches, and record each outcome while later launches run.

        Default: `launch()` in up to GAME_LAUNCH_CONCURRENCY threads. A strategy
        with a cheaper way to overlap its launches overrides it."""
        return launch_in_threads(self.launch, matches)


def launch_in_threads(
    launch: Callable[[MatchInfo], LaunchResult], matches: Iterable[MatchInfo]
) -> Iterator[tuple[int, LaunchOutcome]]:
    """`launch(match)` for each match, up to GAME_LAUNCH_CONCURRENCY at a time.

    Each launch starts within GAME_SERVER_LAUNCH_TIMEOUT of its match being
    handed over (one still queued then fails with ``launch_timeout`` without
    starting) and is bounded by its own timeout: it ends well before the
    supervisor fails a match left `launching`. A lone match runs in the calling
    thread (no pool: the single `PUT /api/match` pays nothing for it).
    """
    items = iter(matches)
    first = next(items, None)
    if first is None:
        return
    second = next(items, None)
    if second is None:
        yield 0, _outcome(launch, first)
        return

    def run(match: MatchInfo, latest_start: float) -> LaunchOutcome:
        try:
            if time.monotonic() > latest_start:
                return LaunchError("launch_timeout", "waited too long in its batch for a launch slot")
            return _outcome(launch, match)
        finally:
            connections.close_all()  # this pool thread's own, if the launch opened one

    timeout = settings.GAME_SERVER_LAUNCH_TIMEOUT
    with ThreadPoolExecutor(max_workers=max(1, int(settings.GAME_LAUNCH_CONCURRENCY)),
                            thread_name_prefix="arena-launch") as pool:
        futures = {
            pool.submit(run, match, time.monotonic() + timeout): position
            for position, match in enumerate(itertools.chain((first, second), items))
        }
        for future in as_completed(futures):
            yield futures[future], future.result()


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
