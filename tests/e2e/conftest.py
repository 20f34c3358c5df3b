"""The site as `make demo` serves it: `manage.py runserver` (ASGI: pages, API and
the notification WebSocket) in its own process, on the test database."""
from __future__ import annotations

import socket

import pytest
from django.contrib.auth import get_user_model
from django.test import override_settings

from tests.conftest import running_site


@pytest.fixture
def arena_server(transactional_db, tmp_path):
    """The base URL of a running site; its game servers accept this origin."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    origin = f"http://127.0.0.1:{port}"
    with open(tmp_path / "runserver.log", "wb") as log:
        with running_site({"GAME_CORS_ORIGINS": origin, "DEBUG": "true"}, port=port, log=log) as url:
            yield url


def create_site_users(names, password: str) -> None:
    """Users the site's own process can sign in (the suite hashes passwords with a
    fast hasher the site does not know)."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        for name in names:
            get_user_model().objects.create_user(name, password=password)
