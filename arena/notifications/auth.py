"""Who is at the other end of a notification socket.

Two ways in, checked in this order:

* an API token -- `?token=<key>` in the URL or an `Authorization: Token <key>`
  header (scripts). When a token is given it alone decides: a bad one leaves the
  connection anonymous (closed with 4401) even if a session cookie came along.
* the Django session cookie (browsers), through Channels' `AuthMiddlewareStack`.

Browsers send the session cookie with any page's WebSocket, so a page of another
site could open one on a logged-in user's behalf. `BrowserOriginValidator` refuses
that: a connection that has an `Origin` header (every browser sends one) must come
from one of `ALLOWED_HOSTS`. One without `Origin` is not a browser and gets
nothing it did not already have: it must hold the cookie or a token itself.
"""
from __future__ import annotations

from urllib.parse import parse_qs, urlparse

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import OriginValidator, WebsocketDenier
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

MAX_TOKEN_LENGTH = 128


def _header(scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return value
    return None


def token_from_scope(scope) -> str | None:
    """The API token a connection presents, '' for a malformed one, None for none."""
    query = parse_qs(scope.get("query_string", b"").decode("latin1"), keep_blank_values=True)
    if "token" in query:
        return query["token"][0]
    header = _header(scope, b"authorization")
    if header is not None:
        scheme, _, key = header.decode("latin1").partition(" ")
        return key.strip() if scheme.lower() == "token" else ""
    return None


@database_sync_to_async
def user_for_token(key: str):
    from django.apps import apps

    if not key or len(key) > MAX_TOKEN_LENGTH or not apps.is_installed("rest_framework.authtoken"):
        return AnonymousUser()  # without REST framework tokens, only the session cookie signs in
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key, user__is_active=True).first()
    return token.user if token else AnonymousUser()


class TokenAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from an API token when the connection presents one."""

    async def __call__(self, scope, receive, send):
        key = token_from_scope(scope)
        if key is not None:
            scope = dict(scope, user=await user_for_token(key))
        return await super().__call__(scope, receive, send)


class BrowserOriginValidator(OriginValidator):
    """Like Channels' `AllowedHostsOriginValidator`, but lets clients without an
    `Origin` header (scripts, tests) through: see the module docstring."""

    async def __call__(self, scope, receive, send):
        origin = _header(scope, b"origin")
        if origin is None:
            return await self.application(scope, receive, send)
        try:
            parsed = urlparse(origin.decode("latin1"))
        except (UnicodeDecodeError, ValueError):
            parsed = None
        if parsed is not None and parsed.hostname and self.validate_origin(parsed):
            return await self.application(scope, receive, send)
        return await WebsocketDenier()(scope, receive, send)


def allowed_hosts() -> list[str]:
    hosts = list(settings.ALLOWED_HOSTS)
    if settings.DEBUG and not hosts:
        hosts = ["localhost", "127.0.0.1", "[::1]"]
    return hosts


def NotificationAuthStack(inner):  # noqa: N802 - named like Channels' stacks
    """Origin check, then session cookie, then API token, then `inner`."""
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(inner)), allowed_hosts())
