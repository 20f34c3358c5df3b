"""The webhook signature: HMAC-SHA256 over `"<timestamp>.<body>"`.

Headers of every POST:

    X-Arena-Event-Id    the event's id (stable across retries: the idempotency key)
    X-Arena-Event       its type, e.g. match.ready
    X-Arena-Timestamp   Unix time of this attempt, in seconds
    X-Arena-Signature   sha256=<hex HMAC-SHA256 of f"{timestamp}.{body}" with ARENA_WEBHOOK_SECRET>

Signing the timestamp with the body lets a receiver refuse replays of an old
request (`verify(..., tolerance=300)`).
"""
from __future__ import annotations

import hashlib
import hmac
import time

PREFIX = "sha256="


def signature(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return PREFIX + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, header: str, *, tolerance: float = 300.0) -> bool:
    """True if `header` signs this body and timestamp, and the timestamp is recent."""
    try:
        if abs(time.time() - int(timestamp)) > tolerance:
            return False
    except (TypeError, ValueError):
        return False
    return hmac.compare_digest(signature(secret, timestamp, body), header or "")
