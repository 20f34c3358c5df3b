"""Match events for the host project: Django signals, and the adapters that carry
each event further (Arena's notification channel, the webhook outbox).

The match services call `record(kind, match)` inside the transaction of each
status change. Then:

* every **adapter** runs at once, inside that transaction, so that whatever it
  writes (an outbox row) commits, or not, with the change. Adapters are import
  paths in `ARENA_EVENT_ADAPTERS`; by default, those of the optional apps the
  project installed: `arena.notifications` (the players' WebSocket channel) and
  `arena.webhooks` (the signed POST). Neither is imported unless installed.
* the **signal** of the event is sent once the transaction has committed
  (`transaction.on_commit`), so a receiver never sees a change that could still
  be rolled back. Receivers get `match` (the `Match`, players prefetched) and
  `event` (the same JSON-ready dict the webhook POSTs).

Signals fire in the process that made the change: the web process for
`match_ready` (and a failed launch), the match's game server for
`match_started`, `match_finished` and most `match_cancelled`, the supervisor for
a lost server's `match_failed`. Every one of them loads the project's settings
and apps, so receivers connected in an `AppConfig.ready()` run in all of them.

Recording never breaks the change it reports: adapter and receiver errors are
logged, never raised.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from django.apps import apps
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.module_loading import import_string

from arena.conf import settings
from arena.gameserver.contract import user_key
from arena.matches.models import Match
from arena.matches.serializers import match_representation
from arena.matches.states import MatchStatus
from arena.matches.tokens import game_token_issue

logger = logging.getLogger("arena.matches")

# Sent after commit with sender=Match and the keyword arguments `match` and `event`.
match_ready = Signal()
match_started = Signal()
match_finished = Signal()
match_failed = Signal()
match_cancelled = Signal()

READY, STARTED, FINISHED, FAILED, CANCELLED = "ready", "started", "finished", "failed", "cancelled"
SIGNALS = {
    READY: match_ready,
    STARTED: match_started,
    FINISHED: match_finished,
    FAILED: match_failed,
    CANCELLED: match_cancelled,
}

# The adapters of Arena's optional apps, used when the app is installed.
OPTIONAL_ADAPTERS = {
    "arena.notifications": "arena.notifications.publish.on_match_event",
    "arena.webhooks": "arena.webhooks.outbox.on_match_event",
}


def event_payload(kind: str, match: Match) -> dict[str, Any]:
    """The event as JSON: the match as the API shows it, each player's user id
    and, in `ready`, each player's game token (the host hands it to its player).

    `id` is unique per event: the webhook's idempotency key."""
    body = match_representation(match)
    for player, seat in zip(body["players"], match.players.all()):
        player["user_id"] = user_key(seat.user_id)
        if kind == READY:
            player["token"] = game_token_issue(user_id=seat.user_id, match_id=match.id)
    return {
        "id": str(uuid.uuid4()),
        "type": f"match.{kind}",
        "created_at": timezone.now().isoformat().replace("+00:00", "Z"),
        "match": body,
    }


def adapters() -> list[Callable[[str, Match, dict[str, Any]], None]]:
    """Callables `adapter(kind, match, event)` run inside the change's transaction.

    An adapter with `needs_event = False` is given None for `event` when nothing
    else needs it."""
    configured = settings.ARENA_EVENT_ADAPTERS
    if configured is None:
        configured = [
            path for app, path in OPTIONAL_ADAPTERS.items()
            if apps.is_installed(app) and (app != "arena.webhooks" or settings.ARENA_WEBHOOK_URL)
        ]
    return [import_string(path) if isinstance(path, str) else path for path in configured]


def record(kind: str, match: Match) -> None:
    """Report one event of `match` (call inside the transaction of its change)."""
    if kind == READY and (match.status not in (MatchStatus.WAITING, MatchStatus.PLAYING) or not match.port):
        # It ended before its launcher saw the port; that end is reported itself.
        logger.debug("no ready event for match %s (%s)", match.id, match.status)
        return
    chosen = adapters()
    listened = SIGNALS[kind].has_listeners(Match)
    event = None
    # The payload (with its game tokens) is built only when someone reads it: the
    # launch path of a site with neither receivers nor webhook stays as it was.
    if listened or any(getattr(adapter, "needs_event", True) for adapter in chosen):
        try:
            event = event_payload(kind, match)
        except Exception:  # noqa: BLE001 - never break the service call
            logger.warning("could not build the %s event of match %s", kind, match.id, exc_info=True)
            return
    for adapter in chosen:
        try:
            adapter(kind, match, event)
        except Exception:  # noqa: BLE001
            logger.warning("event adapter %s failed for match %s", adapter, match.id, exc_info=True)
    if listened:
        transaction.on_commit(lambda: _send(kind, match, event))


def _send(kind: str, match: Match, event: dict[str, Any]) -> None:
    for receiver, result in SIGNALS[kind].send_robust(sender=Match, match=match, event=event):
        if isinstance(result, Exception):
            logger.warning(
                "receiver %s of match_%s failed for match %s: %r", receiver, kind, match.id, result,
                exc_info=(type(result), result, result.__traceback__),
            )
