"""Restarting Django does not touch running games, and the new Django sees them."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings

from arena.client import ArenaApi, GameClient
from arena.gameserver import wire
from arena.matches.launcher.base import child_environment
from tests.conftest import run
from tests.integration.test_game import HOST

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def api_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def start_django(port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"{HOST}:{port}"],
        cwd=settings.BASE_DIR, env=child_environment(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection((HOST, port), timeout=0.5).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("Django did not start")


def test_games_outlive_a_django_restart(users):
    port = free_port()
    django = start_django(port)
    try:
        url = f"http://{HOST}:{port}"
        ops = ArenaApi(url, api_token(users["ops"]))
        match = ops.create_match(["alice", "bob"], points_to_win=1)
        tokens = {name: ArenaApi(url, api_token(users[name])).game_token(match["id"]) for name in ("alice", "bob")}
    finally:
        os.kill(django.pid, signal.SIGKILL)  # the hardest restart there is
        django.wait(10)

    async def play():
        alice, bob = GameClient(HOST, match["port"], tokens["alice"]), GameClient(HOST, match["port"], tokens["bob"])
        await alice.connect()
        await bob.connect()
        return await alice.wait_for(wire.GAME_OVER, timeout=30)

    over = run(play())  # Django is down the whole time
    assert over["reason"] == "points"

    django = start_django(port)
    try:
        seen = ops.match(match["id"])
        assert seen["status"] == "finished" and seen["winner"] == over["winner"]
    finally:
        django.terminate()
        django.wait(10)
