"""Things that happened during a step, for the server to broadcast or play sounds on.

Events are facts derived from the state change; the state alone is always
authoritative, events are only notifications.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PaddleHit:
    """The ball bounced off ``side``'s paddle."""

    side: str


@dataclass(frozen=True, slots=True)
class WallBounce:
    """The ball bounced off the top or bottom wall."""


@dataclass(frozen=True, slots=True)
class PointScored:
    """``side`` scored; ``score`` is the score after the point (a private copy)."""

    side: str
    score: dict[str, int]


@dataclass(frozen=True, slots=True)
class GameOver:
    """``winner`` reached points_to_win; ``score`` is final (a private copy)."""

    winner: str
    score: dict[str, int]


Event = PaddleHit | WallBounce | PointScored | GameOver
