"""The bot, run as a user would run it, plays and beats a player who never moves."""
from __future__ import annotations

import subprocess
import sys

import pytest

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from tests.conftest import run
from tests.integration.test_game import HOST, game_token, launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_bot_plays_a_match_through_the_api(live_server, ops_api, users):
    created = launch(ops_api, points_to_win=2)
    bot = subprocess.Popen(
        [sys.executable, "-m", "arena.bot", "--api", live_server.url, "--match", created["id"],
         "--username", "alice", "--password", "alice"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    bob_token = game_token(users["bob"], created["id"])
    try:
        async def idle_bob():
            bob = GameClient(HOST, created["port"], bob_token)
            welcome = await bob.connect()
            assert welcome["side"] == "right"
            over = await bob.wait_for(wire.GAME_OVER, timeout=60)
            return over, bob

        over, bob = run(idle_bob())
        assert over["winner"] == "alice" and over["score"] == {"left": 2, "right": 0}
        # the bot's paddle really moved
        assert len({s["paddles"]["left"] for n, s in bob.history if n == wire.STATE}) > 1
        assert bot.wait(timeout=15) == 0, bot.stdout.read()
    finally:
        bot.kill()
    assert Match.objects.get(pk=created["id"]).winner.username == "alice"
