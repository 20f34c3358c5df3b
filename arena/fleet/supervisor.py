"""Host loss, checked by `manage.py supervise` (settings.SUPERVISOR_CHECKS).

A host whose agent has not written its heartbeat for GAME_HOST_TIMEOUT is lost
(machine down, agent killed, partitioned): its live matches are failed with
reason `host_lost`, which frees their players and tells them (match_fail). Should
the host come back, its game servers find their match failed at their next
heartbeat, write nothing (their writes are guarded) and end their clients'
session with `game_over {reason: "host_lost"}`.
"""
from __future__ import annotations

import logging
from uuid import UUID

from arena.fleet import selectors
from arena.matches import services

logger = logging.getLogger("arena.supervisor")


def fail_lost_hosts() -> list[UUID]:
    failed = []
    for name in selectors.lost_hosts_with_live_matches():
        for match in selectors.live_matches_of(name):
            if services.match_fail(match.id, reason=f"host_lost: game host {name} stopped sending heartbeats"):
                logger.warning("match %s failed: its host %s is lost", match.id, name)
                failed.append(match.id)
    return failed
