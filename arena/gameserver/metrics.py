"""A game-server process's figures: counted in plain ints, flushed every few seconds.

Hundreds of matches of one process step 60 times a second; a prometheus_client
call costs a lock, a pid check and a write to a memory-mapped file. So nothing on
the per-match per-tick path touches prometheus_client: the room adds to ints of
its own (`RoomStats`, `Broadcaster.bytes`), the ticker to its `LoopStats`, its
step count and the two lists of wake-up durations `BatchedHistogram` keeps (two
appends per wake-up of the process), and `ProcessMetrics` turns what changed
into a dozen metric writes every few seconds (`ARENA_METRICS_FLUSH_SECONDS`),
and once more when a match ends. Prometheus scrapes every 15-60 s: a flush every
second bought nothing, and cost about 1 % of a one-match process's CPU
(`docs/benchmarks.md`, "Replays and metrics together", which measures it all).

Each process writes its own files of the machine's metrics directory
(`arena.metrics.multiprocess`); a scrape sums them. One JSON line per match at its
end (`match_summary`) gives what the metrics cannot, per match.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from bisect import bisect_left
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from arena.gameserver.host import Host
    from arena.gameserver.room import Outcome, Room

logger = logging.getLogger("arena.gameserver")
summary_logger = logging.getLogger("arena.gameserver.summary")

FIRST_FLUSH = 1.0  # s after a process starts serving: a new host's figures show at once
FLUSH_SECONDS = 5.0  # s between two flushes: the default of ARENA_METRICS_FLUSH_SECONDS


@dataclass
class RoomStats:
    """One match's counts, cumulative (the room adds; `ProcessMetrics` reads)."""

    started: float = field(default_factory=time.monotonic)
    inputs: int = 0
    inputs_dropped: int = 0
    max_players: int = 0
    max_spectators: int = 0

    def seen(self, players: int, spectators: int) -> None:
        if players > self.max_players:
            self.max_players = players
        if spectators > self.max_spectators:
            self.max_spectators = spectators


class BatchedHistogram:
    """Observations of an unlabelled prometheus Histogram, kept in a list until `flush`.

    An observation is one append to ``values`` (the ticker appends to it directly,
    once per wake-up); `flush` sorts them into buckets and adds the counts to the
    histogram's bucket values at once instead of one locked write per observation
    (prometheus_client keeps per-bucket, not cumulative, counts: `Histogram.observe`)."""

    def __init__(self, histogram: Any) -> None:
        self.histogram = histogram
        self.bounds = list(histogram._upper_bounds)  # ends with +Inf
        self.values: list[float] = []

    def flush(self) -> None:
        values = self.values
        if not values:
            return
        bounds = self.bounds
        counts = [0] * len(bounds)
        for value in values:
            counts[bisect_left(bounds, value)] += 1
        for bucket, count in zip(self.histogram._buckets, counts):
            if count:
                bucket.inc(count)
        self.histogram._sum.inc(sum(values))
        values.clear()


class ProcessMetrics:
    """The figures of one game-server process (`Host`), flushed a second after it
    starts serving, then every ``ARENA_METRICS_FLUSH_SECONDS`` while it serves a
    match, when a match leaves it, and when it closes."""

    def __init__(self, host: Host, interval: float = FLUSH_SECONDS) -> None:
        from arena.metrics import definitions

        self.interval = interval  # ARENA_METRICS_FLUSH_SECONDS
        self.m = definitions
        self.host = host
        self.tick = BatchedHistogram(definitions.tick_seconds)
        self.send = BatchedHistogram(definitions.broadcast_seconds)
        self.counted: dict[str, tuple[int, int, int]] = {}  # match id -> (inputs, dropped, bytes) flushed
        self.loop = (0, 0, 0)  # the ticker's (match steps, late batches, dropped steps) flushed
        self._task: asyncio.Task | None = None
        host.ticker.timings = (self.tick.values, self.send.values)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        wait = FIRST_FLUSH
        try:
            while self.host.matches:
                await asyncio.sleep(wait)
                self.flush()
                wait = self.interval
        finally:
            self._task = None

    def flush(self) -> None:
        m, players, spectators = self.m, 0, 0
        for hosted in self.host.matches.values():
            room = hosted.room
            self._count(room)
            players += len(room.player_sid)
            spectators += room.spectator_count()
        m.gameserver_matches.set(len(self.host.matches))
        m.gameserver_players.set(players)
        m.gameserver_spectators.set(spectators)
        ticker = self.host.ticker
        now = (ticker.match_steps, ticker.stats.late_batches, ticker.stats.dropped_steps)
        for metric, before, after in zip((m.ticks, m.late_ticks, m.dropped_ticks), self.loop, now):
            if after > before:
                metric.inc(after - before)
        self.loop = now
        self.tick.flush()
        self.send.flush()

    def _count(self, room: Room) -> None:
        stats = room.stats
        now = (stats.inputs, stats.inputs_dropped, room.broadcast.bytes)
        before = self.counted.get(room.info.id, (0, 0, 0))
        for metric, a, b in zip((self.m.inputs, self.m.inputs_dropped, self.m.sent_bytes), before, now):
            if b > a:
                metric.inc(b - a)
        self.counted[room.info.id] = now

    def ended(self, room: Room, status: str) -> None:
        """The match is over: count what it did since the last flush, and forget it."""
        self._count(room)
        self.counted.pop(room.info.id, None)
        self.m.matches_ended.labels(self.m.bounded(status, self.m.MATCH_END_STATUSES)).inc()

    def released(self) -> None:
        """A match has left the process (after `ended`): the gauges and the loop's
        counts follow at once rather than at the next flush. A process left with no
        match flushes in `close`."""
        if self.host.matches:
            self.flush()

    def close(self) -> None:
        """The process is done serving: its last figures, its gauges at zero."""
        if self._task is not None:
            self._task.cancel()
        self.flush()


def match_summary(room: Room, outcome: Outcome | None) -> dict[str, Any]:
    """What one match did, for its end-of-match log line."""
    stats = room.stats
    return {
        "event": "match_end",
        "match": room.info.id,
        "status": outcome.status if outcome else "aborted",
        "reason": outcome.reason if outcome else "aborted",
        "winner": outcome.winner if outcome else None,
        "score": outcome.score if outcome else {},
        "duration_seconds": round(time.monotonic() - stats.started, 3),
        "play_seconds": round(room.play_time, 3),
        "ticks": room.loop_stats.steps,
        "late_ticks": room.loop_stats.late_batches,
        "dropped_ticks": room.loop_stats.dropped_steps,
        "max_players": stats.max_players,
        "max_spectators": stats.max_spectators,
        "inputs": stats.inputs,
        "inputs_dropped": stats.inputs_dropped,
        "bytes_sent": room.broadcast.bytes,
    }


def log_summary(room: Room, outcome: Outcome | None) -> None:
    summary_logger.info("%s", json.dumps(match_summary(room, outcome), separators=(", ", ": ")))
