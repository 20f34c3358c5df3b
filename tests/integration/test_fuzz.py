"""Property: whatever a player or a spectator sends, the match goes on and ends
correctly. Hypothesis throws arbitrary event names and payloads at a live game
server while its match runs."""
from __future__ import annotations

import asyncio
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.integration.test_game import HOST, game_token, launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
payloads = json_values | st.binary(max_size=64) | st.fixed_dictionaries(
    {"seq": st.integers() | st.floats() | st.text(max_size=3), "move": st.integers(-3, 3) | st.none()}
)
event_names = st.sampled_from(
    ["connect", "disconnect", "input", "ping", "welcome", "state", "error", "game_over", "message", "*"]
) | st.text(min_size=1, max_size=30)
messages = st.tuples(st.sampled_from(["player", "spectator"]), event_names, st.lists(payloads, max_size=3))


class LoopThread:
    """An event loop in a thread, so Hypothesis examples share live connections."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


def test_arbitrary_messages_never_break_a_match(ops_api, users):
    created = launch(ops_api, points_to_win=3)
    port = created["port"]
    tokens = {name: game_token(users[name], created["id"]) for name in ("alice", "bob")}
    runner = LoopThread()
    clients: dict[str, GameClient] = {}
    try:

        async def connect():
            clients = {
                "player": GameClient(HOST, port, tokens["alice"]),
                "bob": GameClient(HOST, port, tokens["bob"]),
                "spectator": GameClient(HOST, port),
            }
            for client in clients.values():
                await client.connect()
            await clients["spectator"].wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=10)
            return clients

        clients.update(runner.call(connect()))

        async def throw(batch):
            for who, event, args in batch:
                await clients[who].sio.emit(event, tuple(args) if len(args) != 1 else args[0])
            # the server still answers everyone, and still runs the game
            for client in clients.values():
                if client.game_over is None:
                    await client.ping(timeout=5)

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(messages, max_size=15))
        def fuzz(batch):
            if clients["spectator"].game_over is not None:
                return
            runner.call(throw(batch))
            for client in clients.values():
                assert client.sio.connected or client.game_over is not None

        fuzz()

        async def finish():
            return [await c.wait_for(wire.GAME_OVER, timeout=60) for c in clients.values()]

        overs = runner.call(finish(), timeout=90)
    finally:
        async def close_all():
            for client in clients.values():
                await client.close()

        runner.call(close_all(), timeout=10)
        runner.stop()
    assert overs[0] == overs[1] == overs[2]
    over = overs[0]
    assert over["reason"] == "points" and max(over["score"].values()) == 3
    match = Match.objects.select_related("winner").get(pk=created["id"])
    assert match.status == MatchStatus.FINISHED
    assert match.winner.username == over["winner"]
    assert {p.side: p.score for p in match.players.all()} == over["score"]
