"""Pong behind the game server's room interface (see ``arena.gameserver.game``).

A thin imperative wrapper around the pure rules: it keeps the current `State`,
collects the players' intents for the next step and shapes Pong's snapshot.
Nothing here imports Arena; the room finds this module through ``GAME_RULES``.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from .config import SIDES, Config
from .rules import RULES_VERSION, new_game, step
from .state import State

MOVES = (-1, 0, 1)


class PongGame:
    """One match of Pong."""

    sides = SIDES
    # A paddle's intent persists until changed (State.moves): a repeated move is a no-op.
    repeats_ignored = True

    __slots__ = ("config", "state", "_moves")

    def __init__(self, config: Config, seed: int) -> None:
        self.config = config
        self.state: State = new_game(config, seed)
        self._moves: dict[str, int] = {}  # intents applied since the last step

    @property
    def tick(self) -> int:
        return self.state.tick

    def describe(self) -> dict[str, Any]:
        return self.config.field()

    def parse_input(self, data: Mapping[str, Any]) -> int | None:
        move = data.get("move")
        if type(move) is not int or move not in MOVES:  # bool is not a move
            return None
        return move

    def apply_input(self, side: str, action: int) -> None:
        self._moves[side] = action

    def step(self, dt: float) -> None:
        moves, self._moves = self._moves, {}
        self.state, _ = step(self.state, moves, dt, self.config)

    def score(self) -> dict[str, int]:
        return self.state.score  # read-only; the same object until a point is scored

    def winner(self) -> str | None:
        return self.state.winner

    def snapshot(self, acks: Mapping[str, int]) -> dict[str, Any]:
        """Rounded so the JSON stays small and exact enough for drawing."""
        s = self.state
        ball = s.ball
        return {
            "tick": s.tick,
            "ball": {"x": round(ball.x, 2), "y": round(ball.y, 2), "vx": round(ball.vx, 2), "vy": round(ball.vy, 2)},
            "paddles": {side: round(y, 2) for side, y in s.paddles.items()},
            "score": dict(s.score),
            "acks": dict(acks),
        }


    def rules(self) -> dict[str, Any]:
        config = self.config  # every field a plain number: no deep copy needed (asdict's)
        return {"name": "pong", "version": RULES_VERSION,
                "config": {f.name: getattr(config, f.name) for f in dataclasses.fields(config)}}

    def encode_action(self, action: int) -> dict[str, Any]:
        return {"move": action}


def create(*, seed: int, points_to_win: int) -> PongGame:
    return PongGame(Config(points_to_win=points_to_win), seed)


def from_config(*, seed: int, config: Mapping[str, Any]) -> PongGame:
    """The game `rules()["config"]` describes (a replay's); TypeError/ValueError if
    it is not a valid `Config`."""
    return PongGame(Config(**config), seed)
