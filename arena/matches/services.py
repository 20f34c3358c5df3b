"""Writes to matches: the one code path for the API, the admin, the lobby and the
game server.

Every status change is a conditional UPDATE guarded by `states.TRANSITIONS`, so
it applies at most once however many processes race for it (a final point and a
forfeit, a retried save, a supervisor). A change that is not allowed any more
returns False instead of overwriting a result.
"""
from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from arena.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, connection, transaction
from django.db.models import Case, F, PositiveIntegerField, Value, When
from django.utils import timezone

from arena.gameserver.contract import MatchInfo, Seat, user_key
from arena.matches import control, events, replays, selectors
from arena.matches.concurrency import run_in_threads
from arena.matches.errors import ArenaError, IdConflict, InvalidRequest, LaunchFailed, PlayerBusy, UnknownPlayer
from arena.matches.launcher import LaunchError, get_launcher
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import FINAL_STATUSES, LIVE_STATUSES, MatchStatus, sources_of
from arena.metrics import definitions as metrics

logger = logging.getLogger("arena.matches")

SIDES = ("left", "right")
PLAYERS_PER_MATCH = 2
POINTS_TO_WIN_RANGE = range(1, 22)
DEFAULT_POINTS_TO_WIN = 5
AWAIT_LAUNCH_POLL = 0.02


# --- creation and launch -----------------------------------------------------------


@dataclass(frozen=True)
class MatchRequest:
    """One match to create: what `PUT /api/match` (or one entry of `PUT /api/matches`) asks for."""

    usernames: Sequence[str]
    points_to_win: int = DEFAULT_POINTS_TO_WIN
    match_id: UUID | None = None


#: What creating one match came to: (the match, created?) or the error it gets.
MatchOutcome = tuple[Match, bool] | ArenaError


def match_create(
    *,
    usernames: Sequence[str],
    points_to_win: int = DEFAULT_POINTS_TO_WIN,
    match_id: UUID | None = None,
    created_by: AbstractBaseUser | None = None,
) -> tuple[Match, bool]:
    """Create a match and launch its game server; return (match, created).

    Returns only once the game server listens. A repeated `match_id` launches
    nothing: it returns the existing match (waiting for its launch to end if it is
    still under way), so clients may retry safely. A batch of one: see `matches_create`.
    """
    (outcome,) = matches_create([MatchRequest(usernames, points_to_win, match_id)], created_by=created_by)
    if isinstance(outcome, ArenaError):
        raise outcome
    return outcome


def matches_create(requests: Sequence[MatchRequest], *, created_by: AbstractBaseUser | None = None) -> list[MatchOutcome]:
    """Create several matches and launch their game servers side by side; one
    outcome per request, in order: (match, created) or the `ArenaError` that
    request gets.

    Each match is its own unit, with the rules of a single creation: its players
    checked, its rows written in a transaction of its own, its server launched,
    and the match marked `waiting` or `failed`, whatever the others come to. The
    units run in up to GAME_LAUNCH_CONCURRENCY threads (`run_in_threads`), so
    their database round trips and launch waits overlap. A player named by an
    earlier request of the same call gets `player_busy` here, before anything
    runs, so which request wins does not depend on the threads. Should this
    process die half-way, matches left `launching` are failed by the supervisor
    (`find_lost_matches`) like any launch that never completed.
    """
    outcomes: list[MatchOutcome | None] = [None] * len(requests)
    units: list[tuple[int, list[AbstractBaseUser], MatchRequest]] = []
    claimed: dict[str, int] = {}  # username -> the earlier request of this call naming it
    found = _active_users(name for request in requests for name in request.usernames)  # one query for all
    for index, request in enumerate(requests):
        try:
            users = _players_for(request.usernames, request.points_to_win, found)
        except ArenaError as error:
            outcomes[index] = error
            continue
        twice = [name for name in request.usernames if name in claimed]
        if twice:
            outcomes[index] = PlayerBusy(
                f"Already in the match of matches[{claimed[twice[0]]}] of this request: {', '.join(twice)}.")
            continue
        claimed.update((name, index) for name in request.usernames)
        units.append((index, users, request))
    done = run_in_threads(lambda unit: _match_create_one(unit[1], unit[2], created_by), units,
                          settings.GAME_LAUNCH_CONCURRENCY)
    for (index, _, _), outcome in zip(units, done, strict=True):
        outcomes[index] = outcome
    return outcomes  # type: ignore[return-value]  (every index has its outcome)


def _match_create_one(users: list[AbstractBaseUser], request: MatchRequest, created_by) -> MatchOutcome:
    """Write one match and launch it (or, for an existing `match_id`, wait for its launch)."""
    started = time.perf_counter()  # the launch latency metric's start
    try:
        match, created = _match_insert(users, request.points_to_win, request.match_id, created_by)
        if not created:
            return _match_await_launch(match), False
        seats = tuple(Seat(user_key(user.pk), user.get_username(), side_of_seat(seat)) for seat, user in enumerate(users))
        return match_launch(MatchInfo(id=str(match.id), points_to_win=request.points_to_win, seats=seats), started=started), True
    except ArenaError as error:
        return error


def match_launch(info: MatchInfo, *, started: float | None = None) -> Match:
    """Start the game server of a `launching` match; fail the match if it cannot.

    `info` is the match as its creator just wrote it (`store.load_match` reads it
    back for anyone else). Returns the match as it was announced to its players.
    The launch is counted (`arena_launches_total`) and, from `started` (the
    request's `perf_counter()`, else now) to its port, timed."""
    match_id = info.id
    started = time.perf_counter() if started is None else started
    strategy = settings.GAME_SERVER_LAUNCHER
    try:
        result = get_launcher().launch(info)
    except LaunchError as error:
        metrics.record_launch(strategy, error.code, None)
        match_fail(match_id, reason=f"{error.code}: {error.detail}"[:255])
        raise LaunchFailed(error.detail, code=error.code) from None
    metrics.record_launch(strategy, "ok", time.perf_counter() - started)
    host = result.host or settings.GAME_SERVER_HOST
    with transaction.atomic():  # the event commits with the change (see arena.matches.events)
        waiting = match_mark_waiting(match_id, host=host, port=result.port, pid=result.pid)
        if not waiting:
            # The match moved on already (e.g. cancelled, or the server failed it). Report what it is.
            logger.warning("match %s left 'launching' before its launcher saw the port", match_id)
        match = selectors.match_get(match_id)
        if waiting:
            events.record(events.READY, match)
    if not waiting and match.status == MatchStatus.CANCELLED:
        control.send_cancel(host, result.port, match_id)  # its server started after the cancel: stop it now
    return match


def side_of_seat(seat: int) -> str:
    """The side of the player at `seat` (the order of the request): alternating."""
    return SIDES[seat % 2]


def _active_users(usernames: Iterable[str]) -> dict[str, AbstractBaseUser]:
    """The active users of these logins, by login: one query for a whole batch."""
    User = get_user_model()  # logins are values of its USERNAME_FIELD, whatever that field is
    lookup = {f"{User.USERNAME_FIELD}__in": set(usernames), "is_active": True}
    return {u.get_username(): u for u in User.objects.filter(**lookup)}


def _players_for(
    usernames: Sequence[str], points_to_win: int, found: dict[str, AbstractBaseUser]
) -> list[AbstractBaseUser]:
    """The match's players in request order, from `found` (`_active_users`)."""
    if len(usernames) != PLAYERS_PER_MATCH:
        raise InvalidRequest(f"A match needs exactly {PLAYERS_PER_MATCH} players.")
    if len(set(usernames)) != len(usernames):
        raise InvalidRequest("A player cannot face themselves.")
    if points_to_win not in POINTS_TO_WIN_RANGE:
        raise InvalidRequest("points_to_win must be between 1 and 21.")
    missing = [name for name in usernames if name not in found]
    if missing:
        raise UnknownPlayer(f"Unknown player(s): {', '.join(missing)}.")
    return [found[name] for name in usernames]


def _match_insert(
    users: list[AbstractBaseUser], points_to_win: int, match_id: UUID | None, created_by
) -> tuple[Match, bool]:
    # A client-chosen id may exist already (a retry); a fresh one cannot.
    existing = Match.objects.filter(pk=match_id).first() if match_id else None
    match_id = match_id or uuid.uuid4()
    if existing is None:
        try:
            with transaction.atomic():
                match = Match.objects.create(id=match_id, points_to_win=points_to_win, created_by=created_by)
                MatchPlayer.objects.bulk_create(
                    MatchPlayer(match=match, user=user, side=side_of_seat(seat), seat=seat)
                    for seat, user in enumerate(users)
                )
            logger.info("match %s created for %s", match.id, ", ".join(u.get_username() for u in users))
            return match, True
        except IntegrityError:
            existing = Match.objects.filter(pk=match_id).first()
            if existing is None:
                login = f"user__{get_user_model().USERNAME_FIELD}"
                busy = list(MatchPlayer.objects.filter(user__in=users, live=True).values_list(login, flat=True))
                raise PlayerBusy(f"Already in a live match: {', '.join(busy) or 'a player'}.") from None
    existing = selectors.match_get(existing.pk)
    if [p.user_id for p in existing.players.all()] != [u.pk for u in users] or existing.points_to_win != points_to_win:
        raise IdConflict(f"Match {match_id} exists with other players or points_to_win.")
    return existing, False


def _match_await_launch(match: Match) -> Match:
    """Wait (bounded) until another request's launch of this match is over."""
    deadline = time.monotonic() + settings.GAME_SERVER_LAUNCH_TIMEOUT + 5
    while match.status == MatchStatus.LAUNCHING:
        if time.monotonic() > deadline:
            raise LaunchFailed("The launch of this match is taking too long.", code="launch_timeout")
        time.sleep(AWAIT_LAUNCH_POLL)
        match = selectors.match_get(match.pk)
    return match


# --- life cycle -------------------------------------------------------------------


def _transition(match_id: UUID | str, target: str, *, host_name: str | None = None, **fields) -> bool:
    """Move a match to `target` if its current status allows it; True if it did.

    With `host_name` (a game server of the fleet writing), only if the match is
    still assigned to that host: a server left behind by a failed-over launch or
    a healed partition never writes over the match's real server.
    """
    now = timezone.now()
    if target in FINAL_STATUSES:
        fields.setdefault("finished_at", now)
    guard = {"host_name": host_name} if host_name else {}
    # Inside a caller's transaction no savepoint is needed (nothing here is caught
    # and retried): two statements fewer per change.
    with transaction.atomic(savepoint=False):
        changed = Match.objects.filter(pk=match_id, status__in=sources_of(target), **guard).update(
            status=target, **fields
        )
        if changed and target in FINAL_STATUSES:
            MatchPlayer.objects.filter(match_id=match_id).update(live=False)
    if changed:
        logger.info("match %s -> %s %s", match_id, target, fields.get("finish_reason", ""))
    return bool(changed)


def match_mark_waiting(match_id: UUID | str, *, host: str, port: int, pid: int) -> bool:
    """The game server listens: store where, and wait for the players."""
    now = timezone.now()
    return _transition(match_id, MatchStatus.WAITING, host=host, port=port, pid=pid, heartbeat_at=now)


def match_assign_host(match_id: UUID | str, host_name: str, *, capacity: int, previous: str = "") -> bool:
    """Record the game host chosen for a `launching` match (moving it from
    `previous` when a launch fails over) if that host runs fewer than `capacity`
    live matches; False otherwise, or if the match is no longer launching there.

    One conditional UPDATE: the count is read in the same statement. The caller
    (fleet placement) holds the host's row lock, so the statement's snapshot,
    taken after the lock, includes every assignment made under it before.

    Plain SQL because it is on every fleet launch's path, where compiling the
    equivalent queryset (a `Subquery` count) cost more than running it
    (docs/benchmarks.md, "Fleet").
    """
    sql, live = _assign_host_sql(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(sql, [host_name, selectors.match_db_pk(match_id), MatchStatus.LAUNCHING, previous, host_name,
                             *live, capacity])
        return cursor.rowcount == 1


@functools.cache
def _assign_host_sql(vendor: str) -> tuple[str, tuple[str, ...]]:
    q = connection.ops.quote_name
    host = q("host_name")
    live_there, params = selectors.live_on_host_sql("%s")
    return (
        f"UPDATE {q(Match._meta.db_table)} SET {host} = %s"
        f" WHERE {q(Match._meta.pk.column)} = %s AND {q('status')} = %s AND {host} = %s AND {live_there} < %s",
        params,
    )


def match_mark_playing(match_id: UUID | str, *, host_name: str | None = None) -> bool:
    """Every player is connected: the game starts."""
    with transaction.atomic():
        changed = _transition(match_id, MatchStatus.PLAYING, host_name=host_name, started_at=timezone.now())
        if changed:
            events.record(events.STARTED, selectors.match_get(match_id))
    return changed


def match_finish(
    match_id: UUID | str,
    *,
    score: dict[str, int],
    winner_side: str,
    reason: str = "points",
    finished_at: datetime | None = None,
    host_name: str | None = None,
    replay: bytes | None = None,
) -> bool:
    """Record the result of a played match, once; False if it already ended.

    The caller (the game server) decides the winner: the side that reached
    `points_to_win`, the leader at the time limit, or the side still present after
    a forfeit. Its `replay` (`replays.encode`) is stored with the result, in the
    same transaction: both or neither.
    """
    if winner_side not in SIDES:
        raise ValueError(f"winner_side must be one of {SIDES}")
    with transaction.atomic():
        winner_id = (
            MatchPlayer.objects.filter(match_id=match_id, side=winner_side)
            .order_by("seat")
            .values_list("user_id", flat=True)
            .first()
        )
        changed = _transition(
            match_id,
            MatchStatus.FINISHED,
            host_name=host_name,
            finish_reason=reason,
            winner_id=winner_id,
            winner_side=winner_side,
            finished_at=finished_at or timezone.now(),
        )
        if changed:
            _save_scores(match_id, score)
            if replay is not None:
                replays.replay_create(match_id, replay)
            events.record(events.FINISHED, selectors.match_get(match_id))
    return changed


def match_cancel(
    match_id: UUID | str,
    *,
    reason: str,
    score: dict[str, int] | None = None,
    finished_at: datetime | None = None,
    host_name: str | None = None,
    replay: bytes | None = None,
) -> bool:
    """End a match without a winner (players missing, shutdown, tie at time limit);
    a match that was played keeps its `replay`, written as with `match_finish`."""
    with transaction.atomic():
        changed = _transition(
            match_id,
            MatchStatus.CANCELLED,
            host_name=host_name,
            finish_reason=reason[:255],
            finished_at=finished_at or timezone.now(),
        )
        if changed and score:
            _save_scores(match_id, score)
        if changed and replay is not None:
            replays.replay_create(match_id, replay)
        if changed:
            events.record(events.CANCELLED, selectors.match_get(match_id))
    return changed


def match_fail(match_id: UUID | str, *, reason: str) -> bool:
    """End a match because its game server could not start or died."""
    with transaction.atomic():
        changed = _transition(match_id, MatchStatus.FAILED, finish_reason=reason[:255])
        if changed:
            events.record(events.FAILED, selectors.match_get(match_id))
    if changed:
        metrics.record_failure(reason)
    return changed


def match_stop(match_id: UUID | str, *, reason: str) -> bool:
    """Cancel a live match and stop its game server, wherever it runs.

    The database first (the players are free and told at once, and no result
    can be written any more), then a control message to the match's own game
    server, which ends its clients' session with `game_over {reason:
    "cancelled"}` and exits. Should that message not get through, the server's
    next heartbeat finds the match cancelled and does the same. False if the
    match was not live.
    """
    if not match_cancel(match_id, reason=reason):
        return False
    match = Match.objects.filter(pk=match_id).values("host", "port").first()
    if match and match["host"] and match["port"]:
        control.send_cancel(match["host"], match["port"], match_id)
    return True


def match_heartbeat(match_id: UUID | str, *, host_name: str | None = None) -> str | None:
    """The game server is alive (written every few seconds, one cheap UPDATE).

    None while its match is live (and, with `host_name`, still assigned to that
    host); otherwise why its server must stop (see `matches_heartbeat`)."""
    return matches_heartbeat([match_id], host_name=host_name).get(str(match_id))


def matches_heartbeat(
    match_ids: Sequence[UUID | str], *, host_name: str | None = None, spectators: Mapping[str, int] | None = None,
) -> dict[str, str]:
    """The game server of these matches is alive: one UPDATE for all of a process's matches
    (with `spectators`, each match's spectator count by id, in the same UPDATE).

    Returns the matches its server must stop serving, each with the `game_over`
    reason its clients get (``cancelled``, ``host_lost``, ``server_lost``,
    ``match_over``, ``moved``): those no longer live or (with `host_name`) no
    longer assigned to that host. A second query runs only when there are some.
    """
    ids = [str(match_id) for match_id in match_ids]
    guard = {"host_name": host_name} if host_name else {}
    beating = Match.objects.filter(pk__in=ids, status__in=LIVE_STATUSES, **guard)
    values: dict[str, Any] = {"heartbeat_at": timezone.now()}
    if spectators:
        values["spectators"] = Case(
            *(When(pk=match_id, then=Value(max(0, int(count)))) for match_id, count in spectators.items()),
            default=F("spectators"),
            output_field=PositiveIntegerField(),
        )
    if beating.update(**values) == len(ids):
        return {}
    ended = {}
    rows = {str(row["id"]): row for row in Match.objects.filter(pk__in=ids).values("id", "status", "finish_reason", "host_name")}
    for match_id in ids:
        row = rows.get(match_id)
        if row is None or row["status"] == MatchStatus.FINISHED:
            ended[match_id] = "match_over"
        elif row["status"] == MatchStatus.CANCELLED:
            ended[match_id] = "cancelled"
        elif row["status"] == MatchStatus.FAILED:
            ended[match_id] = row["finish_reason"].split(":", 1)[0] or "failed"
        elif host_name and row["host_name"] != host_name:
            ended[match_id] = "moved"  # live, but assigned to another host
    return ended


def match_publish_score(match_id: UUID | str, score: dict[str, int]) -> None:
    """Tell lobbies and watchers about a point (best effort; the game server calls it).

    Through Arena's notification channel, when the project installed it (a host
    may have its own channel)."""
    from django.apps import apps

    if not apps.is_installed("arena.notifications"):
        return
    from arena.notifications import publish

    publish.match_score(match_id, score)


def _save_scores(match_id: UUID | str, score: dict[str, int]) -> None:
    for side in SIDES:
        MatchPlayer.objects.filter(match_id=match_id, side=side).update(score=max(0, int(score.get(side, 0))))
