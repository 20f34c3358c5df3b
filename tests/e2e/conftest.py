"""The site as `make demo` serves it: `manage.py runserver` (ASGI: pages, API and
the notification WebSocket) in its own process, on the test database."""
from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import override_settings

from arena.matches.launcher.base import child_environment

HOST = "127.0.0.1"


@pytest.fixture
def arena_server(transactional_db, tmp_path):
    """The base URL of a running site; its game servers accept this origin."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    url = f"http://{HOST}:{port}"
    env = child_environment() | {"GAME_CORS_ORIGINS": url, "DEBUG": "true"}
    log = open(tmp_path / "runserver.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"{HOST}:{port}"],
        cwd=settings.BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((tmp_path / "runserver.log").read_text(errors="replace")[-2000:])
            try:
                socket.create_connection((HOST, port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def create_site_users(names, password: str) -> None:
    """Users the site's own process can sign in (the suite hashes passwords with a
    fast hasher the site does not know)."""
    with override_settings(PASSWORD_HASHERS=["django.contrib.auth.hashers.PBKDF2PasswordHasher"]):
        for name in names:
            get_user_model().objects.create_user(name, password=password)
