"""Reads of matches: what the API, the lobby and the game server look up."""
from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet

from arena.matches.errors import NotFound
from arena.matches.models import Match, MatchPlayer, MatchReplay
from arena.matches.states import FINAL_STATUSES, LIVE_STATUSES, MatchStatus


def _with_players(qs: QuerySet[Match]) -> QuerySet[Match]:
    # Two queries for any number of matches: the matches (with whether each has a
    # replay), then their seats with users.
    return (
        qs.select_related("winner")
        .annotate(recorded=Exists(MatchReplay.objects.filter(match=OuterRef("pk"))))
        .prefetch_related(Prefetch("players", queryset=MatchPlayer.objects.select_related("user")))
    )


def match_recorded(match: Match) -> bool:
    """Has the match a replay? From its query's annotation when it came with one
    (every selector here), else one indexed lookup (only an ended match can)."""
    recorded = getattr(match, "recorded", None)
    if recorded is None:
        return match.status in FINAL_STATUSES and MatchReplay.objects.filter(match=match.pk).exists()
    return bool(recorded)


def match_get(match_id: UUID | str) -> Match:
    try:
        return _with_players(Match.objects.all()).get(pk=UUID(str(match_id)))
    except (Match.DoesNotExist, ValueError):
        raise NotFound(f"No match {match_id}.") from None


def match_live_for_user(user: AbstractBaseUser) -> Match | None:
    seat = MatchPlayer.objects.filter(user=user, live=True).values_list("match_id", flat=True).first()
    return match_get(seat) if seat else None


def users_in_live_matches() -> set:
    return set(MatchPlayer.objects.filter(live=True).values_list("user_id", flat=True))


def matches_live(limit: int = 50) -> list[Match]:
    return list(_with_players(Match.objects.filter(status__in=LIVE_STATUSES))[:limit])


def live_match_counts() -> dict[str, int]:
    """Live matches per status: one grouped query on the indexed status column."""
    rows = Match.objects.filter(status__in=LIVE_STATUSES).order_by().values_list("status").annotate(n=Count("pk"))
    return dict(rows)


def matches_recent(limit: int = 20) -> list[Match]:
    qs = Match.objects.filter(status__in=FINAL_STATUSES).order_by("-finished_at", "-created_at")
    return list(_with_players(qs)[:limit])


def match_seat(match: Match, user_id: object) -> MatchPlayer | None:
    return next((p for p in match.players.all() if p.user_id == user_id), None)


def match_score(match: Match) -> dict[str, int]:
    """Points per side (a side's players share its points)."""
    score = {"left": 0, "right": 0}
    for player in match.players.all():
        score[player.side] = max(score[player.side], player.score)
    return score


def match_db_pk(match_id: UUID | str) -> Any:
    """The match id as the database stores it, for a plain SQL statement
    (ValueError if it is not a UUID)."""
    return Match._meta.pk.get_db_prep_value(UUID(str(match_id)), connection)


def live_on_host_sql(host: str) -> tuple[str, tuple[str, ...]]:
    """SQL for the number of live matches on the game host `host` names (a column
    or a placeholder), and its parameters: what fills a host's capacity, for the
    placement statements that count it under the host's lock."""
    q = connection.ops.quote_name
    statuses = tuple(sorted(LIVE_STATUSES))
    return (
        f"(SELECT COUNT(*) FROM {q(Match._meta.db_table)} live WHERE live.{q('host_name')} = {host}"
        f" AND live.{q('status')} IN ({', '.join(['%s'] * len(statuses))}))",
        statuses,
    )


def match_launch_target(match_id: UUID | str) -> tuple[str, str] | None:
    """(status, host_name) of a match, or None: what a game host checks before it
    forks a server for it (still `launching`, still assigned to that host?).

    Plain SQL: it is on every fleet launch's path, where the queryset's
    compilation cost more Python time than the query took the database.
    """
    try:
        pk = match_db_pk(match_id)
    except ValueError:
        return None
    q = connection.ops.quote_name
    table, key = q(Match._meta.db_table), q(Match._meta.pk.column)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {q('status')}, {q('host_name')} FROM {table} WHERE {key} = %s", [pk])
        row = cursor.fetchone()
    return (row[0], row[1]) if row else None


def match_is_launching(match_id: UUID | str, host_name: str = "") -> bool:
    """Still `launching`, and assigned to `host_name` ("" for none yet)?"""
    return Match.objects.filter(pk=match_id, status=MatchStatus.LAUNCHING, host_name=host_name).exists()
