"""Figures read from the database at scrape time, for the web processes' /metrics."""
from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily


class LiveMatchesCollector:
    """`arena_matches_live{status}`: one grouped count over the live matches (an
    indexed column). Every web process reports the same figure: aggregate with
    `max`, not `sum`."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from arena.matches import selectors
        from arena.matches.states import LIVE_STATUSES

        family = GaugeMetricFamily("arena_matches_live", "Live matches by status (from the database).", labels=["status"])
        counts = selectors.live_match_counts()
        for status in LIVE_STATUSES:
            family.add_metric([str(status)], counts.get(status, 0))
        yield family
