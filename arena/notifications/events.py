"""What the notification channel says: event payloads, who receives them, and
the groups they travel through.

Pure functions of a `Match` (with its players prefetched); no I/O. Every event has
the same envelope, so a client can route on `type` and `match.id` alone:

    {"type": "match.<what>",
     "match": {"id", "status", "players": [{"username", "side"}], "points_to_win"},
     ...fields of that type}

Events are statements about the state of a match, never commands: receiving one
twice, or receiving one again after a reconnection (`"replay": true`), is harmless.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from arena.gameserver.contract import UserKey, user_key
from arena.matches.models import Match
from arena.matches.selectors import match_score
from arena.matches.states import MatchStatus

READY = "match.ready"
STARTED = "match.started"
SCORE = "match.score"
FINISHED = "match.finished"
CANCELLED = "match.cancelled"
FAILED = "match.failed"
TYPES = (READY, STARTED, SCORE, FINISHED, CANCELLED, FAILED)

# How far along its life a match is once an event was seen: a connection never
# sends an event of a lower rank than one it sent for the same match (a replay
# racing a live event cannot make a match look younger than it is). Scores share
# the rank of `started` and may repeat.
RANK = {READY: 1, STARTED: 2, SCORE: 2, FINISHED: 3, CANCELLED: 3, FAILED: 3}
REPEATABLE = frozenset({SCORE})

USER_GROUP = "arena.user.{}"
MATCH_GROUP = "arena.match.{}"
LOBBY_GROUP = "arena.lobby"  # the public events of every match, for lobby pages
PLAYERS = "players"  # audience of a user group: may add the receiver's game token
PUBLIC = "public"  # audience of a match group (spectators)


def user_group(user_id: object) -> str:
    """The group of every connection of one user (all their tabs and scripts)."""
    return USER_GROUP.format(user_key(user_id))


def match_group(match_id: Any) -> str:
    """The group of the spectators who watch one match."""
    return MATCH_GROUP.format(str(match_id).replace("-", ""))


@dataclass(frozen=True)
class Notification:
    """One event of one match, addressed to its players and to its watchers."""

    match_id: str
    event: dict[str, Any]
    user_ids: tuple[UserKey, ...]

    @property
    def type(self) -> str:
        return self.event["type"]

    def layer_messages(self) -> list[tuple[str, dict[str, Any]]]:
        """(group, channel-layer message) pairs: one per player, one for the match's
        watchers, one for the lobby pages.

        A player who also watches the match gets the event once: the consumer drops
        the public copy when its user is among `user_ids`.
        """
        base = {"type": "notify", "event": self.event, "user_ids": list(self.user_ids)}
        messages = [(user_group(uid), {**base, "audience": PLAYERS}) for uid in self.user_ids]
        messages.append((match_group(self.match_id), {**base, "audience": PUBLIC}))
        messages.append((LOBBY_GROUP, {**base, "audience": PUBLIC}))
        return messages


def notification(match: Match, event: dict[str, Any]) -> Notification:
    return Notification(
        match_id=str(match.id), event=event, user_ids=tuple(user_key(p.user_id) for p in match.players.all())
    )


# --- payloads -------------------------------------------------------------------------


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def match_public(match: Match) -> dict[str, Any]:
    return {
        "id": str(match.id),
        "status": match.status,
        "players": [{"username": p.user.get_username(), "side": p.side} for p in match.players.all()],
        "points_to_win": match.points_to_win,
    }


def ready(match: Match) -> dict[str, Any]:
    """The game server listens. Each player's copy gets `token` added on delivery."""
    return {"type": READY, "match": match_public(match), "host": match.host or None, "port": match.port}


def started(match: Match) -> dict[str, Any]:
    return {
        "type": STARTED,
        "match": match_public(match),
        "host": match.host or None,
        "port": match.port,
        "started_at": _iso(match.started_at),
    }


def score(match: Match, points: dict[str, int]) -> dict[str, Any]:
    return {
        "type": SCORE,
        "match": match_public(match),
        "score": {"left": int(points.get("left", 0)), "right": int(points.get("right", 0))},
    }


def _ended(kind: str, match: Match) -> dict[str, Any]:
    return {
        "type": kind,
        "match": match_public(match),
        "winner": match.winner.get_username() if match.winner_id and match.winner else None,
        "score": match_score(match),
        "reason": match.finish_reason or None,
        "finished_at": _iso(match.finished_at),
    }


def finished(match: Match) -> dict[str, Any]:
    return _ended(FINISHED, match)


def cancelled(match: Match) -> dict[str, Any]:
    return _ended(CANCELLED, match)


def failed(match: Match) -> dict[str, Any]:
    return _ended(FAILED, match)


ENDED_BY_STATUS = {MatchStatus.FINISHED: finished, MatchStatus.CANCELLED: cancelled, MatchStatus.FAILED: failed}


def current(match: Match) -> list[dict[str, Any]]:
    """The events that bring a client that missed everything up to date.

    `launching`: nothing yet (its `match.ready` will come). `waiting`: `ready`.
    `playing`: `ready` (a player needs host, port and token to rejoin) then
    `started`. Ended: the final event.
    """
    if match.status == MatchStatus.WAITING and match.port:
        return [ready(match)]
    if match.status == MatchStatus.PLAYING and match.port:
        return [ready(match), started(match)]
    if match.status in ENDED_BY_STATUS:
        return [ENDED_BY_STATUS[match.status](match)]
    return []
