"""The room is game-agnostic, and several matches can share a process.

A second game that lives only here (tests/games/presses.py: first to press N
times) is played end to end through the real API, launcher, room and Socket.IO
clients, in both hosting modes. In a shared process an exception in one match's
game fails that match alone, one match can be stopped without its neighbours, and
SIGTERM ends them all as a shutdown ends one.
"""
from __future__ import annotations

import asyncio
import os
import signal
import socket

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import User

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.launcher.base import stop_match
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import assert_replay_reproduces, game_server_done, pid_alive, port_is_free, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PRESSES = "tests.games.presses"


async def press_until_over(client: GameClient, opponent: GameClient, move: int = 1, timeout: float = 60) -> dict:
    """Press until the match is over, each press once the previous one was applied
    (acked): presses sent during the countdown are dropped as stale, so resend."""
    deadline = asyncio.get_running_loop().time() + timeout
    while opponent.game_over is None:
        assert asyncio.get_running_loop().time() < deadline, "the match did not end"
        seq = await client.send_input(move)
        try:
            await opponent.wait_for(wire.STATE, lambda s, seq=seq: s["acks"].get(client.side, 0) >= seq, timeout=2)
        except TimeoutError:
            continue
    return await opponent.wait_for(wire.GAME_OVER)


async def connected_pair(port: int, tokens: tuple[str, str]) -> tuple[GameClient, GameClient]:
    first, second = GameClient(HOST, port, tokens[0]), GameClient(HOST, port, tokens[1])
    await first.connect(timeout=30)
    await second.connect(timeout=30)
    await first.wait_for(wire.COUNTDOWN, timeout=30)
    return first, second


def pair(ops_api, users, names: tuple[str, str], target: int = 3) -> tuple[dict, tuple[str, str]]:
    created = launch(ops_api, players=names, points_to_win=target)
    return created, (game_token(users[names[0]], created["id"]), game_token(users[names[1]], created["id"]))


def test_a_second_game_is_played_through_the_room(ops_api, users, game_settings, hosting_mode):
    game_settings(GAME_RULES=PRESSES)
    created, tokens = pair(ops_api, users, ("alice", "bob"), target=10)

    async def scenario():
        alice, bob = await connected_pair(created["port"], tokens)
        try:
            assert alice.welcome["field"] == {"game": "presses", "target": 10}
            await bob.send_input(0)  # not a press: the game says it is malformed
            await bob.wait_for(wire.ERROR, lambda e: e["code"] == "invalid_input")
            over = await press_until_over(alice, bob)
            assert over == {"winner": "alice", "score": {"left": 10, "right": 0}, "reason": "points"}
            scores = [p["score"] for name, p in bob.history if name == wire.SCORE]
            assert scores[-1] == {"left": 10, "right": 0} and len(scores) == 10
        finally:
            await alice.close()
            await bob.close()
        return alice, bob

    watchers = run(scenario())
    replay = assert_replay_reproduces(created["id"], *watchers)  # a game of its own, replayed as well
    assert replay["rules"] == {"name": "presses", "version": 1, "config": {"target": 10}} and not replay["repeats"]
    assert [i["move"] for i in replay["inputs"]] == [1] * 10
    match = Match.objects.get(pk=created["id"])
    assert (match.status, match.winner.username, match.finish_reason) == (MatchStatus.FINISHED, "alice", "points")
    assert wait_until(lambda: port_is_free(created["port"]), timeout=30), "the port was not freed"
    if hosting_mode == 1:
        assert wait_until(lambda: not pid_alive(match.pid), timeout=30)
    # the players are free again, and play again
    again, _ = pair(ops_api, users, ("alice", "bob"))
    assert again["status"] == "waiting"


def test_an_exception_in_one_match_fails_it_alone(ops_api, users, game_settings):
    game_settings(GAME_RULES=PRESSES, GAME_MATCHES_PER_PROCESS="8")
    first, first_tokens = pair(ops_api, users, ("alice", "bob"))
    second, second_tokens = pair(ops_api, users, ("carol", "dave"))
    pids = dict(Match.objects.filter(pk__in=[first["id"], second["id"]]).values_list("id", "pid"))
    assert len(set(pids.values())) == 1, "both matches should share one process"
    assert first["port"] != second["port"]

    async def scenario():
        alice, bob = await connected_pair(first["port"], first_tokens)
        carol, dave = await connected_pair(second["port"], second_tokens)
        try:
            over = await press_until_over(carol, dave, move=-1)  # the presses game raises on -1
            assert over["winner"] is None and over["reason"] == "error"
            # the neighbour plays on to its end
            assert (await press_until_over(alice, bob))["winner"] == "alice"
        finally:
            for client in (alice, bob, carol, dave):
                await client.close()

    run(scenario())
    failed = Match.objects.get(pk=second["id"])
    assert failed.status == MatchStatus.FAILED
    assert failed.finish_reason.startswith("game_error: RuntimeError: the presses game was told to break")
    assert Match.objects.get(pk=first["id"]).status == MatchStatus.FINISHED
    assert wait_until(lambda: port_is_free(second["port"]), timeout=30), "the failed match's port was not freed"
    assert pid_alive(failed.pid), "the shared process went down with one match"
    again, _ = pair(ops_api, users, ("carol", "dave"))  # its players are free to play again
    assert again["status"] == "waiting"


def test_one_match_of_a_shared_process_is_stopped_alone_and_sigterm_ends_all(ops_api, users, game_settings):
    game_settings(GAME_MATCHES_PER_PROCESS="8")
    first, first_tokens = pair(ops_api, users, ("alice", "bob"))
    second, second_tokens = pair(ops_api, users, ("carol", "dave"))
    pid = Match.objects.get(pk=first["id"]).pid
    assert Match.objects.get(pk=second["id"]).pid == pid

    async def scenario():
        alice, bob = await connected_pair(first["port"], first_tokens)
        carol, dave = await connected_pair(second["port"], second_tokens)
        try:
            assert stop_match(pid, second["id"], "cancelled")
            over = await dave.wait_for(wire.GAME_OVER, timeout=30)
            assert over["reason"] == "cancelled"
            await asyncio.sleep(0.5)
            assert alice.game_over is None and bob.sio.connected, "the neighbour was stopped too"
            os.kill(pid, signal.SIGTERM)
            over = await alice.wait_for(wire.GAME_OVER, timeout=30)
            assert over["reason"] == "shutdown"
        finally:
            for client in (alice, bob, carol, dave):
                await client.close()

    run(scenario())
    statuses = dict(Match.objects.filter(pk__in=[first["id"], second["id"]]).values_list("id", "finish_reason"))
    assert sorted(statuses.values()) == ["cancelled", "shutdown"]
    assert wait_until(lambda: not pid_alive(pid), timeout=30), "SIGTERM did not end the shared process"
    assert port_is_free(first["port"]) and port_is_free(second["port"])


def listening_ports(pid: int) -> set[int]:
    return {c.laddr.port for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN}


def test_launch_failures_in_a_shared_process_end_that_launch_alone(ops_api, users, game_settings, monkeypatch):
    game_settings(GAME_MATCHES_PER_PROCESS="8")
    first = launch(ops_api, ("carol", "dave"))
    pid = Match.objects.get(pk=first["id"]).pid
    assert listening_ports(pid) == {first["port"]}
    # too slow: the launcher gives up; the process drops that match, not its neighbour
    monkeypatch.setattr(settings, "GAME_SERVER_LAUNCH_TIMEOUT", 0)  # this process's deadline only
    response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503 and response.json()["error"] == "launch_timeout", response.content
    assert Match.objects.get(players__user__username="alice").status == MatchStatus.FAILED
    assert wait_until(lambda: listening_ports(pid) == {first["port"]}, timeout=10), listening_ports(pid)
    assert Match.objects.get(pk=first["id"]).status == MatchStatus.WAITING and pid_alive(pid)
    monkeypatch.undo()
    game_settings(GAME_MATCHES_PER_PROCESS="8")
    # no free port: the shared process says so on the launcher's pipe
    with socket.socket() as blocker:
        blocker.bind((HOST, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        game_settings(GAME_SERVER_MIN_PORT=port, GAME_SERVER_MAX_PORT=port)
        response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503 and response.json()["error"] == "no_free_port", response.content
    assert pid_alive(pid) and Match.objects.get(pk=first["id"]).status == MatchStatus.WAITING


def test_a_new_process_is_forked_only_when_all_are_full(ops_api, users, game_settings):
    game_settings(GAME_MATCHES_PER_PROCESS="2")
    first = launch(ops_api, ("alice", "bob"))
    second = launch(ops_api, ("carol", "dave"))
    pid_of = lambda created: Match.objects.get(pk=created["id"]).pid  # noqa: E731
    assert pid_of(first) == pid_of(second)
    User.objects.create_user("erin")
    User.objects.create_user("frank")
    third = launch(ops_api, ("erin", "frank"))
    assert pid_of(third) != pid_of(first), "a full process took a third match"
    # a match ends in the first process: it has room again, and gets the next one
    assert stop_match(pid_of(first), first["id"], "cancelled")
    assert wait_until(lambda: Match.objects.get(pk=first["id"]).status == MatchStatus.CANCELLED, timeout=30)
    assert wait_until(lambda: port_is_free(first["port"]), timeout=30)
    fourth = launch(ops_api, ("alice", "bob"))
    assert pid_of(fourth) == pid_of(second), "the process with room (the older of two) should take it"


def test_a_match_is_stopped_with_a_reason_in_either_mode(ops_api, users, hosting_mode):
    created, tokens = pair(ops_api, users, ("alice", "bob"))
    match = Match.objects.get(pk=created["id"])

    async def scenario():
        alice, bob = await connected_pair(created["port"], tokens)
        try:
            assert stop_match(match.pid, created["id"], "cancelled")
            return await bob.wait_for(wire.GAME_OVER, timeout=30)
        finally:
            await alice.close()
            await bob.close()

    assert run(scenario())["reason"] == "cancelled"
    match.refresh_from_db()
    assert (match.status, match.finish_reason) == (MatchStatus.CANCELLED, "cancelled")
    assert wait_until(lambda: game_server_done(match.pid, created["port"]), timeout=30)
