"""The fleet end to end: real game-host agents (Celery workers on a real broker),
real game servers on 127.0.0.2-4, real Socket.IO clients, real PostgreSQL."""
from __future__ import annotations

import asyncio
import signal
import threading
import time
import urllib.request

from datetime import timedelta
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from django.utils import timezone
from django.db import connection

from channels.testing import WebsocketCommunicator
from rest_framework.authtoken.models import Token

from arena.client import GameClient
from arena.fleet.models import GameHost
from arena.gameserver import wire
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from arena.matches.supervisor import supervise_once
from tests.conftest import client_for, port_is_free, run
from tests.fleet.conftest import HOST_TIMEOUT, wait_for, wait_gone
from tests.integration.test_game import game_token
from tests.integration.test_metrics import moved, parse, scrape
from tests.integration.test_resilience import dodge
from tests.notifications.conftest import WS_PATH, CommunicatorSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def players(users):
    """users, plus p0..p15 for many matches at once."""
    made = dict(users)
    for i in range(16):
        made[f"p{i}"] = User.objects.create_user(f"p{i}", password=f"p{i}")
    return made


def put_match(api, players, **extra):
    return api.put("/api/match", {"players": list(players), **extra}, format="json")


def launched(api, players, **extra) -> dict:
    response = put_match(api, players, **extra)
    assert response.status_code == 201, response.content
    return response.json()


DATABASE_OVER_TCP = not str(settings.DATABASES["default"].get("HOST") or "/").startswith("/")


def database_connections(host) -> set[tuple[str, int]]:
    """The agent process's own open TCP connections to the database (local addresses)."""
    port = int(settings.DATABASES["default"].get("PORT") or 5432)
    agent = psutil.Process(host.proc.pid)
    return {tuple(c.laddr) for c in agent.net_connections(kind="tcp") if c.raddr and c.raddr.port == port}


def host_of(match_id: str) -> str:
    return Match.objects.get(pk=match_id).host_name


async def play_to_the_end(host: str, port: int, tokens: list[str]) -> list[dict]:
    """Two players who miss every ball: the match ends as fast as the rules allow."""
    clients = [GameClient(host, port, token) for token in tokens]
    try:
        for client in clients:
            await client.connect()
        await asyncio.gather(*(dodge(c) for c in clients))
        return [c.game_over for c in clients]
    finally:
        for client in clients:
            await client.close()


def test_launches_spread_by_free_capacity_a_full_host_gets_none_and_a_match_plays(fleet, ops_api, players):
    a, b, c = fleet.start(("a", 3), ("b", 2), ("c", 1))
    before = scrape()
    placed = []
    a_connections = [database_connections(a)]
    for i in range(6):
        created = launched(ops_api, (f"p{2 * i}", f"p{2 * i + 1}"), points_to_win=1)
        name = host_of(created["id"])
        if name == a.name:
            a_connections.append(database_connections(a))
        host = next(h for h in (a, b, c) if h.name == name)
        # the address players are told is the chosen host's, and the port one of its own
        assert created["host"] == host.address and host.ports[0] <= created["port"] <= host.ports[1]
        placed.append(name)
    # always the host with the most free capacity (ties by name): a, a|b, ...
    assert placed == [a.name, a.name, b.name, a.name, b.name, c.name]
    assert {h.name: placed.count(h.name) for h in (a, b, c)} == {a.name: 3, b.name: 2, c.name: 1}
    # host a served its 3 launches on a database connection it opened for the
    # first and kept (no connect on each launch's path); seen on TCP connections,
    # as make test's PostgreSQL on 127.0.0.1 has them
    if DATABASE_OVER_TCP:
        opened_for_launches = a_connections[1] - a_connections[0]
        assert opened_for_launches and opened_for_launches <= a_connections[3], a_connections

    # every host is full: no capacity, a clear 503, the match failed, its players free
    response = put_match(ops_api, ("alice", "bob"))
    assert response.status_code == 503 and response.json()["error"] == "no_capacity", response.content
    failed = Match.objects.get(players__user__username="alice")
    assert failed.status == MatchStatus.FAILED and failed.finish_reason.startswith("no_capacity")
    assert not MatchPlayer.objects.filter(user__username__in=["alice", "bob"], live=True).exists()

    # the match on host c is played to its end through the address the API returned
    on_c = Match.objects.get(host_name=c.name)
    tokens = [game_token(players[p.user.username], str(on_c.id)) for p in on_c.players.all()]
    overs = run(play_to_the_end(on_c.host, on_c.port, tokens))
    assert all(o["winner"] and o["reason"] == "points" for o in overs)
    wait_for(lambda: Match.objects.get(pk=on_c.pk).status == MatchStatus.FINISHED, 10)

    # the web side counted its fleet launches; host c's own exporter its local ones
    # and the game it served (the three agents of this test share one machine: each
    # exporter shows all of theirs)
    web = scrape()
    assert moved(before, web, 'arena_launches_total{outcome="ok",strategy="fleet"}') == 6
    assert moved(before, web, 'arena_launches_total{outcome="no_capacity",strategy="fleet"}') == 1
    assert moved(before, web, 'arena_launch_seconds_count{strategy="fleet"}') == 6
    with urllib.request.urlopen(f"http://{c.address}:{c.ports[1]}/metrics", timeout=5) as response:
        host = parse(response.read().decode())
    assert host['arena_launches_total{outcome="ok",strategy="warm"}'] >= 6
    assert host["arena_gameserver_ticks_total"] > 0

    # its slot is free again: the next launch goes to c (the only host with room)
    again = launched(ops_api, ("alice", "bob"))
    assert host_of(again["id"]) == c.name and again["host"] == c.address


def test_concurrent_launches_never_overfill_a_host(fleet, ops_api, players):
    (only,) = fleet.start(("one", 1))
    results: list[int] = []
    barrier = threading.Barrier(6)

    def launch(i: int) -> None:
        try:
            barrier.wait(30)
            response = put_match(client_for(players["ops"]), (f"p{2 * i}", f"p{2 * i + 1}"))
            results.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=launch, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert sorted(results) == [201, 503, 503, 503, 503, 503]
    assert Match.objects.filter(host_name=only.name).exclude(status=MatchStatus.FAILED).count() == 1
    assert Match.objects.filter(status=MatchStatus.FAILED, finish_reason__startswith="no_capacity").count() == 5


def test_a_killed_host_fails_its_matches_and_launches_go_elsewhere(fleet, ops_api, players):
    a, b = fleet.start(("a", 2), ("b", 1))
    first = launched(ops_api, ("alice", "bob"))
    second = launched(ops_api, ("carol", "dave"))
    assert host_of(first["id"]) == host_of(second["id"]) == a.name
    servers = a.game_servers()
    assert len(servers) >= 2
    alice_token = Token.objects.get_or_create(user=players["alice"])[0].key
    failed: set[str] = set()

    def kill_and_supervise() -> float:
        a.signal_all(signal.SIGKILL)  # the agent, its zygote and its game servers: the machine is gone
        wait_gone([a.proc.pid, *servers])
        killed_at = time.monotonic()
        try:
            wait_for(lambda: failed.update(str(m) for m in supervise_once()) or {first["id"], second["id"]} <= failed,
                     HOST_TIMEOUT + 30, interval=0.25, message="the lost host's matches were not failed")
        finally:
            connection.close()
        return time.monotonic() - killed_at

    async def notified() -> tuple[dict, float]:
        """alice, on her notification socket, hears that her match failed."""
        from arena.asgi import application

        sock = CommunicatorSocket(WebsocketCommunicator(
            application, f"{WS_PATH}?token={alice_token}", headers=[(b"host", b"127.0.0.1:8000")]))
        connected, _ = await sock.communicator.connect(timeout=10)
        assert connected
        try:
            await sock.wait_for("hello", timeout=10)
            took = await asyncio.to_thread(kill_and_supervise)
            return await sock.wait_for("match.failed", first["id"], timeout=15), took
        finally:
            await sock.close()

    event, took = run(notified())
    assert event["reason"].startswith("host_lost"), event
    for match_id in (first["id"], second["id"]):
        match = Match.objects.get(pk=match_id)
        assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("host_lost"), match.finish_reason
    # the players are free at once, and their next matches land on the other host
    assert not MatchPlayer.objects.filter(live=True).exists()
    again = launched(ops_api, ("alice", "bob"))
    assert host_of(again["id"]) == b.name and again["host"] == b.address
    response = put_match(ops_api, ("carol", "dave"))
    assert response.status_code == 503 and response.json()["error"] == "no_capacity"
    print(f"host loss noticed {took:.1f} s after the kill (GAME_HOST_TIMEOUT {HOST_TIMEOUT:g} s)")


def test_a_partitioned_host_is_failed_over_and_writes_nothing_when_it_returns(fleet, ops_api, players):
    (a,) = fleet.start(("a", 2))
    created = launched(ops_api, ("alice", "bob"), points_to_win=21)
    tokens = [game_token(players[name], created["id"]) for name in ("alice", "bob")]

    async def scenario():
        alice, bob = (GameClient(created["host"], created["port"], t) for t in tokens)
        await alice.connect()
        await bob.connect()
        await alice.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=15)
        a.signal_all(signal.SIGSTOP)  # the whole host stops answering: agent, zygote, game server
        try:
            await asyncio.to_thread(
                wait_for, lambda: str(created["id"]) in {str(m) for m in _supervise()}, HOST_TIMEOUT + 30, 0.25
            )
        finally:
            a.signal_all(signal.SIGCONT)  # the partition heals
        over = await alice.wait_for(wire.GAME_OVER, timeout=30)
        await alice.close()
        await bob.close()
        return over

    over = run(scenario())
    assert over["reason"] == "host_lost" and over["winner"] is None
    wait_gone(a.game_servers() or [])
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("host_lost")
    assert match.winner_id is None and all(p.score == 0 for p in match.players.all())
    log = (Path(settings.GAME_SERVER_LOG_DIR) / f"{created['id']}.log").read_text()
    assert "no longer live here (host_lost)" in log
    # the host is back: it heartbeats again and takes new matches
    wait_for(lambda: _alive(a.name), 20)
    assert host_of(launched(ops_api, ("alice", "bob"))["id"]) == a.name


def _supervise():
    try:
        return supervise_once()
    finally:
        connection.close()


def _alive(name: str) -> bool:
    from arena.fleet.selectors import host_get, host_is_alive

    host = host_get(name)
    return bool(host and host_is_alive(host))


def test_a_draining_host_finishes_its_match_takes_no_new_one_and_exits(fleet, ops_api, players):
    (a,) = fleet.start(("a", 3), extra=["--exit-when-drained"])
    (b,) = fleet.start(("b", 1))
    created = launched(ops_api, ("alice", "bob"), points_to_win=1)
    assert host_of(created["id"]) == a.name

    staff = User.objects.create_user("root", password="root", is_staff=True)
    assert client_for(players["alice"]).post(f"/api/hosts/{a.name}/drain").status_code == 403
    assert client_for(staff).post("/api/hosts/nosuchhost/drain").status_code == 404
    response = client_for(staff).post(f"/api/hosts/{a.name}/drain")
    assert response.status_code == 200 and response.json()["draining"] is True
    listed = {h["name"]: h for h in client_for(staff).get("/api/hosts").json()["hosts"]}
    assert listed[a.name]["alive"] and listed[a.name]["draining"] and listed[a.name]["live_matches"] == 1
    assert listed[b.name]["free"] == 1 and not listed[b.name]["draining"]
    assert client_for(players["alice"]).get("/api/hosts").status_code == 403

    # a has the most free capacity but drains: the next match goes to b
    assert host_of(launched(ops_api, ("carol", "dave"))["id"]) == b.name
    # the running match plays to its end, then the agent exits by itself
    tokens = [game_token(players[name], created["id"]) for name in ("alice", "bob")]
    overs = run(play_to_the_end(created["host"], created["port"], tokens))
    assert all(o["reason"] == "points" for o in overs)
    assert a.proc.wait(60) == 0
    assert Match.objects.get(pk=created["id"]).status == MatchStatus.FINISHED


def test_delete_cancels_a_game_running_on_another_host(fleet, ops_api, players):
    fleet.start(("a", 1), ("b", 1))
    created = launched(ops_api, ("alice", "bob"), points_to_win=21)
    other = launched(ops_api, ("carol", "dave"))
    assert {created["host"], other["host"]} == {"127.0.0.2", "127.0.0.3"}
    server = Match.objects.get(pk=created["id"]).pid
    tokens = [game_token(players[name], created["id"]) for name in ("alice", "bob")]

    async def scenario():
        clients = [GameClient(created["host"], created["port"], t) for t in tokens]
        clients.append(GameClient(created["host"], created["port"]))  # a spectator
        for client in clients:
            await client.connect()
        await clients[0].wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=15)
        # neither a player nor a user without the permission may cancel it
        denied = await asyncio.to_thread(_delete, players["alice"], created["id"])
        assert denied.status_code == 403 and denied.json()["error"] == "permission_denied"
        response = await asyncio.to_thread(_delete, players["ops"], created["id"])  # its creator
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
        overs = [await c.wait_for(wire.GAME_OVER, timeout=10) for c in clients]
        for client in clients:
            await client.close()
        return overs

    overs = run(scenario())
    assert all(o["reason"] == "cancelled" and o["winner"] is None for o in overs)
    wait_gone([server])
    assert port_is_free(created["port"], created["host"])
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.CANCELLED and match.finish_reason == "cancelled by ops"
    # the other host's match is untouched; cancelling twice is a 409
    assert Match.objects.get(pk=other["id"]).status == MatchStatus.WAITING
    again = _delete(players["ops"], created["id"])
    assert again.status_code == 409 and again.json()["error"] == "match_over"
    # a user with matches.change_match may cancel any match
    changer = User.objects.create_user("mod", password="mod")
    changer.user_permissions.add(Permission.objects.get(codename="change_match"))
    assert _delete(changer, other["id"]).status_code == 200


def _delete(user, match_id: str):
    try:
        return client_for(user).delete(f"/api/match/{match_id}")
    finally:
        connection.close()


def test_a_host_that_does_not_answer_is_suspect_and_the_launch_goes_to_the_next(fleet, ops_api, players, monkeypatch):
    a, b = fleet.start(("a", 3), ("b", 1))
    monkeypatch.setattr(settings, "GAME_HOST_ANSWER_TIMEOUT", 3.0)
    a.signal_all(signal.SIGSTOP)  # a still looks alive (heartbeat fresh) but answers nothing
    try:
        created = launched(ops_api, ("alice", "bob"))
    finally:
        a.signal_all(signal.SIGCONT)
    assert host_of(created["id"]) == b.name and created["host"] == b.address
    # while suspect, a gets no match even with the most room (its suspicion extended here so a
    # loaded machine cannot outlast it): b is full, so no capacity
    assert GameHost.objects.get(name=a.name).suspect_until is not None
    GameHost.objects.filter(name=a.name).update(suspect_until=timezone.now() + timedelta(seconds=60))
    response = put_match(ops_api, ("carol", "dave"))
    assert response.status_code == 503 and response.json()["error"] == "no_capacity"
    # a reads the launch late: expired (and no longer its match), it forks nothing
    wait_for(lambda: "Discarding revoked task: arena.fleet.launch[" in a.log_text(), 30,
             message="a never saw the late launch")
    assert a.game_servers() == []
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.WAITING and match.host_name == b.name
