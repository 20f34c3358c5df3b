"""Bad days: players who drop and come back, processes killed, time limits, crowds,
and garbage on the wire. Every fault is produced for real."""
from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import socketio

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from arena.matches.supervisor import supervise_once
from arena.pong.config import Config
from tests.conftest import assert_replay_reproduces, pid_alive, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

# Every test here runs in both hosting modes (GAME_MATCHES_PER_PROCESS 1 and 8).
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.usefixtures("hosting_mode")]


def two_players(ops_api, users, **extra):
    created = launch(ops_api, **extra)
    tokens = {name: game_token(users[name], created["id"]) for name in ("alice", "bob")}
    return created, tokens


async def connect_both(port, tokens):
    alice, bob = GameClient(HOST, port, tokens["alice"]), GameClient(HOST, port, tokens["bob"])
    await alice.connect()
    await bob.connect()
    await bob.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=5)
    return alice, bob


def test_dropped_player_pauses_the_game_and_resumes_on_return(ops_api, users, game_settings):
    game_settings(GAME_RECONNECT_GRACE="10")
    created, tokens = two_players(ops_api, users, points_to_win=1)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        await alice.close()  # alice's Wi-Fi drops
        paused = await bob.wait_for(wire.PAUSED, timeout=5)
        assert paused["missing"] == ["alice"] and paused["grace"] == 10
        seen = len(bob.history)
        await asyncio.sleep(0.5)
        frozen = [p for n, p in bob.history[seen:] if n == wire.STATE]
        assert not frozen, "the game must not run while paused"
        back = GameClient(HOST, created["port"], tokens["alice"], transports=["polling"])
        await back.connect()
        assert back.role == "player" and back.side == "left"
        await bob.wait_for(wire.COUNTDOWN, since=seen, timeout=5)
        over = await bob.wait_for(wire.GAME_OVER, timeout=20)
        assert over["reason"] == "points"
        return over, bob

    over, bob = run(scenario())
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.FINISHED and match.winner.username == over["winner"]
    # the pause is in the replay, which reproduces the match across it
    replay = assert_replay_reproduces(created["id"], bob)
    [pause] = replay["pauses"]
    assert pause["missing"] == ["alice"] and pause["resumed_tick"] == pause["tick"] > 0


def test_player_who_does_not_come_back_forfeits(ops_api, users, game_settings):
    game_settings(GAME_RECONNECT_GRACE="1")
    created, tokens = two_players(ops_api, users, points_to_win=5)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        await bob.close()
        return await alice.wait_for(wire.GAME_OVER, timeout=10)

    over = run(scenario())
    assert over == {"winner": "alice", "score": over["score"], "reason": "forfeit"}
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.FINISHED and match.finish_reason == "forfeit"
    assert match.winner.username == "alice"


def test_both_players_gone_cancels(ops_api, users, game_settings):
    game_settings(GAME_RECONNECT_GRACE="1")
    created, tokens = two_players(ops_api, users)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        spectator = GameClient(HOST, created["port"])
        await spectator.connect()
        await alice.close()
        await bob.close()
        return await spectator.wait_for(wire.GAME_OVER, timeout=10)

    over = run(scenario())
    assert over["winner"] is None
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.CANCELLED and match.finish_reason == "abandoned"


def test_second_connection_replaces_the_first(ops_api, users):
    created, tokens = two_players(ops_api, users)

    async def scenario():
        first = GameClient(HOST, created["port"], tokens["alice"])
        await first.connect()
        second = GameClient(HOST, created["port"], tokens["alice"])
        await second.connect()
        error = await first.wait_for(wire.ERROR, timeout=5)
        assert error["code"] == "replaced"
        await first.wait_for("disconnect", timeout=5)
        assert second.sio.connected and second.role == "player"
        assert second.welcome["connected"] == ["alice"]
        await second.close()

    run(scenario())


def test_sigterm_cancels_saves_and_exits(ops_api, users):
    created, tokens = two_players(ops_api, users)
    match = Match.objects.get(pk=created["id"])

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        os.kill(match.pid, signal.SIGTERM)
        return await alice.wait_for(wire.GAME_OVER, timeout=5)

    over = run(scenario())
    assert over["reason"] == "shutdown" and over["winner"] is None
    match.refresh_from_db()
    assert match.status == MatchStatus.CANCELLED and match.finish_reason == "shutdown"
    assert wait_until(lambda: not pid_alive(match.pid), timeout=5)


def test_killed_server_is_detected_by_the_supervisor(ops_api, users, game_settings):
    game_settings(GAME_HEARTBEAT_INTERVAL="0.3", GAME_HEARTBEAT_TIMEOUT="1.5")
    created, tokens = two_players(ops_api, users)
    match = Match.objects.get(pk=created["id"])

    async def scenario():
        await connect_both(created["port"], tokens)
        os.killpg(match.pid, signal.SIGKILL)

    run(scenario())
    assert supervise_once() == []  # the heartbeat is still fresh
    killed_at = time.monotonic()
    assert wait_until(lambda: supervise_once() != [] or Match.objects.get(pk=match.pk).status == "failed", timeout=5)
    assert time.monotonic() - killed_at <= 1.5 + 2.0  # the heartbeat timeout, plus slack for a busy machine
    match.refresh_from_db()
    assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("server_lost")
    # its players are free again
    assert launch(ops_api)["status"] == "waiting"


def crossing_y(ball: dict, side: str, field: Config = Config()) -> float:
    """Where the ball's centre will cross `side`'s paddle face, with wall bounces."""
    face = field.paddle_inset + field.paddle_width
    x_face = face if side == "left" else field.width - face
    low, high = field.ball_radius, field.height - field.ball_radius
    y = ball["y"] + ball["vy"] * (x_face - ball["x"]) / ball["vx"]
    span = high - low
    folded = (y - low) % (2 * span)  # unfold the bounces: a mirror every `span`
    return low + (folded if folded <= span else 2 * span - folded)


async def dodge(client: GameClient) -> None:
    """Miss every ball, so that points come as fast as the rules allow.

    Once the ball heads this way, the paddle goes to the wall away from where
    the ball will cross its line; that takes at most 0.5 s and the ball needs at
    least 1.4 s to arrive, so a slow machine still misses in time.
    """
    last, seen = None, 0
    while client.game_over is None:
        try:
            await client.wait_for(wire.STATE, since=seen, timeout=1)
        except TimeoutError:
            continue
        seen = len(client.history)
        ball = client.state["ball"]
        coming = ball["vx"] < 0 if client.side == "left" else ball["vx"] > 0
        if not coming:
            continue
        move = -1 if crossing_y(ball, client.side) > Config().height / 2 else 1
        if move != last:
            await client.send_input(move)
            last = move


@pytest.mark.parametrize("duration, expected", [("1", "cancelled"), ("6", "finished")])
def test_time_limit(ops_api, users, game_settings, duration, expected):
    """A point takes 2.4-2.7 s of play (serve delay, then the ball crosses half the
    field) and the next one goes the same way: 1 s ends 0-0; 6 s ends 1-0 or 2-0,
    and still 1-0 if one player fails to dodge once (that rally takes ~4.9 s)."""
    game_settings(GAME_MAX_DURATION=duration)
    created, tokens = two_players(ops_api, users, points_to_win=21)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        dodgers = [asyncio.create_task(dodge(c)) for c in (alice, bob)]
        over = await alice.wait_for(wire.GAME_OVER, timeout=15)
        await asyncio.gather(*dodgers)
        return over

    over = run(scenario())
    assert over["reason"] == "time_limit"
    match = Match.objects.select_related("winner").get(pk=created["id"])
    assert match.status == expected and match.finish_reason == "time_limit"
    if expected == "finished":
        assert sum(over["score"].values()) >= 1
        leader = max(over["score"], key=over["score"].get)
        assert match.winner_side == leader
    else:
        assert over["score"] == {"left": 0, "right": 0} and over["winner"] is None


def test_spectator_cap_refuses_spectators_never_players(ops_api, users, game_settings):
    game_settings(GAME_MAX_SPECTATORS="1")
    created, tokens = two_players(ops_api, users)

    async def scenario():
        watcher = GameClient(HOST, created["port"])
        await watcher.connect()
        extra = GameClient(HOST, created["port"])
        with pytest.raises(socketio.exceptions.ConnectionError) as refused:
            await extra.connect()
        assert refused.value
        reason = await extra.wait_for("connect_error", timeout=2)
        assert reason["data"]["code"] == "spectators_full" and reason["message"]
        alice, bob = await connect_both(created["port"], tokens)
        assert (alice.role, bob.role) == ("player", "player")
        await watcher.close()
        late = GameClient(HOST, created["port"])  # a seat is free again
        await late.connect()
        assert late.role == "spectator"
        for c in (alice, bob, late):
            await c.close()

    run(scenario())


def test_garbage_and_floods_do_not_hurt_the_game(ops_api, users):
    created, tokens = two_players(ops_api, users, points_to_win=1)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        spectator = GameClient(HOST, created["port"])
        await spectator.connect()
        seen = len(alice.history)
        # reserved names: must not be taken for a real (dis)connection
        await alice.emit("connect", {"token": tokens["bob"]})
        await alice.emit("disconnect", "transport close")
        await spectator.emit("disconnect")
        await alice.emit("no_such_event", [1, 2, 3])
        await alice.emit(wire.INPUT, {"seq": 1, "move": 1}, "extra")
        await alice.emit(wire.INPUT, None)
        def errors_since(start):
            return [p["code"] for n, p in alice.history[start:] if n == wire.ERROR]

        deadline = time.monotonic() + 5
        while len(errors_since(seen)) < 4 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        assert sorted(errors_since(seen)) == ["invalid_input", "invalid_input", "reserved_event", "unknown_event"]
        # a flood of inputs: dropped beyond the cap, the game keeps ticking
        started = time.monotonic()
        first = alice.state["tick"]
        for n in range(2000):
            await alice.sio.emit(wire.INPUT, {"seq": 100 + n, "move": (n % 3) - 1})
        await asyncio.sleep(1.0)
        ticks = alice.state["tick"] - first
        elapsed = time.monotonic() - started
        assert ticks >= 30 * elapsed, f"{ticks} ticks in {elapsed:.2f} s"  # 60/s; half leaves room for a busy machine
        assert alice.sio.connected and bob.sio.connected and spectator.sio.connected
        over = await spectator.wait_for(wire.GAME_OVER, timeout=20)
        assert over["reason"] == "points"

    run(scenario())
    assert Match.objects.get(pk=created["id"]).status == MatchStatus.FINISHED


def test_oversized_message_closes_only_that_connection(ops_api, users, game_settings):
    game_settings(GAME_RECONNECT_GRACE="10")
    created, tokens = two_players(ops_api, users, points_to_win=1)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        await alice.sio.emit(wire.INPUT, {"seq": 1, "move": 0, "pad": "x" * 200_000})
        await alice.wait_for("disconnect", timeout=5)
        assert bob.sio.connected
        await bob.wait_for(wire.PAUSED, timeout=5)
        back = GameClient(HOST, created["port"], tokens["alice"])
        await back.connect()
        over = await bob.wait_for(wire.GAME_OVER, timeout=20)
        assert over["reason"] == "points"

    run(scenario())
    assert Match.objects.get(pk=created["id"]).status == MatchStatus.FINISHED
