"""`/ws/notifications/` against the real ASGI application, with real game servers
launched through the API, on whichever channel layer this run uses."""
from __future__ import annotations

import asyncio
import socket
import time

import pytest
from channels.db import database_sync_to_async
from django.conf import settings
from rest_framework.test import APIClient

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from tests.notifications.conftest import api_call

pytestmark = [pytest.mark.django_db(transaction=True)]
HOST = "127.0.0.1"


async def launch(ops_api, players=("alice", "bob"), **extra) -> dict:
    response = await api_put(ops_api, {"players": list(players), **extra})
    assert response.status_code == 201, response.content
    return response.json()


def api_put(ops_api, body):
    return api_call(ops_api, "put", "/api/match", body)


async def assert_player(port: int, token: str, side: str) -> GameClient:
    client = GameClient(HOST, port, token)
    await client.connect()
    assert (client.role, client.side) == ("player", side), client.welcome
    return client


# --- authentication -----------------------------------------------------------------------


async def test_anonymous_and_bad_tokens_are_closed_with_4401(connect, tokens, session_cookie):
    for kwargs in (
        {},
        {"token": "not-a-token"},
        {"token": ""},
        {"token": "x" * 500},
        # a token, when given, decides alone: a valid session does not rescue a bad one
        {"token": "not-a-token", "cookie": session_cookie("alice")},
    ):
        sock = await connect(**kwargs)
        assert await sock.drain(2) == [], kwargs
        assert sock.close_code == 4401, kwargs


async def test_token_and_session_cookie_authenticate(connect, tokens, session_cookie):
    by_token = await connect(token=tokens["alice"])
    assert (await by_token.wait_for("hello"))["user"] == "alice"
    by_cookie = await connect(cookie=session_cookie("bob"), origin="http://127.0.0.1:8000")
    assert (await by_cookie.wait_for("hello"))["user"] == "bob"


async def test_browser_origin_must_be_an_allowed_host(connect, session_cookie):
    cookie = session_cookie("alice")
    for origin in ("http://localhost:8000", "https://127.0.0.1"):
        sock = await connect(cookie=cookie, origin=origin)
        await sock.wait_for("hello")
    for origin in ("http://evil.example", "null", "http://127.0.0.1.evil.example"):
        refused = await connect(cookie=cookie, origin=origin, expect_accept=False)
        assert refused.close_code is not None


async def test_client_messages(connect, tokens, ops_api):
    sock = await connect(token=tokens["carol"])
    await sock.wait_for("hello")
    await sock.send({"action": "ping"})
    await sock.wait_for("pong")
    await sock.send_text("{not json")
    assert (await sock.wait_for("error"))["code"] == "invalid_message"
    mark = len(sock.history)
    await sock.send({"action": "dance"})
    assert (await sock.wait_for("error", since=mark))["code"] == "unknown_action"
    mark = len(sock.history)
    await sock.send({"action": "watch", "match": "nope"})
    assert (await sock.wait_for("error", since=mark))["code"] == "invalid_message"
    mark = len(sock.history)
    await sock.send({"action": "watch", "match": "00000000-0000-4000-8000-000000000000"})
    assert (await sock.wait_for("error", since=mark))["code"] == "not_found"
    mark = len(sock.history)
    await sock.send({"action": "ping"})
    await sock.wait_for("pong", since=mark)  # errors never close the socket
    assert sock.close_code is None


# --- the launch --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_ready_reaches_every_tab_of_each_player_and_nobody_else(connect, tokens, session_cookie, ops_api):
    alice_script = await connect(token=tokens["alice"])
    alice_tab = await connect(cookie=session_cookie("alice"), origin="http://127.0.0.1:8000")
    bob = await connect(token=tokens["bob"])
    carol = await connect(token=tokens["carol"])
    for sock in (alice_script, alice_tab, bob, carol):
        await sock.wait_for("hello")

    started = time.monotonic()
    put = asyncio.create_task(launch(ops_api))
    ready = await alice_script.wait_for("match.ready", timeout=settings.GAME_SERVER_LAUNCH_TIMEOUT)
    assert time.monotonic() - started < settings.GAME_SERVER_LAUNCH_TIMEOUT
    created = await put
    match_id = created["id"]

    assert set(ready) == {"type", "match", "host", "port", "token"}
    assert ready["match"] == {
        "id": match_id,
        "status": "waiting",
        "players": [{"username": "alice", "side": "left"}, {"username": "bob", "side": "right"}],
        "points_to_win": created["points_to_win"],
    }
    assert (ready["host"], ready["port"]) == (created["host"], created["port"]) == (HOST, created["port"])
    tab_ready = await alice_tab.wait_for("match.ready", match_id)
    bob_ready = await bob.wait_for("match.ready", match_id)
    assert {k: v for k, v in tab_ready.items() if k != "token"} == {k: v for k, v in ready.items() if k != "token"}
    assert bob_ready["token"] != ready["token"]  # each player gets their own

    # the tokens work: each joins the game server as its own player
    alice_game = await assert_player(ready["port"], ready["token"], "left")
    bob_game = await assert_player(bob_ready["port"], bob_ready["token"], "right")
    started_event = await alice_tab.wait_for("match.started", match_id, timeout=10)
    assert started_event["match"]["status"] == "playing" and started_event["started_at"]
    await bob.wait_for("match.started", match_id)
    await alice_script.wait_for("match.started", match_id)

    # carol is no player: nothing about this match, not even with a delay
    await carol.drain(1.0)
    assert carol.about(match_id) == []
    # and every tab got each event once
    for sock in (alice_script, alice_tab, bob):
        assert [m["type"] for m in sock.about(match_id)] == ["match.ready", "match.started"]
    for client in (alice_game, bob_game):
        await client.close()


@pytest.mark.slow
async def test_a_late_connection_gets_the_current_state_with_a_fresh_token(connect, tokens, ops_api):
    created = await launch(ops_api)
    match_id = created["id"]

    alice = await connect(token=tokens["alice"])
    ready = await alice.wait_for("match.ready", match_id, timeout=2)
    assert ready["replay"] is True and ready["port"] == created["port"]
    assert ready["match"]["status"] == "waiting"
    alice_game = await assert_player(ready["port"], ready["token"], "left")

    bob = await connect(token=tokens["bob"])
    bob_ready = await bob.wait_for("match.ready", match_id, timeout=2)
    bob_game = await assert_player(bob_ready["port"], bob_ready["token"], "right")
    await bob.wait_for("match.started", match_id, timeout=10)

    # a second tab opened during the game learns where to go back, and that it runs
    again = await connect(token=tokens["bob"])
    replayed = [await again.wait_for(kind, match_id, timeout=2) for kind in ("match.ready", "match.started")]
    assert [m["match"]["status"] for m in replayed] == ["playing", "playing"]
    assert all(m["replay"] for m in replayed) and replayed[0]["token"]
    rejoined = await assert_player(replayed[0]["port"], replayed[0]["token"], "right")

    # someone else who connects now learns nothing about it
    carol = await connect(token=tokens["carol"])
    await carol.wait_for("hello")
    await carol.drain(0.5)
    assert carol.about(match_id) == []
    for client in (alice_game, bob_game, rejoined):
        await client.close()


@pytest.mark.slow
async def test_a_played_match_ends_with_match_finished_for_players_and_spectators(connect, tokens, ops_api):
    alice = await connect(token=tokens["alice"])
    bob = await connect(token=tokens["bob"])
    created = await launch(ops_api, points_to_win=1)
    match_id = created["id"]

    # carol watches (no token needed) and learns where the game is
    carol = await connect(token=tokens["carol"])
    await carol.send({"action": "watch", "match": match_id})
    watching = await carol.wait_for("watching", match_id)
    assert watching["match"]["status"] == "waiting"
    public_ready = await carol.wait_for("match.ready", match_id)
    assert "token" not in public_ready and public_ready["port"] == created["port"]
    spectator = GameClient(HOST, public_ready["port"])
    await spectator.connect()
    assert spectator.role == "spectator"
    # alice watches her own match too: she must not get its events twice
    await alice.send({"action": "watch", "match": match_id})
    await alice.wait_for("watching", match_id)

    alice_ready = await alice.wait_for("match.ready", match_id, timeout=5)
    bob_ready = await bob.wait_for("match.ready", match_id, timeout=5)
    games = [
        await assert_player(alice_ready["port"], alice_ready["token"], "left"),
        await assert_player(bob_ready["port"], bob_ready["token"], "right"),
    ]
    # nobody defends: the ball scores by itself and the match is over at 1 point
    over = await games[0].wait_for(wire.GAME_OVER, timeout=20)
    finished = await alice.wait_for("match.finished", match_id, timeout=5)
    assert finished["match"]["status"] == "finished"
    assert finished["reason"] == "points" and finished["winner"] == over["winner"]
    assert finished["score"] == over["score"] and finished["finished_at"]
    for sock in (bob, carol):
        assert (await sock.wait_for("match.finished", match_id, timeout=5))["score"] == over["score"]
    # match.score races the final match.finished (which supersedes it): not counted
    assert [m["type"] for m in carol.about(match_id) if m["type"] != "match.score"] == [
        "watching", "match.ready", "match.started", "match.finished"
    ]
    await alice.drain(0.5)
    seen_by_alice = [m["type"] for m in alice.about(match_id) if m["type"] not in ("watching", "match.score")]
    assert seen_by_alice == ["match.ready", "match.started", "match.finished"]
    saved = await database_sync_to_async(Match.objects.get)(pk=match_id)
    assert saved.status == "finished"

    # a tab opened right after the end still hears how it ended
    late = await connect(token=tokens["bob"])
    replay = await late.wait_for("match.finished", match_id, timeout=2)
    assert replay["replay"] is True and replay["winner"] == over["winner"]
    for client in (*games, spectator):
        await client.close()


@pytest.mark.slow
async def test_players_who_do_not_come_get_match_cancelled(connect, tokens, ops_api, game_settings):
    game_settings(GAME_PLAYER_CONNECT_TIMEOUT="1")
    alice = await connect(token=tokens["alice"])
    created = await launch(ops_api)
    cancelled = await alice.wait_for("match.cancelled", created["id"], timeout=10)
    assert cancelled["match"]["status"] == "cancelled"
    assert cancelled["reason"] == "no_show: alice, bob" and cancelled["winner"] is None
    assert cancelled["score"] == {"left": 0, "right": 0}


async def test_a_launch_that_fails_sends_match_failed(connect, tokens, ops_api, game_settings):
    with socket.socket() as taken:  # the only port of the range is taken
        taken.bind((HOST, 0))
        taken.listen()
        port = taken.getsockname()[1]
        game_settings(GAME_SERVER_MIN_PORT=str(port), GAME_SERVER_MAX_PORT=str(port))
        bob = await connect(token=tokens["bob"])
        await bob.wait_for("hello")
        response = await api_put(ops_api, {"players": ["alice", "bob"]})
    assert response.status_code == 503 and response.json()["error"] == "no_free_port"
    failed = await bob.wait_for("match.failed", timeout=5)
    assert failed["match"]["status"] == "failed" and failed["reason"].startswith("no_free_port")
    assert [m["type"] for m in bob.about(failed["match"]["id"])] == ["match.failed"]


async def test_spectators_may_watch_any_match_but_get_no_token(connect, tokens, ops_api):
    created = await launch(ops_api)
    dave = await connect(token=tokens["dave"])
    await dave.send({"action": "watch", "match": created["id"]})
    ready = await dave.wait_for("match.ready", created["id"])
    assert ready["replay"] is True and "token" not in ready
    await dave.send({"action": "unwatch", "match": created["id"]})
    await dave.wait_for("unwatched", created["id"])
    # a game token stays for players only
    dave_api = APIClient()
    dave_api.credentials(HTTP_AUTHORIZATION=f"Token {tokens['dave']}")
    response = await api_call(dave_api, "get", f"/api/match/{created['id']}/token")
    assert response.status_code == 403


@pytest.mark.slow
async def test_lobby_subscription_gets_every_matchs_public_events(connect, tokens, ops_api):
    carol = await connect(token=tokens["carol"])
    await carol.wait_for("hello")
    await carol.send({"action": "lobby"})
    await carol.wait_for("lobby")
    created = await launch(ops_api)  # alice vs bob: carol plays no part
    ready = await carol.wait_for("match.ready", timeout=20)
    assert ready["match"]["id"] == created["id"]
    assert "token" not in ready, "a lobby never sees game tokens"
    assert [p["username"] for p in ready["match"]["players"]] == ["alice", "bob"]
