"""The seam between the room and a game: what a room needs from the rules it runs.

The room (`arena.gameserver.room`) owns everything a match has whatever is played
on it: who may connect, seats, waiting, countdown, pauses, forfeits, spectators,
the time limit, the heartbeat and the recorded result. The game owns its state and
only its state. It is chosen by import path (`GAME_RULES`, default
``arena.pong.game``): a module whose ``create(*, seed, points_to_win)`` returns
one `Game` per match, in the spirit of Nakama's match handler and Colyseus's
``Room`` hooks. A game imports nothing of Arena.

The room calls a game from one thread only and never concurrently. Any exception a
game raises ends its match alone, as ``failed``.
"""
from __future__ import annotations

from collections.abc import Mapping
from importlib import import_module
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Game(Protocol):
    """One match's rules and state."""

    #: The seats' sides, in seat order; the room's seats use the same names.
    sides: tuple[str, ...]

    @property
    def tick(self) -> int:
        """Steps taken so far."""

    def describe(self) -> dict[str, Any]:
        """Static facts a client needs to draw the game (the ``field`` of ``welcome``)."""

    def parse_input(self, data: Mapping[str, Any]) -> Any | None:
        """Validate one player's ``input`` payload (its ``seq`` already checked):
        the action to apply, or None if it is malformed."""

    def apply_input(self, side: str, action: Any) -> None:
        """Apply one validated action of the player on `side` (before the next step)."""

    def step(self, dt: float) -> None:
        """Advance the game by `dt` seconds."""

    def score(self) -> dict[str, int]:
        """The score by side (recorded with the result, sent in ``score`` events)."""

    def winner(self) -> str | None:
        """The side that won by the rules, once it has; the room then ends the match."""

    def snapshot(self, acks: Mapping[str, int]) -> dict[str, Any]:
        """The ``state`` payload: everything a client needs to draw one moment,
        with `acks` (the last input ``seq`` applied per side) included."""


class GameFactory(Protocol):
    def __call__(self, *, seed: int, points_to_win: int) -> Game: ...


def load_rules(path: str) -> GameFactory:
    """The ``create`` function of the game module at import path `path`."""
    module = import_module(path)
    create = getattr(module, "create", None)
    if not callable(create):
        raise ImportError(f"{path} has no create(*, seed, points_to_win) function")
    return create
