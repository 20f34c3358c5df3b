"""The address a request comes from, as far as this site can trust it.

REMOTE_ADDR is the peer of the TCP connection: it cannot be forged, but behind a
reverse proxy it is the proxy's address. Only a header named by the
TRUSTED_PROXY_HEADER setting (a `request.META` key such as ``HTTP_X_REAL_IP``,
off by default) replaces it, and only when the proxy overwrites that header on
every request: a header a client can send (any X-Forwarded-For the proxy merely
passes on) would let each request pick a new address, and with it a new
throttling budget.
"""
from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address: the trusted header's, else REMOTE_ADDR.

    A list (``HTTP_X_FORWARDED_FOR``) counts by its last entry, the one the
    trusted proxy appended. A missing or unparsable value falls back to
    REMOTE_ADDR (a request that did not come through the proxy).
    """
    header = getattr(settings, "TRUSTED_PROXY_HEADER", "")
    if header:
        value = str(request.META.get(header, "")).split(",")[-1].strip()
        if _is_ip(value):
            return value
    return str(request.META.get("REMOTE_ADDR") or "")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True
