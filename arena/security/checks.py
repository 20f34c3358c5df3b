"""System checks for the security settings (run by every management command)."""
from __future__ import annotations

import ipaddress
import re

from arena.conf import settings
from django.core import checks

from arena.security.secret_key import current_problems

META_HEADER_RE = re.compile(r"^HTTP_[A-Z0-9_]+$")


@checks.register(checks.Tags.security)
def secret_key_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    return [checks.Error(p.message, hint=p.hint, id=p.id) for p in current_problems()]


@checks.register(checks.Tags.security)
def throttle_settings_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    found: list[checks.CheckMessage] = []
    for name in ("AUTH_THROTTLE_FAILURES", "AUTH_THROTTLE_WINDOW"):
        if getattr(settings, name) < 1:
            found.append(checks.Error(f"{name} is {getattr(settings, name)}.", hint="Use a whole number >= 1.",
                                      id="arena.E003"))
    for name in ("TRUSTED_PROXY_HEADER", "SECURE_PROXY_SSL_HEADER"):
        value = getattr(settings, name, None)
        header = value[0] if isinstance(value, (tuple, list)) and value else value
        if header and not META_HEADER_RE.match(str(header)):
            found.append(checks.Error(
                f"{name} is {header!r}, which no request carries: it names a request.META key.",
                hint="Write the header as Django sees it, e.g. HTTP_X_REAL_IP for X-Real-IP, "
                "HTTP_X_FORWARDED_PROTO for X-Forwarded-Proto.",
                id="arena.E004",
            ))
    for entry in settings.TRUSTED_PROXY_ADDRESSES:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            found.append(checks.Error(f"TRUSTED_PROXY_ADDRESSES has {entry!r}, which is no address or network.",
                                      hint="Use addresses or networks, e.g. 127.0.0.1,10.0.0.0/8.", id="arena.E005"))
    return found


@checks.register(checks.Tags.security, deploy=True)
def throttle_cache_check(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    backend = settings.CACHES.get("default", {}).get("BACKEND", "")
    if backend.endswith("LocMemCache"):
        return [checks.Warning(
            "Sign-in throttling counts in each process's own memory: with several web processes "
            "(gunicorn workers, Daphne instances) each allows AUTH_THROTTLE_FAILURES on its own.",
            hint="Set REDIS_URL, so every web process counts in the same Redis.",
            id="arena.W001",
        )]
    return []
