"""Immutable game state.

Frozen values so a server can keep the previous state around (for snapshots,
replays, lag compensation) without defensive copies. The dict fields are
shared between successive states when unchanged, so they must be treated as
read-only: build a new dict instead of mutating one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Ball:
    """Ball centre (px) and velocity (px/s)."""

    x: float
    y: float
    vx: float
    vy: float


@dataclass(frozen=True, slots=True)
class State:
    """Everything needed to continue a match; see ``rules.step``."""

    tick: int  # number of steps taken
    ball: Ball
    paddles: dict[str, float]  # side -> y of the paddle centre (read-only)
    moves: dict[str, int]  # side -> current intent -1/0/+1, persists until changed (read-only)
    score: dict[str, int]  # (read-only)
    serve_in: float  # seconds until the serve; while > 0 the ball rests at the centre
    serve_to: str  # side the next serve travels toward
    rng: int  # SplitMix64 state, see rng.py
    winner: str | None  # set once a side reached points_to_win; the game is then frozen
