"""Cancel reaches the game server (local launchers): `DELETE /api/match/<id>` and
the admin action stop the match's server at once, its clients get `game_over
{reason: "cancelled"}`, and its port is free. Its control endpoint refuses
anything not signed for its match."""
from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
from django.contrib.auth.models import User

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.control import control_token
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import client_for, db_call, pid_alive, port_is_free, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def post_control(port: int, body: object) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://{HOST}:{port}/control", data=json.dumps(body).encode(), method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.parametrize("launcher", ["warm", "subprocess"])
def test_delete_stops_the_game_and_its_clients_get_cancelled(ops_api, users, game_settings, launcher):
    game_settings(GAME_SERVER_LAUNCHER=launcher)
    created = launch(ops_api, points_to_win=21)
    match_id, port = created["id"], created["port"]
    pid = Match.objects.get(pk=match_id).pid
    tokens = [game_token(users[name], match_id) for name in ("alice", "bob")]
    creator = client_for(users["ops"])

    async def scenario():
        clients = [GameClient(HOST, port, t) for t in tokens] + [GameClient(HOST, port)]
        for client in clients:
            await client.connect()
        await clients[0].wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=15)
        # forged or misaddressed control messages change nothing
        other = "00000000-0000-0000-0000-000000000000"
        for body, status in (
            ({"match": match_id, "action": "cancel", "token": "forged"}, 403),
            ({"match": other, "action": "cancel", "token": control_token(other, "cancel")}, 404),
            ({"match": match_id, "action": "cancel", "token": control_token(other, "cancel")}, 403),
            ({"match": match_id, "action": "explode", "token": control_token(match_id, "cancel")}, 403),
            (["not", "an", "object"], 404),
            ({"match": match_id, "padding": "x" * 5000}, 413),
        ):
            assert (await asyncio.to_thread(post_control, port, body))[0] == status, body
        seen = len(clients[0].history)
        await clients[0].wait_for(wire.STATE, since=seen, timeout=5)  # still playing
        response = await db_call(creator.delete, f"/api/match/{match_id}")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        overs = [await c.wait_for(wire.GAME_OVER, timeout=10) for c in clients]
        for client in clients:
            await client.close()
        return overs

    overs = run(scenario())
    assert all(o == {"winner": None, "score": o["score"], "reason": "cancelled"} for o in overs)
    assert wait_until(lambda: not pid_alive(pid), timeout=10)
    assert port_is_free(port)
    match = Match.objects.get(pk=match_id)
    assert match.status == MatchStatus.CANCELLED and match.finish_reason == "cancelled by ops"
    assert not match.players.filter(live=True).exists()


def test_the_admin_cancel_action_stops_the_game(ops_api, users, client):
    created = launch(ops_api, points_to_win=21)
    pid = Match.objects.get(pk=created["id"]).pid
    token = game_token(users["alice"], created["id"])
    client.force_login(User.objects.create_superuser("admin", password="admin"))

    async def connected_then_cancelled():
        alice = GameClient(HOST, created["port"], token)
        await alice.connect()
        response = await db_call(client.post,
            "/admin/matches/match/", {"action": "cancel_matches", "_selected_action": [created["id"]]}
        )
        assert response.status_code == 302
        over = await alice.wait_for(wire.GAME_OVER, timeout=10)
        await alice.close()
        return over

    assert run(connected_then_cancelled())["reason"] == "cancelled"
    assert wait_until(lambda: not pid_alive(pid), timeout=10)
    assert Match.objects.get(pk=created["id"]).finish_reason == "cancelled by admin"


def test_only_the_creator_or_a_match_changer_may_cancel(ops_api, users):
    created = launch(ops_api)
    for name in ("alice", "carol"):  # a player of the match, and someone else
        response = client_for(users[name]).delete(f"/api/match/{created['id']}")
        assert response.status_code == 403 and response.json()["error"] == "permission_denied"
    assert client_for(None).delete(f"/api/match/{created['id']}").status_code == 401
    assert client_for(users["ops"]).delete("/api/match/00000000-0000-0000-0000-000000000000").status_code == 404
    assert Match.objects.get(pk=created["id"]).status == MatchStatus.WAITING
