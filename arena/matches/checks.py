"""System checks for Arena's settings (run by every manage.py command and at
server start), so a wrong value fails with a clear message before the first match
instead of as a failed launch. The notification settings have theirs in
`arena.notifications.checks`."""
from __future__ import annotations

from urllib.parse import urlparse

from django.apps import apps
from django.core import checks
from django.utils.module_loading import import_string

from arena.conf import settings

CLASS_LIST_SETTINGS = (
    "ARENA_API_AUTHENTICATION_CLASSES",
    "ARENA_API_PERMISSION_CLASSES",
    "ARENA_CREATE_MATCH_PERMISSION_CLASSES",
    "ARENA_EVENT_ADAPTERS",
)


def _port_range() -> list[checks.CheckMessage]:
    low, high = settings.GAME_SERVER_MIN_PORT, settings.GAME_SERVER_MAX_PORT
    if not all(isinstance(p, int) and not isinstance(p, bool) for p in (low, high)):
        return [checks.Error(
            f"GAME_SERVER_MIN_PORT / GAME_SERVER_MAX_PORT must be integers (are {low!r} / {high!r}).",
            id="matches.E001",
        )]
    if not 1 <= low <= high <= 65535:
        return [checks.Error(
            f"The game-server port range {low}-{high} cannot work.",
            hint="Need 1 <= GAME_SERVER_MIN_PORT <= GAME_SERVER_MAX_PORT <= 65535.",
            id="matches.E001",
        )]
    if low < 1024:
        return [checks.Warning(
            f"The game-server port range {low}-{high} starts below 1024: game servers "
            "need privileges to bind there.",
            id="matches.W001",
        )]
    return []


def _launcher() -> list[checks.CheckMessage]:
    from arena.matches.launcher import STRATEGIES

    name = settings.GAME_SERVER_LAUNCHER
    if name not in STRATEGIES:
        return [checks.Error(
            f"GAME_SERVER_LAUNCHER is {name!r}, which is not a launch strategy.",
            hint=f"Use one of {', '.join(sorted(STRATEGIES))}.",
            id="matches.E002",
        )]
    return []


def _durations() -> list[checks.CheckMessage]:
    errors = []
    for name in ("GAME_SERVER_LAUNCH_TIMEOUT", "GAME_HEARTBEAT_INTERVAL", "GAME_HEARTBEAT_TIMEOUT",
                 "GAME_TOKEN_MAX_AGE", "GAME_TICK_RATE", "GAME_SNAPSHOT_RATE", "GAME_MATCHES_PER_PROCESS",
                 "GAME_LAUNCH_CONCURRENCY", "GAME_BATCH_MAX_MATCHES"):
        value = getattr(settings, name)
        if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
            errors.append(checks.Error(f"{name} must be a positive number (is {value!r}).", id="matches.E003"))
    if not errors and settings.GAME_HEARTBEAT_TIMEOUT <= settings.GAME_HEARTBEAT_INTERVAL:
        errors.append(checks.Error(
            "GAME_HEARTBEAT_TIMEOUT is not longer than GAME_HEARTBEAT_INTERVAL: the supervisor "
            "would fail matches whose game server is alive.",
            hint="Keep the timeout several intervals long (defaults: 15 and 3 seconds).",
            id="matches.E003",
        ))
    return errors


def _classes() -> list[checks.CheckMessage]:
    errors = []
    for name in CLASS_LIST_SETTINGS:
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            errors.append(checks.Error(f"{name} must be a list of import paths.", id="matches.E004"))
            continue
        for path in value:
            if not isinstance(path, str):
                continue
            try:
                import_string(path)
            except ImportError as error:
                errors.append(checks.Error(f"{name}: cannot import {path!r} ({error}).", id="matches.E004"))
    return errors


def _webhook() -> list[checks.CheckMessage]:
    url = settings.ARENA_WEBHOOK_URL
    if not url:
        return []
    errors = []
    if urlparse(url).scheme not in ("http", "https") or not urlparse(url).hostname:
        errors.append(checks.Error(f"ARENA_WEBHOOK_URL {url!r} is not an http(s) URL.", id="matches.E005"))
    if not apps.is_installed("arena.webhooks"):
        errors.append(checks.Error(
            "ARENA_WEBHOOK_URL is set but arena.webhooks is not in INSTALLED_APPS: no event would be sent.",
            hint='Add "arena.webhooks" to INSTALLED_APPS and migrate.',
            id="matches.E006",
        ))
    if not settings.ARENA_WEBHOOK_SECRET:
        errors.append(checks.Error(
            "ARENA_WEBHOOK_URL is set without ARENA_WEBHOOK_SECRET: receivers could not tell Arena's "
            "requests from forged ones.",
            hint="Set ARENA_WEBHOOK_SECRET to a long random string shared with the receiver.",
            id="matches.E007",
        ))
    return errors


def _metrics() -> list[checks.CheckMessage]:
    """Who may read /metrics must be networks, or nobody could (or, worse, a typo
    would be skipped silently)."""
    import ipaddress

    errors = []
    allowed = settings.ARENA_METRICS_ALLOWED
    if isinstance(allowed, str) or not isinstance(allowed, (list, tuple)):
        return [checks.Error("ARENA_METRICS_ALLOWED must be a list of addresses or networks.", id="matches.E008")]
    for entry in allowed:
        try:
            ipaddress.ip_network(str(entry), strict=False)
        except ValueError:
            errors.append(checks.Error(
                f"ARENA_METRICS_ALLOWED: {entry!r} is not an address or network.",
                hint="e.g. 127.0.0.0/8, ::1, 10.0.0.5/32", id="matches.E008",
            ))
    port = settings.GAME_HOST_METRICS_PORT
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        errors.append(checks.Error(f"GAME_HOST_METRICS_PORT must be a port, or 0 for none (is {port!r}).",
                                   id="matches.E008"))
    return errors


@checks.register()
def arena_settings(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    return [*_port_range(), *_launcher(), *_durations(), *_classes(), *_webhook(), *_metrics()]
