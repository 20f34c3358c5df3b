"""The bot, run as a user would run it, plays a whole match and beats a player who
gets out of the ball's way; its decisions are unit-tested below."""
from __future__ import annotations

import subprocess
import sys

import pytest

from arena.bot import choose_move
from arena.client import GameClient
from arena.matches.models import Match
from tests.conftest import run
from tests.integration.test_game import HOST, game_token, launch
from tests.integration.test_resilience import dodge

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
        async def dodging_bob():
            bob = GameClient(HOST, created["port"], bob_token)
            welcome = await bob.connect()
            assert welcome["side"] == "right" and "alice" in welcome["connected"] + welcome["missing"]
            await dodge(bob)
            return bob.game_over

        over = run(dodging_bob())
        # bob concedes every ball and each serve goes to the side that conceded:
        # the bot only has to return the first serve if it comes its way
        assert over["winner"] == "alice" and over["score"] == {"left": 2, "right": 0}
        assert bot.wait(timeout=15) == 0, bot.stdout.read()
    finally:
        bot.kill()
    assert Match.objects.get(pk=created["id"]).winner.username == "alice"


FIELD = {"width": 1000, "height": 600}


def state(ball_x, ball_y, vx, paddle_y, side="left"):
    return {"ball": {"x": ball_x, "y": ball_y, "vx": vx, "vy": 0}, "paddles": {side: paddle_y}}


def test_bot_follows_a_close_ball_and_recentres_otherwise():
    assert choose_move(state(300, 500, -350, 300), "left", FIELD) == 1  # coming, below: down
    assert choose_move(state(300, 100, -350, 300), "left", FIELD) == -1  # coming, above: up
    assert choose_move(state(300, 305, -350, 300), "left", FIELD) == 0  # already there
    assert choose_move(state(900, 500, -350, 100), "left", FIELD) == 1  # too far: back to the centre
    assert choose_move(state(300, 500, 350, 450), "left", FIELD) == -1  # going away: back to the centre
    assert choose_move(state(700, 100, 350, 300, "right"), "right", FIELD) == -1  # mirrored
