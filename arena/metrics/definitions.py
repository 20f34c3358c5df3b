"""Every metric Arena exports, in one place.

Prometheus conventions: `arena_` prefix, `_total` counters, base units
(`_seconds`, `_bytes`), and labels with a small fixed set of values (never a match
id: a series per match would grow without bound). Gauges say how the figures of
several processes combine (`livesum`: the sum over the live processes).

Importing this module sets up the machine's metrics directory first
(`multiprocess.setup`), since prometheus_client decides at import whether it
writes to it. Hot paths never call these objects per match per tick: the game
server adds up plain ints and flushes them every few seconds
(`arena.gameserver.metrics`, `ARENA_METRICS_FLUSH_SECONDS`).
"""
from __future__ import annotations

from arena.metrics import multiprocess

multiprocess.setup()

from prometheus_client import Counter, Gauge, Histogram  # noqa: E402  (after the directory is set)

# --- launches (web processes, and a fleet host's agent for its local launches) -------
LAUNCH_OUTCOMES = frozenset({
    "ok", "no_free_port", "launch_failed", "launch_timeout", "no_capacity", "broker_unavailable",
    "insecure_secret_key", "host_unavailable",
})
LAUNCH_STRATEGIES = frozenset({"subprocess", "warm", "fleet"})

launches = Counter(
    "arena_launches", "Game-server launches, by strategy and outcome (ok, or the launch error's code).",
    ["strategy", "outcome"],
)
launch_seconds = Histogram(
    "arena_launch_seconds", "From the match request to its game server's port (successful launches).",
    ["strategy"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)

# --- notification channel (web processes) -----------------------------------------
notification_sockets = Gauge(
    "arena_notification_sockets", "Notification WebSockets open.", multiprocess_mode="livesum",
)

# --- match life cycle (any process that ends a match: web, game server, supervise) --
FAILURE_REASONS = frozenset({
    "server_lost", "host_lost", "game_error", "launch_failed", "launch_timeout", "no_free_port",
    "no_capacity", "broker_unavailable", "insecure_secret_key", "host_unavailable",
})
matches_failed = Counter("arena_matches_failed", "Matches failed, by reason.", ["reason"])
spooled_results_imported = Counter(
    "arena_spooled_results_imported", "Results spooled by game servers during a database outage, imported since.",
)

# --- game servers (summed over the machine's game-server processes) ------------------
TICK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

gameserver_matches = Gauge(
    "arena_gameserver_matches", "Matches the game servers serve now.", multiprocess_mode="livesum",
)
gameserver_players = Gauge(
    "arena_gameserver_players", "Players connected to a game server.", multiprocess_mode="livesum",
)
gameserver_spectators = Gauge(
    "arena_gameserver_spectators", "Spectators connected to a game server.", multiprocess_mode="livesum",
)
tick_seconds = Histogram(
    "arena_gameserver_tick_seconds",
    "Work of one timer wake-up of a game-server process: the steps of all its playing matches and their sends.",
    buckets=TICK_BUCKETS,
)
broadcast_seconds = Histogram(
    "arena_gameserver_broadcast_seconds",
    "Send part of one timer wake-up: events and snapshots fanned out to every client of every playing match.",
    buckets=TICK_BUCKETS,
)
ticks = Counter("arena_gameserver_ticks", "Simulation steps, summed over the playing matches.")
late_ticks = Counter(
    "arena_gameserver_late_ticks", "Timer wake-ups that ran late and had to catch up with extra steps.",
)
dropped_ticks = Counter(
    "arena_gameserver_dropped_ticks", "Timer steps dropped because a process fell too far behind.",
)
inputs = Counter("arena_gameserver_inputs", "Player inputs received.")
inputs_dropped = Counter("arena_gameserver_inputs_dropped", "Player inputs dropped by the rate limit.")
sent_bytes = Counter("arena_gameserver_sent_bytes", "Bytes of broadcast events sent to clients.")
matches_ended = Counter(
    "arena_gameserver_matches_ended", "Matches ended by their game server, by status.", ["status"],
)
MATCH_END_STATUSES = frozenset({"finished", "cancelled", "failed", "refused", "aborted"})


def bounded(value: str, allowed: frozenset[str]) -> str:
    """`value` if it is one of `allowed`, else ``other``: labels stay a small set."""
    return value if value in allowed else "other"


def record_launch(strategy: str, outcome: str, seconds: float | None) -> None:
    strategy = bounded(strategy, LAUNCH_STRATEGIES)
    launches.labels(strategy, bounded(outcome, LAUNCH_OUTCOMES)).inc()
    if outcome == "ok" and seconds is not None:
        launch_seconds.labels(strategy).observe(seconds)


def record_failure(reason: str) -> None:
    """A match failed with `reason` (free text: its code is what comes before the colon)."""
    matches_failed.labels(bounded(reason.split(":", 1)[0].strip(), FAILURE_REASONS)).inc()
