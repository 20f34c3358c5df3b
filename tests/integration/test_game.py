"""A real match: the API launches a game server, real Socket.IO clients play it."""
from __future__ import annotations

import asyncio
import re
import time

import pytest
from django.conf import settings

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from arena.matches.tokens import game_token_issue
from tests.conftest import (
    TEST_MAX_PORT, TEST_MIN_PORT, assert_replay_reproduces, client_for, db_call, game_server_done, pid_alive,
    port_is_free, run,
)

# Every test here runs in both hosting modes (GAME_MATCHES_PER_PROCESS 1 and 8).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.usefixtures("hosting_mode")]
HOST = "127.0.0.1"


def launch(ops_api, players=("alice", "bob"), **extra) -> dict:
    response = ops_api.put("/api/match", {"players": list(players), **extra}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def game_token(user, match_id: str) -> str:
    response = client_for(user).get(f"/api/match/{match_id}/token")
    assert response.status_code == 200, response.content
    return response.json()["token"]


def wait_until(predicate, timeout: float = 10.0, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()


def test_full_match_is_played_broadcast_and_recorded(ops_api, users):
    created = launch(ops_api, points_to_win=1)
    match_id, port = created["id"], created["port"]
    assert created["status"] == "waiting"
    assert created["host"] == HOST and TEST_MIN_PORT <= port <= TEST_MAX_PORT
    assert [(p["username"], p["side"]) for p in created["players"]] == [("alice", "left"), ("bob", "right")]
    match = Match.objects.get(pk=match_id)
    assert match.pid and pid_alive(match.pid)
    assert not port_is_free(port)

    # only players get a game token
    alice_token = game_token(users["alice"], match_id)
    assert client_for(users["carol"]).get(f"/api/match/{match_id}/token").status_code == 403
    from rest_framework.authtoken.models import Token

    bob_api_token = Token.objects.get_or_create(user=users["bob"])[0].key
    other_match_token = game_token_issue(user_id=users["alice"].pk, match_id="00000000-0000-0000-0000-000000000000")

    async def scenario():
        alice = GameClient(HOST, port, alice_token)
        bob = GameClient(HOST, port, bob_api_token, transports=["polling"])  # API token, other transport
        carol = GameClient(HOST, port)  # no token: spectator
        mallory = GameClient(HOST, port, other_match_token)  # alice's token for another match
        await carol.connect()
        await mallory.connect()
        await alice.connect()
        assert (alice.role, alice.side) == ("player", "left")
        assert (carol.role, carol.side) == ("spectator", None)
        assert mallory.role == "spectator"
        assert alice.welcome["match"]["id"] == match_id
        assert alice.welcome["field"]["width"] == 1000 and alice.welcome["tick_rate"] == 60
        assert alice.welcome["missing"] == ["bob"]
        await asyncio.sleep(0.3)
        assert not any(name == wire.COUNTDOWN for name, _ in alice.history), "started without bob"

        await bob.connect()
        assert (bob.role, bob.side) == ("player", "right")
        await carol.wait_for(wire.COUNTDOWN, timeout=5)
        first = await carol.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=5)
        assert set(first) == {"tick", "ball", "paddles", "score", "acks"}
        start_left, start_right = first["paddles"]["left"], first["paddles"]["right"]

        # a spectator's input is refused and moves nothing
        seen = len(carol.history)
        await carol.emit(wire.INPUT, {"seq": 1, "move": 1})
        error = await carol.wait_for(wire.ERROR, since=seen, timeout=5)
        assert error["code"] == "not_a_player"
        # malformed input from a player is answered with an error, nothing else
        seen = len(alice.history)
        await alice.emit(wire.INPUT, {"seq": "x", "move": 5})
        assert (await alice.wait_for(wire.ERROR, since=seen, timeout=5))["code"] == "invalid_input"

        # alice moves down: her paddle's y grows on every screen; bob's does not move
        seq = await alice.send_input(1)
        for client in (alice, bob, carol):
            moved = await client.wait_for(
                wire.STATE, lambda s: s["acks"]["left"] == seq and s["paddles"]["left"] > start_left + 20, timeout=5
            )
            assert moved["paddles"]["right"] == start_right
        await alice.send_input(0)

        # nobody defends: the ball scores, the match is over at 1 point
        overs = [await c.wait_for(wire.GAME_OVER, timeout=20) for c in (alice, bob, carol, mallory)]
        assert all(o == overs[0] for o in overs)
        assert overs[0]["reason"] == "points"
        assert overs[0]["winner"] in {"alice", "bob"}
        assert sorted(overs[0]["score"].values()) == [0, 1]
        # the result was saved before game_over was sent
        saved = await db_call(Match.objects.get, pk=match_id)
        assert saved.status == MatchStatus.FINISHED
        assert any(name == wire.SCORE for name, _ in carol.history)
        for client in (alice, bob, carol, mallory):
            await client.wait_for("disconnect", timeout=5)
            await client.close()
            http = client.sio.eio.http
            assert http is None or http.closed, "the client's HTTP session must be released"
        return overs[0], (alice, bob, carol)

    over, watchers = run(scenario())
    # replayed bit for bit: what every client received, over WebSocket and long-polling
    replay = assert_replay_reproduces(match_id, *watchers)
    assert replay["end"]["winner"] == match_side(over["winner"], created) and replay["inputs"][0]["move"] == 1
    match = Match.objects.select_related("winner").get(pk=match_id)
    assert match.status == MatchStatus.FINISHED and match.finish_reason == "points"
    assert match.winner.username == over["winner"]
    assert match.started_at and match.finished_at and match.started_at <= match.finished_at
    assert {p.user.username: p.score for p in match.players.all()} == {
        "alice": over["score"]["left"],
        "bob": over["score"]["right"],
    }
    assert wait_until(lambda: game_server_done(match.pid, port), timeout=10), "game server did not exit"
    assert wait_until(lambda: port_is_free(port), timeout=5), "port not freed"
    # the WebSocket players and spectators were sent snapshots without a task each
    log = (settings.GAME_SERVER_LOG_DIR / f"{match_id}.log").read_text()
    direct, queued = map(int, re.search(r"broadcast sends: (\d+) direct, (\d+) queued", log).groups())
    assert direct > 100 and queued > 0, log  # bob is on long-polling

    detail = ops_api.get(f"/api/match/{match_id}").json()
    assert detail["status"] == "finished" and detail["winner"] == over["winner"]
    assert detail["score"] == over["score"] and detail["finish_reason"] == "points"
    # the players are free again
    assert launch(ops_api, points_to_win=1)["status"] == "waiting"


def match_side(username: str, created: dict) -> str:
    return next(p["side"] for p in created["players"] if p["username"] == username)


def test_player_in_a_live_match_cannot_join_another(ops_api, users):
    launch(ops_api, ("alice", "bob"))
    response = ops_api.put("/api/match", {"players": ["carol", "alice"]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"] == "player_busy" and "alice" in response.json()["detail"]
    assert Match.objects.count() == 1


def test_same_id_launches_once(ops_api, users):
    match_id = "8d1d3f4e-7b7a-4a53-9a43-5d1bca1f4a10"
    first = ops_api.put("/api/match", {"players": ["alice", "bob"], "id": match_id}, format="json")
    again = ops_api.put("/api/match", {"players": ["alice", "bob"], "id": match_id}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["port"] == again.json()["port"]
    assert first["Location"] == f"/api/match/{match_id}"
    other = ops_api.put("/api/match", {"players": ["alice", "carol"], "id": match_id}, format="json")
    assert other.status_code == 409 and other.json()["error"] == "id_conflict"
    assert Match.objects.count() == 1


def test_players_who_do_not_come_cancel_the_match(ops_api, users, game_settings):
    game_settings(GAME_PLAYER_CONNECT_TIMEOUT="1.5")
    created = launch(ops_api)
    token = game_token(users["alice"], created["id"])

    async def scenario():
        alice = GameClient(HOST, created["port"], token)
        await alice.connect()
        return await alice.wait_for(wire.GAME_OVER, timeout=10)

    over = run(scenario())
    assert over["winner"] is None and over["reason"] == "no_show"
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.CANCELLED
    assert match.finish_reason == "no_show: bob"
    assert match.winner is None and all(p.score == 0 for p in match.players.all())
    assert wait_until(lambda: game_server_done(match.pid, match.port))
