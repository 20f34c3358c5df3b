"""Whether SECRET_KEY is fit for this deployment.

SECRET_KEY signs session cookies and game tokens. The development default in
arena/settings.py is public (it is in the repository), so with it anyone can forge
a session or take any player's seat in any match. It is long enough to pass
Django's own `security.W009`, hence this module: with DEBUG off, an unset key, the
development key, or the development key among SECRET_KEY_FALLBACKS is refused.

Two ways in, one rule (`problems`):
* `arena.security.checks` reports it as a system check error, which stops every
  management command that runs checks (runserver, migrate, check, supervise...);
* `refuse_to_start()` raises it in processes that start without Django's command
  machinery: the ASGI/WSGI applications (Daphne, gunicorn) and the game servers.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured

DEVELOPMENT_SECRET_KEY = "arena-development-key-change-me-in-production-0123456789"
GENERATE = "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'"


@dataclass(frozen=True)
class Problem:
    id: str
    message: str
    hint: str


class InsecureSettings(ImproperlyConfigured):
    """Raised by `refuse_to_start`; `code` is what a game server reports to its launcher."""

    code = "insecure_secret_key"


def problems(*, debug: bool, secret_key: str, fallbacks: Iterable[str]) -> list[Problem]:
    """What is wrong with these keys for a deployment with this DEBUG (pure)."""
    if debug:
        return []
    found = []
    if not secret_key or secret_key == DEVELOPMENT_SECRET_KEY:
        found.append(Problem(
            "arena.E001",
            "DEBUG is off but SECRET_KEY is not set: the development key in arena/settings.py is public, "
            "so anyone could forge session cookies and game tokens.",
            f"Set the SECRET_KEY environment variable to a long random string (e.g. the output of {GENERATE}), "
            "the same in every process of the site; or set DEBUG=1 for development.",
        ))
    if DEVELOPMENT_SECRET_KEY in fallbacks:
        found.append(Problem(
            "arena.E002",
            "DEBUG is off but SECRET_KEY_FALLBACKS contains the public development key: "
            "cookies and game tokens forged with it would still be accepted.",
            "Remove the development key from the SECRET_KEY_FALLBACKS environment variable.",
        ))
    return found


def current_problems() -> list[Problem]:
    from django.conf import settings

    return problems(
        debug=settings.DEBUG,
        secret_key=settings.SECRET_KEY,
        fallbacks=getattr(settings, "SECRET_KEY_FALLBACKS", []),
    )


def refuse_to_start() -> None:
    """Raise InsecureSettings (one line: message and hint) if the keys are unfit."""
    found = current_problems()
    if found:
        raise InsecureSettings(" ".join(f"{p.message} {p.hint} ({p.id})" for p in found))
