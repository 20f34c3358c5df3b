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
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Protocol

from arena.conf import settings
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


class Launcher(Protocol):
    def launch(self, match: MatchInfo) -> LaunchResult:
        """Start a game server for the match and return once it listens."""

    def prepare(self) -> None:
        """Get ready now for fast launches later (a server process calls it at start).

        Raises LaunchError if it cannot; a later `launch()` tries again.
        """


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
