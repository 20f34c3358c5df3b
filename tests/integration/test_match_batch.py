"""`PUT /api/matches`: many matches in one request, each with the rules and the
answers of `PUT /api/match`, launched at once by the local warm launcher."""
from __future__ import annotations

import asyncio
import socket
import threading
import uuid

import pytest
from django.contrib.auth.models import User

from arena.client import GameClient
from arena.matches.launcher import get_launcher
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import TEST_MAX_PORT, TEST_MIN_PORT, client_for, pid_alive, run
from tests.integration.test_game import game_token
from tests.integration.test_match_api import assert_error

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
HOST = "127.0.0.1"


@pytest.fixture
def players(users):
    """users, plus p0..p7."""
    made = dict(users)
    for i in range(8):
        made[f"p{i}"] = User.objects.create_user(f"p{i}", password=f"p{i}")
    return made


def put_batch(api, entries) -> list[dict]:
    response = api.put("/api/matches", {"matches": entries}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == len(entries)
    return results


def assert_entry_error(result: dict, status: int, code: str) -> str:
    assert set(result) == {"status", "error", "detail"}, result
    assert (result["status"], result["error"]) == (status, code), result
    assert isinstance(result["detail"], str) and result["detail"]
    return result["detail"]


def test_a_batch_launches_every_match_and_each_server_listens(ops_api, players):
    pairs = [("p0", "p1"), ("p2", "p3"), ("p4", "p5"), ("p6", "p7"), ("alice", "bob")]
    results = put_batch(ops_api, [{"players": list(pair), "points_to_win": 3} for pair in pairs])

    assert [r["status"] for r in results] == [201] * len(pairs)
    matches = [r["match"] for r in results]
    assert [[p["username"] for p in m["players"]] for m in matches] == [list(pair) for pair in pairs]
    assert all(m["status"] == "waiting" and m["host"] == HOST and m["points_to_win"] == 3 for m in matches)
    ports = [m["port"] for m in matches]
    assert len(set(ports)) == len(ports) and all(TEST_MIN_PORT <= p <= TEST_MAX_PORT for p in ports)
    for m in matches:
        row = Match.objects.get(pk=m["id"])
        assert row.status == MatchStatus.WAITING and row.port == m["port"] and pid_alive(row.pid)

    # the first player of two of the matches: each server knows its own match
    chosen = (matches[0], matches[-1])
    tokens = {m["id"]: game_token(players[m["players"][0]["username"]], m["id"]) for m in chosen}

    async def join(match: dict) -> dict:
        client = GameClient(HOST, match["port"], tokens[match["id"]])
        try:
            return await client.connect()
        finally:
            await client.close()

    async def both():
        return await asyncio.gather(*(join(m) for m in chosen))

    for match, welcome in zip(chosen, run(both())):
        assert welcome["match"]["id"] == match["id"]
        assert (welcome["role"], welcome["side"]) == ("player", "left")


def test_the_matches_of_a_batch_launch_side_by_side(ops_api, players, monkeypatch):
    launcher = get_launcher()
    real = launcher.launch
    lock, two_at_once = threading.Lock(), threading.Event()
    in_flight = {"now": 0, "most": 0}

    def launch(info):  # the real launch, once a second one is under way too (or 5 s)
        with lock:
            in_flight["now"] += 1
            in_flight["most"] = max(in_flight["most"], in_flight["now"])
            if in_flight["now"] >= 2:
                two_at_once.set()
        try:
            two_at_once.wait(5)
            return real(info)
        finally:
            with lock:
                in_flight["now"] -= 1

    monkeypatch.setattr(launcher, "launch", launch)
    results = put_batch(ops_api, [{"players": [f"p{2 * i}", f"p{2 * i + 1}"]} for i in range(3)])
    assert [r["status"] for r in results] == [201] * 3
    assert in_flight["most"] >= 2, "the launches ran one after another"


def test_each_entry_gets_its_own_answer(ops_api, players):
    before = [ops_api.put("/api/match", {"players": pair}, format="json") for pair in (["p6", "p7"], ["p4", "p5"])]
    assert [r.status_code for r in before] == [201, 201], before[0].content
    before_id, new_id = before[0].json()["id"], str(uuid.uuid4())
    entries = [
        {"players": ["alice", "bob"], "id": new_id},         # 0: created
        {"players": ["alice", "zed"]},                       # 1: unknown player
        {"players": ["carol", "dave"], "points_to_win": 0},  # 2: invalid
        ["carol", "dave"],                                   # 3: not an object
        {"players": ["carol", "bob"]},                       # 4: bob is in entry 0's match
        {"players": ["p6", "p7"], "id": before_id},          # 5: a retry of a match from before
        {"players": ["p0", "p1"], "id": before_id},          # 6: that id is another match
        {"players": ["p5", "p3"]},                           # 7: p5 is in a live match from before
        {"players": ["carol", "dave"]},                      # 8: created
    ]
    results = put_batch(ops_api, entries)

    assert results[0]["status"] == 201 and results[8]["status"] == 201
    assert results[0]["match"]["id"] == new_id and results[0]["match"]["status"] == "waiting"
    assert "zed" in assert_entry_error(results[1], 400, "unknown_player")
    assert_entry_error(results[2], 400, "invalid_request")
    assert_entry_error(results[3], 400, "invalid_request")
    assert "matches[0]" in assert_entry_error(results[4], 409, "player_busy")
    assert results[5] == {"status": 200, "match": before[0].json()}
    assert_entry_error(results[6], 409, "id_conflict")
    assert "p5" in assert_entry_error(results[7], 409, "player_busy")
    # nothing stored for the refused entries; every match is live
    expected = {before_id, before[1].json()["id"], new_id, results[8]["match"]["id"]}
    assert {str(pk) for pk in Match.objects.values_list("id", flat=True)} == expected
    assert set(Match.objects.values_list("status", flat=True)) == {MatchStatus.WAITING}


def test_a_failed_launch_fails_its_match_alone(ops_api, players, game_settings):
    with socket.socket() as probe:  # one port for the whole range: one of two launches gets it
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    game_settings(GAME_SERVER_MIN_PORT=port, GAME_SERVER_MAX_PORT=port)
    results = put_batch(ops_api, [{"players": ["alice", "bob"]}, {"players": ["carol", "dave"]}])

    assert sorted(r["status"] for r in results) == [201, 503]
    ok = next(r for r in results if r["status"] == 201)
    failed = next(r for r in results if r["status"] == 503)
    assert ok["match"]["port"] == port
    assert_entry_error(failed, 503, "no_free_port")
    rows = {str(m.id): m for m in Match.objects.all()}
    assert rows[ok["match"]["id"]].status == MatchStatus.WAITING
    (lost,) = [m for key, m in rows.items() if key != ok["match"]["id"]]
    assert lost.status == MatchStatus.FAILED and lost.finish_reason.startswith("no_free_port")
    assert not any(p.live for p in lost.players.all()), "its players must be free again"


@pytest.mark.parametrize(
    "body",
    [[{"players": ["alice", "bob"]}], {}, {"matches": {"players": ["alice", "bob"]}}, {"matches": []},
     {"matches": "alice,bob"}],
    ids=["a list", "no matches", "matches not a list", "empty", "a string"],
)
def test_a_bad_envelope_is_refused_whole(ops_api, players, body):
    assert_error(ops_api.put("/api/matches", body, format="json"), 400, "invalid_request")
    assert not Match.objects.exists()


def test_the_cap_and_the_permissions(ops_api, players, settings):
    settings.GAME_BATCH_MAX_MATCHES = 2
    three = {"matches": [{"players": [f"p{2 * i}", f"p{2 * i + 1}"]} for i in range(3)]}
    assert "2" in assert_error(ops_api.put("/api/matches", three, format="json"), 400, "invalid_request")["detail"]
    assert_error(client_for(None).put("/api/matches", three, format="json"), 401, "not_authenticated")
    assert_error(client_for(players["carol"]).put("/api/matches", three, format="json"), 403, "permission_denied")
    assert not Match.objects.exists()
