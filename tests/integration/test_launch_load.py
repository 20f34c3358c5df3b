"""Launch under pressure: many at once, and ports reused as soon as they are free."""
from __future__ import annotations

import threading

import pytest
from django.contrib.auth.models import User
from django.db import connection

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from tests.conftest import TEST_MAX_PORT, client_for, pid_alive, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_fifty_simultaneous_launches_get_distinct_ports(ops_api, users, game_settings):
    game_settings(GAME_SERVER_LAUNCH_TIMEOUT="90")
    names = [f"player{n:02d}" for n in range(100)]
    User.objects.bulk_create([User(username=name) for name in names])
    results: list[tuple[int, dict]] = []
    start = threading.Barrier(50)

    def put(pair):
        client = client_for(users["ops"])
        try:
            start.wait()
            response = client.put("/api/match", {"players": pair}, format="json")
            results.append((response.status_code, response.json()))
        finally:
            connection.close()

    threads = [threading.Thread(target=put, args=(names[2 * i : 2 * i + 2],)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert [code for code, _ in results] == [201] * 50, [b for c, b in results if c != 201][:3]
    ports = [body["port"] for _, body in results]
    assert len(set(ports)) == 50
    assert Match.objects.filter(status="waiting").count() == 50
    pids = list(Match.objects.values_list("pid", flat=True))
    assert len(set(pids)) == 50 and all(pid_alive(pid) for pid in pids)


def test_port_of_a_finished_match_is_reused_at_once(ops_api, users, game_settings):
    game_settings(GAME_SERVER_MIN_PORT=TEST_MAX_PORT, GAME_SERVER_MAX_PORT=TEST_MAX_PORT)
    first = launch(ops_api, points_to_win=1)
    tokens = {name: game_token(users[name], first["id"]) for name in ("alice", "bob")}

    async def play():
        clients = [GameClient(HOST, first["port"], tokens[name]) for name in ("alice", "bob")]
        for client in clients:
            await client.connect()
        await clients[0].wait_for(wire.GAME_OVER, timeout=20)
        for client in clients:
            await client.wait_for("disconnect", timeout=5)

    run(play())
    pid = Match.objects.get(pk=first["id"]).pid
    assert wait_until(lambda: not pid_alive(pid), timeout=10)
    second = launch(ops_api, ("alice", "bob"))
    assert second["port"] == first["port"] == TEST_MAX_PORT
