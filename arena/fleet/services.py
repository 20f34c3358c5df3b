"""Writes to the host registry: heartbeats, draining, suspicion, placement.

Placement reserves a slot atomically: under the chosen host's row lock
(SELECT ... FOR UPDATE) it assigns the match to the host if the host's live
matches, counted in that same conditional UPDATE
(`services.match_assign_host`), leave a slot free, before the lock is released. Two launches racing for the last slot of a host
queue on its row; the second sees the first's match and moves on.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from arena.conf import settings
from django.db import transaction
from django.utils import timezone

from arena.fleet import selectors
from arena.fleet.models import GameHost
from arena.matches import selectors as match_selectors
from arena.matches import services as match_services

logger = logging.getLogger("arena.fleet")


class NotLaunching(Exception):
    """The match left `launching` (e.g. cancelled) while a host was being chosen."""


def host_heartbeat(*, name: str, address: str, min_port: int, max_port: int, capacity: int, version: str,
                   started_at=None) -> GameHost:
    """The agent is alive: create or refresh its row (a couple of seconds apart)."""
    fields = {"address": address, "min_port": min_port, "max_port": max_port, "capacity": capacity,
              "version": version, "last_heartbeat": timezone.now()}
    if started_at is not None:
        fields["started_at"] = started_at
    host, _ = GameHost.objects.update_or_create(name=name, defaults=fields)
    return host


def host_register(*, name: str, **fields) -> GameHost:
    """An agent starts: its row as `host_heartbeat`, accepting matches again (not
    draining, not suspect): starting an agent is the operator saying it may serve."""
    host = host_heartbeat(name=name, started_at=timezone.now(), **fields)
    GameHost.objects.filter(pk=host.pk).update(draining=False, suspect_until=None)
    return host


def host_drain(name: str, draining: bool = True) -> bool:
    """Stop (or resume) placing new matches on a host; its running matches go on."""
    changed = GameHost.objects.filter(name=name).update(draining=draining)
    if changed:
        logger.info("host %s %s", name, "draining" if draining else "accepting matches again")
    return bool(changed)


def host_mark_suspect(name: str) -> None:
    """A launch sent to this host got no answer in time: skip it for a while."""
    until = timezone.now() + timedelta(seconds=settings.GAME_HOST_TIMEOUT)
    GameHost.objects.filter(name=name).update(suspect_until=until)
    logger.warning("host %s did not answer a launch in time: suspect until %s", name, until.isoformat())


def host_reserve(match_id: str, *, exclude: set[str], previous: str = "") -> GameHost | None:
    """Choose the live host with the most free capacity and assign the match to it.

    None when no host (outside `exclude`) has room. `previous` is the host the
    match was assigned to before (a failed-over launch), or "" the first time.
    """
    for candidate in selectors.placement_candidates(exclude):
        with transaction.atomic():
            host = GameHost.objects.select_for_update().filter(pk=candidate.pk).first()
            if host is None or host.draining:
                continue
            if match_services.match_assign_host(match_id, host.name, capacity=host.capacity, previous=previous):
                return host
        # Not assigned: the host filled up since it was listed, or the match left `launching`.
        if not match_selectors.match_is_launching(match_id, previous):
            raise NotLaunching(f"match {match_id} is no longer launching")
    return None
