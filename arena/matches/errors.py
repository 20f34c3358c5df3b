"""Errors of the match domain and their one JSON form.

Services raise `ArenaError` subclasses carrying an HTTP status and a short code;
`arena.matches.http_errors` turns them (and every other API error) into the one
JSON form `{"error": code, "detail": message}`. Plain Python: the game server
imports this without the web stack.
"""
from __future__ import annotations


class ArenaError(Exception):
    status_code = 400
    code = "invalid_request"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code


class InvalidRequest(ArenaError):
    pass


class InvalidCredentials(ArenaError):
    status_code = 401
    code = "invalid_credentials"


class UnknownPlayer(ArenaError):
    code = "unknown_player"


class NotFound(ArenaError):
    status_code = 404
    code = "not_found"


class NotAPlayer(ArenaError):
    status_code = 403
    code = "not_a_player"


class PermissionDenied(ArenaError):
    status_code = 403
    code = "permission_denied"


class MatchOver(ArenaError):
    """The match already ended: nothing left to cancel."""

    status_code = 409
    code = "match_over"


class PlayerBusy(ArenaError):
    status_code = 409
    code = "player_busy"


class IdConflict(ArenaError):
    status_code = 409
    code = "id_conflict"


class LaunchFailed(ArenaError):
    """The game server could not be started; `code` says why (see the launcher)."""

    status_code = 503
    code = "launch_failed"


def error_body(code: str, detail: str) -> dict[str, str]:
    return {"error": code, "detail": detail}
