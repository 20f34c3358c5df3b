"""The lobby: challenge, quick play and the bot, all through the match launcher."""
from __future__ import annotations

import pytest

from arena.client import GameClient
from arena.gameserver import wire
from arena.lobby.models import QuickPlayEntry
from arena.matches.models import Match
from tests.conftest import client_for, pid_alive, run
from tests.integration.test_game import HOST, game_token, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_challenge_starts_a_match_both_players_see(users):
    alice, bob = client_for(users["alice"]), client_for(users["bob"])
    response = alice.post("/api/lobby/challenge", {"opponent": "bob", "points_to_win": 1}, format="json")
    assert response.status_code == 201, response.content
    match = response.json()
    assert match["status"] == "waiting" and match["port"]
    assert [p["username"] for p in match["players"]] == ["alice", "bob"]
    lobby = bob.get("/api/lobby").json()
    assert lobby["me"] == "bob" and lobby["my_match"]["id"] == match["id"]
    assert match["id"] in [m["id"] for m in lobby["live"]]
    # one live match per user, whoever asks
    again = alice.post("/api/lobby/challenge", {"opponent": "carol"}, format="json")
    assert again.status_code == 409 and again.json()["error"] == "player_busy"
    busy = client_for(users["carol"]).post("/api/lobby/challenge", {"opponent": "bob"}, format="json")
    assert busy.status_code == 409


@pytest.mark.parametrize(
    "body, status, code",
    [({"opponent": "zed"}, 400, "unknown_player"), ({"opponent": "alice"}, 400, "invalid_request"), ({}, 400, "invalid_request")],
)
def test_bad_challenges(users, body, status, code):
    response = client_for(users["alice"]).post("/api/lobby/challenge", body, format="json")
    assert (response.status_code, response.json()["error"]) == (status, code)
    assert Match.objects.count() == 0


def test_lobby_needs_a_signed_in_user():
    assert client_for(None).get("/api/lobby").status_code == 401


def test_quick_play_pairs_the_two_first_comers(users):
    alice, bob = client_for(users["alice"]), client_for(users["bob"])
    first = alice.post("/api/lobby/quickplay", {}, format="json")
    assert first.status_code == 202 and first.json() == {"queued": True}
    assert alice.get("/api/lobby").json()["queued"] is True
    assert alice.post("/api/lobby/quickplay", {}, format="json").status_code == 202  # idempotent
    assert QuickPlayEntry.objects.count() == 1
    second = bob.post("/api/lobby/quickplay", {}, format="json")
    assert second.status_code == 201, second.content
    assert [p["username"] for p in second.json()["players"]] == ["alice", "bob"]
    assert QuickPlayEntry.objects.count() == 0
    assert alice.get("/api/lobby").json()["my_match"]["id"] == second.json()["id"]


def test_leaving_the_queue(users):
    alice = client_for(users["alice"])
    alice.post("/api/lobby/quickplay", {}, format="json")
    assert alice.delete("/api/lobby/quickplay").json() == {"queued": False}
    assert client_for(users["bob"]).post("/api/lobby/quickplay", {}, format="json").status_code == 202


def test_play_the_bot(users):
    response = client_for(users["carol"]).post("/api/lobby/bot", {"points_to_win": 1}, format="json")
    assert response.status_code == 201, response.content
    match = response.json()
    bot_name = match["players"][1]["username"]
    assert bot_name == "bot"
    token = game_token(users["carol"], match["id"])

    async def watch():
        carol = GameClient(HOST, match["port"], token)
        await carol.connect()
        await carol.wait_for(wire.COUNTDOWN, timeout=20)  # the bot came
        return await carol.wait_for(wire.GAME_OVER, timeout=60)

    over = run(watch())
    assert over["reason"] == "points"
    assert Match.objects.get(pk=match["id"]).status == "finished"
    # a second person playing the bot at the same time gets another bot account
    other = client_for(users["dave"]).post("/api/lobby/bot", {"points_to_win": 1}, format="json").json()
    assert other["players"][1]["username"] == "bot"  # the first bot is free again
    pid = Match.objects.get(pk=match["id"]).pid
    assert wait_until(lambda: not pid_alive(pid))
