"""The address a request comes from, as far as this site can trust it.

REMOTE_ADDR is the peer of the TCP connection: it cannot be forged, but behind a
reverse proxy it is the proxy's address. Only a header named by the
TRUSTED_PROXY_HEADER setting (a `request.META` key such as ``HTTP_X_REAL_IP``,
off by default) replaces it, only on requests whose REMOTE_ADDR is one of
TRUSTED_PROXY_ADDRESSES (the proxy: loopback by default), and only when the proxy
overwrites that header on every request. A header a client can send (any
X-Forwarded-For the proxy merely passes on, or any header at all on a connection
that bypasses the proxy) would let each request pick a new address, and with it a
new throttling budget.
"""
from __future__ import annotations

import ipaddress

from arena.conf import settings
from django.http import HttpRequest


def client_address(request: HttpRequest) -> str:
    """The client's IP address: the trusted header's, else REMOTE_ADDR.

    A list (``HTTP_X_FORWARDED_FOR``) counts by its last entry, the one the
    trusted proxy appended. A missing or unparsable value falls back to
    REMOTE_ADDR (a request that did not come through the proxy).
    """
    peer = str(request.META.get("REMOTE_ADDR") or "")
    header = getattr(settings, "TRUSTED_PROXY_HEADER", "")
    if header and _is_trusted_proxy(peer):
        value = str(request.META.get(header, "")).split(",")[-1].strip()
        if _ip(value) is not None:
            return value
    return peer


def _is_trusted_proxy(peer: str) -> bool:
    return address_in(peer, getattr(settings, "TRUSTED_PROXY_ADDRESSES", []))


def address_in(address: str, networks: list[str]) -> bool:
    """True if `address` (an IP, brackets allowed; an IPv4-mapped IPv6 address
    counts as its IPv4 one) is in one of `networks` (CIDRs or single addresses;
    unparsable entries match nothing, so a typo never opens anything)."""
    ip = _ip(address.strip().strip("[]"))
    if ip is None:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for entry in networks:
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except (ValueError, TypeError):
            continue
    return False


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None
