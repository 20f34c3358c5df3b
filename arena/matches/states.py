"""The match life cycle: the one place that says which status may follow which.

Every status change goes through `arena.matches.services`, which turns these rules
into a conditional UPDATE, so a finished match can never go back even when two
processes race to change it.
"""
from __future__ import annotations

from django.db import models


class MatchStatus(models.TextChoices):
    LAUNCHING = "launching", "Launching"
    WAITING = "waiting", "Waiting for players"
    PLAYING = "playing", "Playing"
    FINISHED = "finished", "Finished"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


LIVE_STATUSES: frozenset[str] = frozenset(
    {MatchStatus.LAUNCHING, MatchStatus.WAITING, MatchStatus.PLAYING}
)
FINAL_STATUSES: frozenset[str] = frozenset(
    {MatchStatus.FINISHED, MatchStatus.CANCELLED, MatchStatus.FAILED}
)

TRANSITIONS: dict[str, frozenset[str]] = {
    MatchStatus.LAUNCHING: frozenset({MatchStatus.WAITING, MatchStatus.FAILED, MatchStatus.CANCELLED}),
    MatchStatus.WAITING: frozenset({MatchStatus.PLAYING, MatchStatus.CANCELLED, MatchStatus.FAILED}),
    MatchStatus.PLAYING: frozenset({MatchStatus.FINISHED, MatchStatus.CANCELLED, MatchStatus.FAILED}),
    MatchStatus.FINISHED: frozenset(),
    MatchStatus.CANCELLED: frozenset(),
    MatchStatus.FAILED: frozenset(),
}


def sources_of(target: str) -> frozenset[str]:
    """The statuses from which a match may move to `target`."""
    return frozenset(source for source, targets in TRANSITIONS.items() if target in targets)


def can_transition(source: str, target: str) -> bool:
    return target in TRANSITIONS.get(source, frozenset())
