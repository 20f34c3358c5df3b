"""Writes to the host registry: heartbeats, draining, suspicion, placement.

Placement (`host_reserve`) reserves a slot atomically: in one transaction it
chooses the host with the most free capacity and locks its row (SELECT ... FOR
UPDATE), then assigns the match to it if the host's live matches, counted again
in that conditional UPDATE (`matches.services.match_assign_host`), leave a slot
free. Two launches racing for the last slot of a host queue on its row; the
second sees the first's match and moves on to the next host. Four round trips
(BEGIN, the choice, the assignment, COMMIT) on a launch's path.
"""
from __future__ import annotations

import functools
import logging
from datetime import timedelta

from arena.conf import settings
from django.db import connection, transaction
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


def host_reserve(match_id: str, *, exclude: set[str], previous: str = "") -> str | None:
    """Choose the live host with the most free capacity and assign the match to it.

    Returns the host's name, or None when no host (outside `exclude`) has room.
    `previous` is the host the match was assigned to before (a failed-over
    launch), or "" the first time.
    """
    tried = set(exclude)
    while True:
        with transaction.atomic():
            chosen = _lock_best_host(tried)
            if chosen is None:
                return None
            name, capacity = chosen
            if match_services.match_assign_host(match_id, name, capacity=capacity, previous=previous):
                return name
        # Not assigned: the host filled up since it was chosen, or the match left `launching`.
        if not match_selectors.match_is_launching(match_id, previous):
            raise NotLaunching(f"match {match_id} is no longer launching")
        tried.add(name)


def _lock_best_host(exclude: set[str]) -> tuple[str, int] | None:
    """(name, capacity) of the live, non-draining, non-suspect host with the most
    free capacity, its row locked until the transaction ends; None if none has room.

    Its conditions are checked again on the row as it is once locked (a host
    drained meanwhile is not chosen); its free capacity is not (the count is of
    other rows), which is why the assigning UPDATE counts again.
    """
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    excluded = sorted(exclude)
    sql, live = _best_host_sql(connection.vendor, len(excluded))
    params = [
        adapt(selectors.alive_since(now)), False, adapt(now), *excluded,
        *live, *live,  # the free capacity: in the condition, then in the order
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return (row[0], int(row[1])) if row else None


@functools.cache
def _best_host_sql(vendor: str, excluded: int) -> tuple[str, tuple[str, ...]]:
    """Plain SQL, not a queryset: placement is on every fleet launch's path, and
    compiling its querysets cost several milliseconds of Python per launch
    (docs/benchmarks.md, "Fleet")."""
    q = connection.ops.quote_name
    live_there, params = match_selectors.live_on_host_sql(f"h.{q('name')}")
    free = f"h.{q('capacity')} - {live_there}"
    not_excluded = f" AND h.{q('name')} NOT IN ({', '.join(['%s'] * excluded)})" if excluded else ""
    lock = " FOR UPDATE OF h" if connection.features.has_select_for_update_of else ""
    return (
        f"SELECT h.{q('name')}, h.{q('capacity')} FROM {q(GameHost._meta.db_table)} h"
        f" WHERE h.{q('last_heartbeat')} > %s AND h.{q('draining')} = %s"
        f" AND (h.{q('suspect_until')} IS NULL OR h.{q('suspect_until')} <= %s){not_excluded}"
        f" AND {free} > 0"
        f" ORDER BY {free} DESC, h.{q('name')} LIMIT 1{lock}",
        params,
    )
