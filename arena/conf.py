"""Arena's settings with their defaults, for any host project.

A project that installs Arena sets in its own settings.py only what it wants to
change: every Arena setting read through `arena.conf.settings` falls back to the
default below when the project does not define it. Reads go to
`django.conf.settings` each time, so `override_settings` and tests that patch
settings keep working. The demo site (`arena.settings`) fills the same names from
`GAME_*` environment variables.

Usage, where a module used to import Django's settings:

    from arena.conf import settings

Nothing is written to Django's settings object: a host sees its settings as it
wrote them.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from django.conf import settings as django_settings


def _var_dir() -> Path:
    """Where Arena keeps its files when the project does not say: `var/` beside
    the project (BASE_DIR, which `startproject` defines), else the working directory."""
    return Path(getattr(django_settings, "BASE_DIR", None) or Path.cwd()) / "var"


# name -> default value, or a callable computing it (for defaults that depend on
# another setting).
DEFAULTS: dict[str, Any] = {
    # Django's own convention (startproject defines it): the directory processes
    # Arena starts (game servers, zygote, supervisor) run in.
    "BASE_DIR": Path.cwd,
    # game servers
    "GAME_SERVER_MIN_PORT": 25000,
    "GAME_SERVER_MAX_PORT": 25999,
    "GAME_SERVER_HOST": "127.0.0.1",
    "GAME_SERVER_BIND": "127.0.0.1",
    "GAME_SERVER_LAUNCH_TIMEOUT": 10.0,
    "GAME_SERVER_LAUNCHER": "warm",
    "GAME_ZYGOTE_SPARES": 2,
    "GAME_LAUNCH_CONCURRENCY": 16,  # matches of one PUT /api/matches created and launched at once (threads)
    "GAME_BATCH_MAX_MATCHES": 100,  # matches one PUT /api/matches may create
    "GAME_MATCHES_PER_PROCESS": 1,
    "GAME_RULES": "arena.pong.game",
    "GAME_SERVER_RUN_DIR": lambda: _var_dir() / "run" / "gameserver",
    "GAME_SERVER_LOG_DIR": lambda: _var_dir() / "log" / "gameserver",
    "GAME_PLAYER_CONNECT_TIMEOUT": 60.0,
    "GAME_COUNTDOWN": 3.0,
    "GAME_TICK_RATE": 60,
    "GAME_SNAPSHOT_RATE": 30,
    "GAME_DIRECT_BROADCAST": True,
    "GAME_RECORD_REPLAYS": True,  # off only to measure what recording costs (bench.density)
    "ARENA_REPLAY_FRAMES_CACHE": 600,  # s a replay's re-simulated frames stay in the default cache
    "GAME_TOKEN_MAX_AGE": 1800,
    "GAME_RECONNECT_GRACE": 15.0,
    "GAME_MAX_SPECTATORS": 1000,
    "GAME_MAX_DURATION": 900.0,
    "GAME_HEARTBEAT_INTERVAL": 3.0,
    "GAME_HEARTBEAT_TIMEOUT": 15.0,
    "GAME_RESULT_RETRY_FOR": 30.0,
    "GAME_SPOOL_DIR": lambda: _var_dir() / "spool",
    "GAME_CORS_ORIGINS": ["http://127.0.0.1:8000", "http://localhost:8000"],
    "GAME_BOT_USERNAME": "bot",
    # notifications (arena.notifications, when installed)
    "NOTIFICATIONS_BACKEND": "auto",
    "NOTIFICATIONS_PUBLISH_TIMEOUT": 1.0,  # s, a producer's wait for the layer
    "NOTIFICATIONS_RELAY_INTERVAL": 0.25,  # s, outbox polling period
    "NOTIFICATIONS_OUTBOX_GRACE": 5.0,  # s, how long a relay looks back for late commits
    "NOTIFICATIONS_OUTBOX_RETENTION": 600.0,  # s, rows older than this are deleted
    "NOTIFICATIONS_REPLAY_RECENT": 60.0,  # s, an ended match is replayed this long on connect
    "NOTIFICATIONS_MAX_WATCHED": 20,  # matches one connection may watch
    # the host's push channel (arena.matches.events)
    "ARENA_EVENT_ADAPTERS": None,  # None: arena.notifications if installed, arena.webhooks if installed and a URL is set
    "ARENA_WEBHOOK_URL": "",
    "ARENA_WEBHOOK_SECRET": "",
    "ARENA_WEBHOOK_TIMEOUT": 5.0,  # s, one delivery attempt
    "ARENA_WEBHOOK_MAX_ATTEMPTS": 12,  # then the delivery is given up (and logged)
    "ARENA_WEBHOOK_RETENTION": 7 * 24 * 3600.0,  # s a delivered or given-up row is kept
    # sign-in and sign-up throttling (arena.security)
    "AUTH_THROTTLE_FAILURES": 10,
    "AUTH_THROTTLE_WINDOW": 60,
    "TRUSTED_PROXY_HEADER": "",
    "TRUSTED_PROXY_ADDRESSES": ["127.0.0.1", "::1"],
    # the API's authentication and permissions (arena.matches.api)
    "ARENA_API_AUTHENTICATION_CLASSES": None,  # None: REST_FRAMEWORK's DEFAULT_AUTHENTICATION_CLASSES
    "ARENA_API_PERMISSION_CLASSES": None,  # None: authenticated users
    "ARENA_CREATE_MATCH_PERMISSION_CLASSES": ["arena.matches.api.CanCreateMatch"],
    # control messages to a game server (arena.matches.control)
    "GAME_CONTROL_TIMEOUT": 1.0,  # s the sender waits for the game server's answer
    "GAME_CONTROL_TOKEN_MAX_AGE": 60,  # s a signed control message is valid
    # the fleet (arena.fleet, when installed)
    "CELERY_BROKER_URL": lambda: getattr(django_settings, "REDIS_URL", "") or "redis://127.0.0.1:6379/0",
    "CELERY_RESULT_BACKEND": lambda: _result_backend(),
    "GAME_HOST_NAME": "",  # set by `manage.py gamehost` for itself and its game servers
    "GAME_HOST_CAPACITY": lambda: 50 * (os.cpu_count() or 1),
    "GAME_HOST_TIMEOUT": 10.0,
    "GAME_HOST_HEARTBEAT_INTERVAL": 2.0,
    "GAME_HOST_ANSWER_TIMEOUT": 3.0,
    "GAME_HOST_LAUNCHER": "warm",
    # metrics (arena.metrics)
    "ARENA_METRICS": True,
    "ARENA_METRICS_DIR": lambda: _var_dir() / "run" / "metrics",
    "ARENA_METRICS_ALLOWED": ["127.0.0.0/8", "::1"],
    "ARENA_METRICS_TOKEN": "",
    "ARENA_METRICS_FLUSH_SECONDS": 5.0,
    "GAME_HOST_METRICS_PORT": 9464,
    "GAME_HOST_METRICS_BIND": "127.0.0.1",
    # extra checks of `manage.py supervise` (import paths): the fleet's lost hosts when it is installed
    "SUPERVISOR_CHECKS": lambda: (
        ["arena.fleet.supervisor.fail_lost_hosts"] if "arena.fleet" in django_settings.INSTALLED_APPS else []
    ),
}


def _result_backend() -> str:
    broker = settings.CELERY_BROKER_URL
    return broker if broker.startswith(("redis", "rediss")) else "rpc://"


class ArenaSettings:
    """Django's settings, with Arena's defaults for the names Arena owns."""

    def __getattr__(self, name: str) -> Any:
        try:
            return getattr(django_settings, name)
        except AttributeError:
            if name not in DEFAULTS:
                raise
        default = DEFAULTS[name]
        return default() if callable(default) else default


settings = ArenaSettings()
