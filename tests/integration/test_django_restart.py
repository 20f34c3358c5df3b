"""Restarting Django does not touch running games, and the new Django sees them."""
from __future__ import annotations

import os
import signal
import socket

import psutil
import pytest

from arena.client import ArenaApi, GameClient
from arena.gameserver import wire
from tests.conftest import run, running_site
from tests.integration.test_game import HOST

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def django_process(port: int) -> int:
    """The pid of the process listening on `port`."""
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port:
            return conn.pid
    raise AssertionError(f"nothing listens on {port}")


def api_token(user) -> str:
    from rest_framework.authtoken.models import Token

    return Token.objects.get_or_create(user=user)[0].key


def test_games_outlive_a_django_restart(users):
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port = sock.getsockname()[1]
    with running_site(port=port) as url:
        ops = ArenaApi(url, api_token(users["ops"]))
        match = ops.create_match(["alice", "bob"], points_to_win=1)
        tokens = {name: ArenaApi(url, api_token(users[name])).game_token(match["id"]) for name in ("alice", "bob")}
        django_pid = django_process(port)
        os.kill(django_pid, signal.SIGKILL)  # the hardest restart there is

    async def play():
        alice, bob = GameClient(HOST, match["port"], tokens["alice"]), GameClient(HOST, match["port"], tokens["bob"])
        await alice.connect()
        await bob.connect()
        return await alice.wait_for(wire.GAME_OVER, timeout=30)

    over = run(play())  # Django is down the whole time
    assert over["reason"] == "points"

    with running_site(port=port):
        seen = ops.match(match["id"])
        assert seen["status"] == "finished" and seen["winner"] == over["winner"]
