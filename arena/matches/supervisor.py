"""Finding matches whose game server is gone.

A game server writes `heartbeat_at` every few seconds while it runs. A live match
whose heartbeat is older than GAME_HEARTBEAT_TIMEOUT lost its server (killed,
crashed, host rebooted): it is failed so that its players are free again. A
match stuck in `launching` past the launch timeout (its launcher died half-way) is
failed the same way.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from uuid import UUID

from arena.conf import settings
from django.apps import apps
from django.db.models import Q
from django.utils import timezone
from django.utils.module_loading import import_string

from arena.matches import services
from arena.matches.models import Match
from arena.matches.spool import spool_import
from arena.matches.states import MatchStatus
from arena.metrics import definitions as metrics

logger = logging.getLogger("arena.supervisor")


def find_lost_matches(now=None) -> list[tuple[UUID, str]]:
    now = now or timezone.now()
    heartbeat_limit = now - timedelta(seconds=settings.GAME_HEARTBEAT_TIMEOUT)
    launch_limit = now - timedelta(seconds=settings.GAME_SERVER_LAUNCH_TIMEOUT + settings.GAME_HEARTBEAT_TIMEOUT)
    lost = Match.objects.filter(
        Q(status__in=[MatchStatus.WAITING, MatchStatus.PLAYING])
        & (Q(heartbeat_at__lt=heartbeat_limit) | Q(heartbeat_at=None, created_at__lt=heartbeat_limit))
        | Q(status=MatchStatus.LAUNCHING, created_at__lt=launch_limit)
    ).values_list("id", "status", "heartbeat_at")
    found = []
    for match_id, status, heartbeat in lost:
        if status == MatchStatus.LAUNCHING:
            found.append((match_id, "server_lost: launch never completed"))
        else:
            age = (now - heartbeat).total_seconds() if heartbeat else None
            found.append((match_id, f"server_lost: no heartbeat for {age:.0f} s" if age else "server_lost"))
    return found


def supervise_once() -> list[UUID]:
    """Import spooled results, then fail every match whose server is gone.

    Spooled results first: a server that spooled its result has stopped sending
    heartbeats, and its match must end with that result, not as lost.
    """
    imported = spool_import()
    if imported:
        metrics.spooled_results_imported.inc(len(imported))
    failed = []
    # Checks of other rooms (settings.SUPERVISOR_CHECKS, e.g. the fleet's lost
    # hosts) before the per-match heartbeats, so a lost host's matches carry
    # its reason. By import path: matches imports nothing above it.
    for path in settings.SUPERVISOR_CHECKS:
        failed.extend(import_string(path)())
    for match_id, reason in find_lost_matches():
        if services.match_fail(match_id, reason=reason):
            logger.warning("match %s failed: %s", match_id, reason)
            failed.append(match_id)
    if apps.is_installed("arena.webhooks"):  # retries, and rows left by processes that exited
        from arena.webhooks.delivery import deliver_due_in_background, prune

        deliver_due_in_background()
        prune()
    return failed
