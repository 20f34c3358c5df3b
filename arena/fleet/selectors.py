"""Reads of the host registry, with what is derived from the matches."""
from __future__ import annotations

from datetime import datetime, timedelta

from arena.conf import settings
from django.db.models import Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from arena.fleet.models import GameHost
from arena.matches.models import Match
from arena.matches.states import LIVE_STATUSES


def alive_since(now: datetime | None = None) -> datetime:
    """Hosts whose last heartbeat is after this are alive."""
    return (now or timezone.now()) - timedelta(seconds=settings.GAME_HOST_TIMEOUT)


def live_match_count(host_name: str) -> int:
    return Match.objects.filter(host_name=host_name, status__in=LIVE_STATUSES).count()


def hosts_with_load() -> QuerySet[GameHost]:
    """Every host, annotated with `live` (its live matches) and `free` (capacity left)."""
    live = (
        Match.objects.filter(host_name=OuterRef("name"), status__in=LIVE_STATUSES)
        .order_by()
        .values("host_name")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return GameHost.objects.annotate(
        live=Coalesce(Subquery(live, output_field=IntegerField()), Value(0)),
    ).annotate(free=F("capacity") - F("live"))


def host_get(name: str) -> GameHost | None:
    return hosts_with_load().filter(name=name).first()


def host_is_alive(host: GameHost, now: datetime | None = None) -> bool:
    return host.last_heartbeat > alive_since(now)


def lost_hosts_with_live_matches(now: datetime | None = None) -> list[str]:
    """Names of hosts whose heartbeat is too old while matches still count on them."""
    live_hosts = Match.objects.filter(status__in=LIVE_STATUSES).exclude(host_name="").values("host_name")
    return list(
        GameHost.objects.filter(last_heartbeat__lte=alive_since(now), name__in=live_hosts).values_list("name", flat=True)
    )


def live_matches_of(host_name: str) -> list[Match]:
    return list(Match.objects.filter(host_name=host_name, status__in=LIVE_STATUSES).order_by("created_at"))
