"""Pong as a pure functional core: ``step(state, inputs, dt, config) -> (state, events)``.

No I/O, no clock, no global randomness: the game server owns time and sockets,
this package only owns the rules, so matches are reproducible and testable.
"""

from .config import SIDES, Config
from .events import Event, GameOver, PaddleHit, PointScored, WallBounce
from .rules import MAX_DT, RULES_VERSION, SERVE_ANGLE_DEG, new_game, step
from .state import Ball, State

__all__ = [
    "SIDES",
    "Config",
    "Ball",
    "State",
    "Event",
    "PaddleHit",
    "WallBounce",
    "PointScored",
    "GameOver",
    "new_game",
    "step",
    "MAX_DT",
    "SERVE_ANGLE_DEG",
    "RULES_VERSION",
]
