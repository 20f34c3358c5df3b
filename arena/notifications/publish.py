"""Match events for the players' always-connected channel.

The match services call these inside the transaction of each status change (so
the `outbox` backend's event row commits, or not, with the change) in whichever
process made it: the Django process that launched the match, or the match's game
server. Publishing never breaks the change it reports: every function here is best
effort, logs a warning when it fails, and never raises. A client that missed an
event gets the current state when it (re)connects.

Payloads: `arena.notifications.events`; transport: `arena.notifications.backends`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from uuid import UUID

from arena.matches.models import Match
from arena.matches.states import MatchStatus
from arena.notifications import events
from arena.notifications.backends import get_notifier

logger = logging.getLogger("arena.notifications")


def on_match_event(kind: str, match: Match, event: dict[str, Any] | None) -> None:
    """The adapter `arena.matches.events` calls (inside the change's transaction)."""
    ADAPTED[kind](match)


on_match_event.needs_event = False  # it builds its own payloads (arena.notifications.events)


def match_ready(match: Match) -> None:
    """The game server listens: players get host, port and their own game token."""
    if match.status not in (MatchStatus.WAITING, MatchStatus.PLAYING) or not match.port:
        # It ended before its launcher saw the port; that end was published itself.
        logger.debug("no match.ready for match %s (%s)", match.id, match.status)
        return
    _publish(match, events.ready)


def match_started(match: Match) -> None:
    _publish(match, events.started)


def match_finished(match: Match) -> None:
    _publish(match, events.finished)


def match_cancelled(match: Match) -> None:
    _publish(match, events.cancelled)


def match_failed(match: Match) -> None:
    _publish(match, events.failed)


ADAPTED = {
    "ready": match_ready,
    "started": match_started,
    "finished": match_finished,
    "cancelled": match_cancelled,
    "failed": match_failed,
}


def match_score(match: Match | UUID | str, score: dict[str, int]) -> None:
    """A point was scored (for lobbies and spectators; players see it in the game).

    Not called by the services (the score lives in the game server until the
    end); a game server may call it, in a worker thread, after each point.
    """
    try:
        if not isinstance(match, Match):
            from arena.matches.selectors import match_get

            match = match_get(match)
    except Exception as error:  # noqa: BLE001 - best effort
        logger.warning("could not publish match.score for match %s: %s", match, error)
        return
    _publish(match, lambda m: events.score(m, score))


def _publish(match: Match, build: Callable[[Match], dict[str, Any]]) -> None:
    try:
        get_notifier().publish(events.notification(match, build(match)))
    except Exception:  # noqa: BLE001 - never break the service call
        logger.warning("could not publish an event for match %s", getattr(match, "id", match), exc_info=True)
