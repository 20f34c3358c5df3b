"""Every HTTP error of the API in one JSON form: `{"error": code, "detail": message}`."""
from __future__ import annotations

import logging

from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions
from rest_framework.response import Response

from arena.matches.errors import ArenaError, error_body
from arena.security.throttle import Throttled

logger = logging.getLogger("arena.matches")

#: What a client should wait before trying again when the database is unreachable.
DATABASE_RETRY_AFTER = 1


def _flatten(detail: object) -> str:
    """Turn DRF's nested error details into one readable line."""
    if isinstance(detail, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(item) for item in detail)
    return str(detail)


_DRF_CODES = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "not_authenticated",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.ParseError: "invalid_request",
    exceptions.ValidationError: "invalid_request",
    exceptions.Throttled: "throttled",
    exceptions.NotAcceptable: "not_acceptable",
}


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """DRF exception handler: every API error in the one JSON form."""
    if isinstance(exc, ArenaError):
        return Response(error_body(exc.code, exc.detail), status=exc.status_code)
    if isinstance(exc, Throttled):
        return Response(error_body(exc.code, exc.detail), status=exc.status_code,
                        headers={"Retry-After": str(exc.retry_after)})
    if isinstance(exc, Http404):
        return Response(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, (OperationalError, InterfaceError)):
        # The database is down or full ("too many clients"): a client can tell
        # that from a bug of ours, and retry (each write committed whole or not at
        # all; a retry with the match's `id` cannot make a second match).
        logger.error("database unavailable during %s: %s", _where(context), exc)
        return Response(error_body("database_unavailable", "The database cannot be reached; try again shortly."),
                        status=503, headers={"Retry-After": str(DATABASE_RETRY_AFTER)})
    if isinstance(exc, exceptions.APIException):
        code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
        headers = {}
        if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Token realm="api"'
            status_code = 401
        elif isinstance(exc, exceptions.Throttled) and exc.wait is not None:
            headers["Retry-After"] = str(int(exc.wait))
            status_code = exc.status_code
        else:
            status_code = exc.status_code
        return Response(error_body(code, _flatten(exc.detail)), status=status_code, headers=headers)
    return None


def _where(context: dict) -> str:
    request = context.get("request")
    return f"{request.method} {request.path}" if request is not None else "a request"


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """404 handler: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    """500 handler: JSON under /api/, Django's page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
