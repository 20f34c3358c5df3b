"""System checks for the notification settings (run by manage.py commands)."""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from django.conf import settings
from django.core import checks

from arena.notifications.backends import BACKENDS, layer_is_shared, setting

REDIS_LAYER = "channels_redis.core.RedisChannelLayer"


def redis_socket_timeout_too_short(alias: str = "default") -> list[str]:
    """Redis hosts of the channel layer whose read timeout would cut blocking receives.

    channels_redis waits for messages with a blocking BZPOPMIN of
    `brpop_timeout` (5 s). redis-py 8 reads with a 5 s `socket_timeout` by default
    (it had none before), so an idle socket's receive fails with "Timeout reading"
    and tears down the consumer about every 5 s. The hosts need a longer
    `socket_timeout` (or None).
    """
    config = getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {})
    if config.get("BACKEND") != REDIS_LAYER:
        return []
    from channels_redis.core import RedisChannelLayer

    try:
        from redis._defaults import DEFAULT_SOCKET_TIMEOUT as default
    except ImportError:  # redis-py < 8: no read timeout by default
        default = None
    wait = RedisChannelLayer.brpop_timeout
    too_short = []
    for entry in config.get("CONFIG", {}).get("hosts", []) or []:
        timeout, address = default, ""
        if isinstance(entry, dict):
            timeout = entry.get("socket_timeout", default)
            address = entry.get("address", "")
        elif isinstance(entry, str):
            address = entry
        query = parse_qs(urlparse(address).query)
        if "socket_timeout" in query:  # redis-py lets the URL's options win
            timeout = float(query["socket_timeout"][0])
        if timeout is not None and float(timeout) <= wait:
            if address:
                label = urlparse(address).hostname  # never the URL itself: it may hold a password
            elif isinstance(entry, dict):
                label = entry.get("host")
            else:
                label = entry[0] if isinstance(entry, (tuple, list)) and entry else None
            too_short.append(str(label or "a Redis host"))
    return too_short


@checks.register()
def notification_backend(app_configs=None, **kwargs):
    name = str(setting("NOTIFICATIONS_BACKEND")).strip().lower()
    if name not in BACKENDS:
        return [
            checks.Error(
                f"NOTIFICATIONS_BACKEND is {name!r}.",
                hint=f"Use one of {', '.join(BACKENDS)}.",
                id="notifications.E001",
            )
        ]
    if name == "outbox" and layer_is_shared():
        return [
            checks.Error(
                "NOTIFICATIONS_BACKEND 'outbox' with a shared channel layer delivers every event once per ASGI process.",
                hint="Use 'layer' (or 'auto') with Redis; the outbox is for the in-memory layer.",
                id="notifications.E002",
            )
        ]
    if too_short := redis_socket_timeout_too_short():
        return [
            checks.Error(
                f"The Redis channel layer's socket_timeout is too short for {', '.join(too_short)}: "
                "every notification socket idle for 5 s would be torn down (redis-py >= 8 defaults to 5 s).",
                hint='Give each host a longer read timeout, e.g. {"address": REDIS_URL, "socket_timeout": 10}.',
                id="notifications.E003",
            )
        ]
    if name == "layer" and not layer_is_shared():
        return [
            checks.Warning(
                "NOTIFICATIONS_BACKEND 'layer' with the in-memory channel layer: events from game servers "
                "and other processes never reach the sockets.",
                hint="Use 'auto' or 'outbox'.",
                id="notifications.W001",
            )
        ]
    return []
