"""Who may read the metrics: never the public, by default only this machine.

A reader is let in by its address (``ARENA_METRICS_ALLOWED``: addresses or
networks, loopback by default) or by a bearer token (``ARENA_METRICS_TOKEN``,
empty: none). On the web side the address is the client's as
`arena.security.client_address` finds it (the trusted proxy's header, if any).
Behind a reverse proxy on the same machine that is *not* declared, every
request would come from loopback: so a request carrying a forwarding header with
an address outside the allowed networks is refused too, whoever set that header.
"""
from __future__ import annotations

import hmac

from arena.conf import settings
from arena.security.client_address import address_in, client_address

FORWARDING_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_REAL_IP", "HTTP_FORWARDED")


def token_ok(authorization: str) -> bool:
    token = settings.ARENA_METRICS_TOKEN
    if not token or not authorization.startswith("Bearer "):
        return False
    return hmac.compare_digest(authorization.removeprefix("Bearer ").strip().encode(), token.encode())


def address_ok(address: str) -> bool:
    return address_in(address, settings.ARENA_METRICS_ALLOWED)


def forwarded_addresses(meta: dict) -> list[str]:
    """Every address a forwarding header names (``Forwarded: for=...`` included)."""
    found = []
    for header in FORWARDING_HEADERS:
        value = str(meta.get(header) or "")
        for part in value.replace(";", ",").split(","):
            part = part.strip()
            if not part:
                continue
            if "=" in part:
                key, _, part = part.partition("=")
                if key.strip().lower() != "for":
                    continue
                part = part.strip().strip('"')
                if part.startswith("[") and "]" in part:
                    part = part[1:part.index("]")]
                elif part.count(":") == 1:
                    part = part.split(":")[0]  # host:port
            found.append(part)
    return found


def request_allowed(request) -> bool:
    """May this Django request read /metrics?"""
    if token_ok(str(request.META.get("HTTP_AUTHORIZATION", ""))):
        return True
    addresses = [client_address(request), *forwarded_addresses(request.META)]
    return all(address_ok(address) for address in addresses)
