"""The game server's view of the database: the match it serves and its result.

The game loop is asynchronous and must never wait on the database, so every call
runs the shared match services in a worker thread: asgiref's one thread for
thread-sensitive calls, so a process's database writes, whatever number of
matches it serves, go through one thread and one connection. The game server
reaches the database and the notifications only through `arena.matches.services`.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.utils import timezone

from arena.gameserver.contract import MatchInfo, Seat, user_key
from arena.gameserver.recorder import Recorder
from arena.matches import replays, services
from arena.matches.models import MatchPlayer
from arena.matches.spool import spool_write
from arena.matches.states import MatchStatus

logger = logging.getLogger("arena.gameserver")

LAUNCHABLE = {MatchStatus.LAUNCHING, MatchStatus.WAITING}


class MatchNotLaunchable(Exception):
    pass


def load_match(match_id: str) -> MatchInfo:
    """Read the match this process serves (synchronously, before the loop starts)."""
    try:  # one query, no model instances: this is on every launch's path
        rows = list(
            MatchPlayer.objects.filter(match_id=match_id)
            .order_by("seat")
            .values_list("match__status", "match__points_to_win", "user_id", f"user__{get_user_model().USERNAME_FIELD}", "side")
        )
    except (ValueError, ValidationError) as error:  # not a UUID
        raise MatchNotLaunchable(f"match {match_id} not found ({error.__class__.__name__})") from None
    except DatabaseError as error:
        raise MatchNotLaunchable(f"match {match_id} could not be read ({error.__class__.__name__})") from None
    if not rows:
        raise MatchNotLaunchable(f"match {match_id} not found")
    status, points_to_win = rows[0][0], rows[0][1]
    if status not in LAUNCHABLE:
        raise MatchNotLaunchable(f"match {match_id} is {status}")
    seats = tuple(Seat(user_key(user_id), username, side) for _, _, user_id, username, side in rows)
    return MatchInfo(id=str(match_id), points_to_win=points_to_win, seats=seats)


def _fresh_connection_on_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Run `fn`; after a database error, drop the broken connection so the next
    attempt opens a new one (outside a request Django never does it by itself)."""

    def call(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except DATABASE_ERRORS:
            connection.close()
            raise

    return call


DATABASE_ERRORS = (OperationalError, InterfaceError)
T = TypeVar("T")


class MatchStore:
    """Asynchronous calls to the match services for one match.

    Writes are retried with backoff while the database is unreachable. A result
    that still cannot be written after GAME_RESULT_RETRY_FOR seconds is spooled to
    disk for the supervisor to import, so it is never lost.
    """

    def __init__(self, match_id: str, retry_for: float = 30.0, host_name: str | None = None) -> None:
        self.match_id = match_id
        self.retry_for = retry_for
        # On a fleet host: every write applies only while the match is still
        # assigned to this host (see services._transition).
        self.host_name = host_name or None

    async def _call(self, fn: Callable[..., T], *args: Any, retry_for: float | None = None, **kwargs: Any) -> T:
        deadline = time.monotonic() + (self.retry_for if retry_for is None else retry_for)
        delay = 0.1
        call = sync_to_async(_fresh_connection_on_error(fn))
        while True:
            try:
                return await call(*args, **kwargs)
            except DATABASE_ERRORS as error:
                if time.monotonic() + delay > deadline:
                    raise
                logger.warning("database unavailable (%s); retrying in %.1f s", error.__class__.__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def mark_playing(self) -> bool:
        return await self._call(services.match_mark_playing, self.match_id, host_name=self.host_name)

    async def finish(
        self, *, score: dict[str, int], winner_side: str, reason: str, replay: Recorder | None = None
    ) -> bool:
        """Write the result, with the match's `replay` if it was recorded."""
        finished_at = timezone.now()
        blob = await _encoded(replay)
        try:
            return await self._call(
                services.match_finish,
                self.match_id,
                score=score,
                winner_side=winner_side,
                reason=reason,
                finished_at=finished_at,
                host_name=self.host_name,
                replay=blob,
            )
        except DATABASE_ERRORS:
            self._spool(
                "finish", score=score, winner_side=winner_side, reason=reason, finished_at=finished_at, replay=blob
            )
            return True

    async def cancel(
        self, *, reason: str, score: dict[str, int] | None = None, replay: Recorder | None = None
    ) -> bool:
        finished_at = timezone.now()
        blob = await _encoded(replay)
        try:
            return await self._call(
                services.match_cancel,
                self.match_id,
                reason=reason,
                score=score,
                finished_at=finished_at,
                host_name=self.host_name,
                replay=blob,
            )
        except DATABASE_ERRORS:
            self._spool("cancel", score=score, reason=reason, finished_at=finished_at, replay=blob)
            return True

    async def fail(self, *, reason: str) -> bool:
        """The match broke (its game raised): failed, retried like a result."""
        return await self._call(services.match_fail, self.match_id, reason=reason)

    async def publish_score(self, score: dict[str, int]) -> None:
        """Tell lobbies and watchers about a point (best effort, never retried)."""
        await sync_to_async(_fresh_connection_on_error(services.match_publish_score))(self.match_id, score)

    async def heartbeat(self) -> str | None:
        """None while the match is live and ours; else why this server must stop."""
        return await self._call(services.match_heartbeat, self.match_id, retry_for=0, host_name=self.host_name)

    def _spool(self, action: str, *, finished_at, replay: bytes | None, **fields: Any) -> None:
        if replay is not None:  # imported with the result, in its transaction
            fields["replay"] = base64.b64encode(replay).decode("ascii")
        if self.host_name:  # imported later under the same guard as a direct write
            fields["host_name"] = self.host_name
        path = spool_write(self.match_id, action, finished_at=finished_at.isoformat(), **fields)
        logger.error("database unreachable: result of match %s spooled to %s", self.match_id, path)


async def _encoded(replay: Recorder | None) -> bytes | None:
    """The stored form of a recording, built off the event loop (a long match's
    takes a few milliseconds, which the other matches of the process must not wait)."""
    if replay is None:
        return None
    return await asyncio.to_thread(lambda: replays.encode(replay.recording()))


async def write_heartbeat(spectators: Mapping[str, int], host_name: str | None = None) -> dict[str, str]:
    """One UPDATE for every match of the process, `spectators` by match id (never
    retried: the next beat is); returns the matches no longer live here, with why
    (see `services.matches_heartbeat`)."""
    beat = sync_to_async(_fresh_connection_on_error(services.matches_heartbeat))
    return await beat(list(spectators), host_name=host_name, spectators=spectators)


def _adopt_connections() -> None:
    from django.db import connections

    for alias in connections:
        try:
            del connections[alias]  # a wrapper inherited from the zygote's main thread
        except AttributeError:
            pass
        connections[alias]  # noqa: B018  (created here, in the database thread)


async def adopt_connection() -> None:
    """Make the process's database connection the database thread's own.

    Django ties a connection wrapper to the thread that created it; the one a
    forked process inherits was created by the zygote's main thread, so closing it
    from the database thread (an idle shared process, the end of a match) would be
    refused. Called once at the start of a game-server process."""
    await sync_to_async(_adopt_connections)()


async def close_connection() -> None:
    """Close the database thread's connection (a process that went idle or ends)."""
    from django.db import connections

    await sync_to_async(connections.close_all)()
