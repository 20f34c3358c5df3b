"""Game tokens: the one place that says who may play a match.

A game token is a signed, timestamped `{"u": user id, "m": match id}`: it cannot be
forged without SECRET_KEY, expires after GAME_TOKEN_MAX_AGE, and names its match,
so it is worthless for any other. A user's API token is accepted too, for scripts.

Lifetimes are counted in whole seconds: Django's signer stamps a token with
`int(time.time())` and compares that with the current (fractional) time, so a
token may expire up to one second before GAME_TOKEN_MAX_AGE has fully passed.
"""
from __future__ import annotations

import time
from uuid import UUID

from arena.conf import settings
from arena.gameserver.contract import UserKey, user_key
from django.core import signing

_SALT = "arena.matches.game-token"


class _Signer(signing.TimestampSigner):
    """A timestamp signer whose stamp may be set: a token issued at a given time."""

    def __init__(self, *, issued_at: float | None) -> None:
        super().__init__(salt=_SALT)
        self.issued_at = issued_at

    def timestamp(self) -> str:
        return signing.b62_encode(int(time.time() if self.issued_at is None else self.issued_at))


def game_token_issue(*, user_id: object, match_id: UUID | str, issued_at: float | None = None) -> str:
    """A token for `user_id` in `match_id`, stamped now (or at `issued_at`, a Unix
    time: tools and tests make an already expired token this way, without waiting)."""
    return _Signer(issued_at=issued_at).sign_object({"u": user_key(user_id), "m": str(match_id)}, compress=False)


def game_token_user_id(token: object, *, match_id: UUID | str) -> UserKey | None:
    """The user a token speaks for in this match (`user_key` of their primary key), or None.

    Only the match check is done here; whether that user plays the match is the
    caller's business (it has the list of players).
    """
    if not isinstance(token, str) or not token or len(token) > 512:
        return None
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.GAME_TOKEN_MAX_AGE)
    except signing.BadSignature:  # includes SignatureExpired
        return _api_token_user_id(token)
    if not isinstance(data, dict) or data.get("m") != str(match_id):
        return None
    user_id = data.get("u")
    return user_id if isinstance(user_id, (int, str)) and not isinstance(user_id, bool) else None


def _api_token_user_id(key: str) -> UserKey | None:
    from django.apps import apps

    if not apps.is_installed("rest_framework.authtoken"):  # a host with its own token scheme
        return None
    from rest_framework.authtoken.models import Token

    pk = Token.objects.filter(key=key, user__is_active=True).values_list("user_id", flat=True).first()
    return None if pk is None else user_key(pk)
