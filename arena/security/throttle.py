"""Throttled sign-in and sign-up: the one place that counts password guesses.

Every password check (the API's `POST /api/auth/token`, the login page, the admin
login) and every sign-up goes through `attempt()`, which counts it twice in the
shared cache: once for the client's address, once for the account name. Over
AUTH_THROTTLE_FAILURES in an AUTH_THROTTLE_WINDOW, further attempts on that
address or that name are refused with `Throttled` *before* the password is
checked (so a script learns nothing from them) until the window ends.

* The per-address count stops one client spraying many names; the per-name count
  stops many clients (a botnet) guessing one account's password.
* A success is not counted against its address and resets its name's count
  (the person who knows the password is done with their typos). It does not reset
  the address's count: an attacker holding one valid account could otherwise
  wipe its own record between guesses. Successes are never delayed.
* A refused attempt counts for nothing, so it never extends a block.
* Only the same address or the same name is affected: failures on one name from
  one address never block another name from another address. Someone guessing a
  name can keep its owner from signing in for the rest of the window (at most
  one window after the guessing stops); sessions already signed in are untouched.
* IPv6 clients are counted per /64 network, the block a single subscriber is
  usually given (one host can use any address in it).
* Counts live in Django's default cache, shared by every web process when
  REDIS_URL is set (Redis), per process otherwise. If the cache fails, attempts
  are allowed (and logged): sign-in must not depend on it.

Windows are fixed (`time // window`): at most 2 x AUTH_THROTTLE_FAILURES
failures fit around a window boundary, and Retry-After is the time left in the
current one. The counters are atomic increments, so concurrent requests cannot
slip extra guesses past the limit.
"""
from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
import unicodedata
from collections.abc import Callable
from typing import TypeVar

from arena.conf import settings
from django.core.cache import caches
from django.http import HttpRequest

from arena.security.client_address import client_address

T = TypeVar("T")
logger = logging.getLogger("arena.security")
KEY_PREFIX = "arena-throttle"
clock: Callable[[], float] = time.time  # wall-clock time, the same in every process; tests set it


class Throttled(Exception):
    """Too many failed attempts: retry in `retry_after` seconds."""

    code = "throttled"
    status_code = 429

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        self.detail = (
            f"Too many failed attempts for this account or from this address. "
            f"Try again in {retry_after} second{'s' if retry_after != 1 else ''}."
        )
        super().__init__(self.detail)


def attempt(request: HttpRequest, name: str, check: Callable[[], T]) -> T:
    """Run `check` (a password check or a sign-up: truthy on success) as one
    counted attempt for `name` from this request's client; return its result.

    Raises Throttled, without calling `check`, when the address or the name is
    over the limit.
    """
    limit = settings.AUTH_THROTTLE_FAILURES
    window = settings.AUTH_THROTTLE_WINDOW
    now = clock()
    index = int(now // window)
    address_key = f"{KEY_PREFIX}:addr:{address_bucket(client_address(request))}:{index}"
    name_key = f"{KEY_PREFIX}:name:{name_bucket(name)}:{index}"
    cache = caches["default"]
    counted: list[str] = []
    try:
        for key in (address_key, name_key):
            counted.append(key)
            if _increment(cache, key, timeout=2 * window) > limit:
                _undo(cache, counted)
                # The address, never the name as typed (people type passwords into it).
                logger.warning("sign-in throttled (%s over the limit) for %s",
                               "address" if key == address_key else "name", client_address(request) or "?")
                raise Throttled(retry_after=max(1, math.ceil((index + 1) * window - now)))
    except Throttled:
        raise
    except Exception:  # the cache is down: never lock everyone out for that
        logger.exception("sign-in throttle unavailable; attempt allowed")
        return check()
    result = check()
    if result:
        try:
            _undo(cache, [address_key])
            cache.delete(name_key)
        except Exception:
            logger.exception("sign-in throttle unavailable; success not recorded")
    return result


def address_bucket(address: str) -> str:
    """What an address is counted as: itself, or its /64 network for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def name_bucket(name: str) -> str:
    """A fixed-length cache key part for an account name, however it is typed."""
    normal = unicodedata.normalize("NFKC", str(name)).strip().casefold()
    return hashlib.sha256(normal.encode("utf-8", "replace")).hexdigest()[:32]


def _increment(cache, key: str, timeout: int) -> int:
    cache.add(key, 0, timeout=timeout)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _undo(cache, keys: list[str]) -> None:
    for key in keys:
        try:
            cache.decr(key)
        except ValueError:  # gone already
            pass
