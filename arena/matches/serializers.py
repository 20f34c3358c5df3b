"""The JSON shapes of the match API: input validation and the one output form."""
from __future__ import annotations

from rest_framework import serializers

from arena.matches.models import Match
from arena.matches.selectors import match_recorded, match_score


class MatchCreateInput(serializers.Serializer):
    players = serializers.ListField(child=serializers.CharField(max_length=150), min_length=1, max_length=16)
    points_to_win = serializers.IntegerField(required=False, default=5, min_value=1, max_value=21)
    id = serializers.UUIDField(required=False, allow_null=True, default=None)


class MatchBatchInput(serializers.Serializer):
    """`PUT /api/matches`, for the schema: its entries are checked one by one in the
    view (an entry's error is that entry's answer), its envelope against
    GAME_BATCH_MAX_MATCHES (100 here is the default)."""

    matches = serializers.ListField(child=MatchCreateInput(), min_length=1, max_length=100)


class TokenInput(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False)


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def match_representation(match: Match) -> dict:
    """Everything a client may know about a match (no secrets: tokens are separate)."""
    return {
        "id": str(match.id),
        "status": match.status,
        "host": match.host or None,
        "port": match.port,
        "players": [
            {"username": p.user.get_username(), "side": p.side, "score": p.score} for p in match.players.all()
        ],
        "points_to_win": match.points_to_win,
        "score": match_score(match),
        "winner": match.winner.get_username() if match.winner else None,
        "finish_reason": match.finish_reason or None,
        "recorded": match_recorded(match),
        "created_at": _iso(match.created_at),
        "started_at": _iso(match.started_at),
        "finished_at": _iso(match.finished_at),
    }
