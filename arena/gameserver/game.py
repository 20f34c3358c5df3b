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

Replays: the room records the seed, the game's `Game.rules` and every action it
applied (`Game.encode_action`, read back with `Game.parse_input`); the module's
``from_config(*, seed, config)`` rebuilds the same game from them, so a finished
match can be played again through the same code (`arena.matches.replays`).
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
    #: True if an action equal to the side's last applied one changes nothing in the
    #: rules (an intent that persists until changed): a replay may leave it out.
    repeats_ignored: bool

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

    def rules(self) -> dict[str, Any]:
        """``{"name", "version", "config"}``: what a replay must run to reproduce
        this match. ``version`` changes whenever the same inputs could give other
        results, so an old replay is never played with rules it was not made with;
        ``config`` (JSON) is what ``from_config`` takes back."""

    def encode_action(self, action: Any) -> dict[str, Any]:
        """An applied action as the JSON fields of an ``input`` payload (without
        ``seq``); `parse_input` turns them back into the same action."""


class GameFactory(Protocol):
    def __call__(self, *, seed: int, points_to_win: int) -> Game: ...


class GameRestorer(Protocol):
    def __call__(self, *, seed: int, config: Mapping[str, Any]) -> Game: ...


def load_rules(path: str) -> GameFactory:
    """The ``create`` function of the game module at import path `path`."""
    module = import_module(path)
    create = getattr(module, "create", None)
    if not callable(create):
        raise ImportError(f"{path} has no create(*, seed, points_to_win) function")
    return create


def load_restorer(path: str) -> GameRestorer:
    """The ``from_config`` function of the game module at `path`: a new game from a
    recorded ``rules()["config"]`` and seed (what a replay runs)."""
    module = import_module(path)
    restore = getattr(module, "from_config", None)
    if not callable(restore):
        raise ImportError(f"{path} has no from_config(*, seed, config) function")
    return restore
