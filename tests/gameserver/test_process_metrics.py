"""A game-server process's figures (`arena.gameserver.metrics.ProcessMetrics`):
wake-up durations sorted into the histogram at a flush, and the gauges following
a match that leaves at once, not at the next periodic flush."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from arena.gameserver.clock import LoopStats
from arena.gameserver.metrics import ProcessMetrics, RoomStats
from arena.metrics import definitions


@pytest.fixture(autouse=True)
def _gauges_back_to_zero():
    """This process's gauges count in every later scrape of the machine (they are
    "live" figures of a running pid): leave them as a game server leaves them."""
    yield
    for gauge in (definitions.gameserver_matches, definitions.gameserver_players, definitions.gameserver_spectators):
        gauge.set(0)


def fake_room(match_id: str, players: int, spectators: int) -> SimpleNamespace:
    clients = {f"p{i}": i + 1 for i in range(players)} | {f"s{i}": None for i in range(spectators)}
    room = SimpleNamespace(info=SimpleNamespace(id=match_id), stats=RoomStats(), broadcast=SimpleNamespace(bytes=0),
                           player_sid={i + 1: f"p{i}" for i in range(players)}, clients=clients)
    room.spectator_count = lambda: spectators
    return room


def fake_host(*rooms) -> SimpleNamespace:
    ticker = SimpleNamespace(match_steps=0, stats=LoopStats(), timings=None)
    return SimpleNamespace(matches={r.info.id: SimpleNamespace(room=r) for r in rooms}, ticker=ticker)


def sample(histogram, suffix: str) -> float:
    return next(s.value for m in histogram.collect() for s in m.samples if s.name.endswith(suffix))


def test_wake_up_durations_reach_the_histogram_at_the_flush():
    host = fake_host(fake_room("a", 2, 0))
    metrics = ProcessMetrics(host, interval=5.0)
    work, send = host.ticker.timings  # what the ticker appends to, each wake-up
    count0, sum0 = sample(definitions.tick_seconds, "_count"), sample(definitions.tick_seconds, "_sum")
    for _ in range(30):
        work.append(0.002)
        send.append(0.001)
    assert sample(definitions.tick_seconds, "_count") == count0, "nothing written before the flush"
    metrics.flush()
    assert sample(definitions.tick_seconds, "_count") == count0 + 30
    assert abs(sample(definitions.tick_seconds, "_sum") - sum0 - 0.06) < 1e-9
    assert work == [] and send == []


def test_a_match_that_leaves_updates_the_gauges_at_once():
    staying, leaving = fake_room("stay", 2, 1), fake_room("leave", 2, 5)
    host = fake_host(staying, leaving)
    metrics = ProcessMetrics(host, interval=3600.0)  # no periodic flush would come in time
    metrics.flush()
    assert definitions.gameserver_spectators._value.get() == 6
    metrics.ended(leaving, "finished")
    del host.matches["leave"]
    metrics.released()
    assert definitions.gameserver_spectators._value.get() == 1
    assert definitions.gameserver_players._value.get() == 2
    assert definitions.gameserver_matches._value.get() == 1
