"""System checks for the notification settings (run by manage.py commands)."""
from __future__ import annotations

from django.core import checks

from arena.notifications.backends import BACKENDS, layer_is_shared, setting


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
