"""The game server's view of the database: the match it serves and its result.

The game loop is asynchronous and must never wait on the database, so every call
runs the shared match services in a worker thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async

from arena.matches import services
from arena.matches.models import Match
from arena.matches.states import MatchStatus

LAUNCHABLE = {MatchStatus.LAUNCHING, MatchStatus.WAITING}


@dataclass(frozen=True)
class Seat:
    user_id: int
    username: str
    side: str


@dataclass(frozen=True)
class MatchInfo:
    id: str
    points_to_win: int
    seats: tuple[Seat, ...]

    def seat_of(self, user_id: int | None) -> Seat | None:
        return next((s for s in self.seats if s.user_id == user_id), None)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "players": [{"username": s.username, "side": s.side} for s in self.seats],
            "points_to_win": self.points_to_win,
        }


class MatchNotLaunchable(Exception):
    pass


def load_match(match_id: str) -> MatchInfo:
    """Read the match this process serves (synchronously, before the loop starts)."""
    try:
        match = Match.objects.prefetch_related("players__user").get(pk=match_id)
    except (Match.DoesNotExist, ValueError, Exception) as error:  # bad uuid, missing row
        raise MatchNotLaunchable(f"match {match_id} not found ({error.__class__.__name__})") from None
    if match.status not in LAUNCHABLE:
        raise MatchNotLaunchable(f"match {match_id} is {match.status}")
    seats = tuple(Seat(p.user_id, p.user.username, p.side) for p in match.players.all())
    return MatchInfo(id=str(match.id), points_to_win=match.points_to_win, seats=seats)


class MatchStore:
    """Asynchronous calls to the match services for one match."""

    def __init__(self, match_id: str) -> None:
        self.match_id = match_id

    async def mark_playing(self) -> bool:
        return await sync_to_async(services.match_mark_playing)(self.match_id)

    async def finish(self, *, score: dict[str, int], winner_side: str, reason: str) -> bool:
        return await sync_to_async(services.match_finish)(
            self.match_id, score=score, winner_side=winner_side, reason=reason
        )

    async def cancel(self, *, reason: str, score: dict[str, int] | None = None) -> bool:
        return await sync_to_async(services.match_cancel)(self.match_id, reason=reason, score=score)

    async def fail(self, *, reason: str) -> bool:
        return await sync_to_async(services.match_fail)(self.match_id, reason=reason)

    async def heartbeat(self) -> None:
        await sync_to_async(services.match_heartbeat)(self.match_id)
