"""`python -m bench.replay`: what recording a replay costs, and how big one is.

Matches are simulated as the room plays them (inputs applied before the step from
their tick, a snapshot every 2 of 60 ticks a second) through the pure Pong rules
and recorded by `arena.gameserver.recorder.Recorder`; nothing else runs, so the
figures are the recorder's own:

* the stored size (`arena.matches.replays.encode`) of a 5-minute match, for bots
  changing their move from 2 to 60 times a second per side (60: one per tick,
  the most the room applies);
* the CPU the recorder adds per match-second while playing: a snapshot's hash
  and bookkeeping (its packet encoding is the broadcast's, made once for both)
  and each applied input's tuple;
* a room's own hot path (`Room.step` at 60 Hz, `Room.flush` with a snapshot at
  30 Hz, 10 inputs a second, no clients) with recording on and off, alternating:
  what recording adds to a match's CPU without the network's noise;
* at the end: building and encoding the recording (off the event loop, in a
  thread), and the re-simulation behind ``GET /api/match/<id>/replay/frames``.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
django.setup()

from arena.gameserver.broadcast import encode_event  # noqa: E402
from arena.gameserver.recorder import Recorder  # noqa: E402
from arena.matches import replays  # noqa: E402
from arena.pong.game import create  # noqa: E402
from bench.common import save_result, table  # noqa: E402

TICK_RATE = 60
SNAPSHOT_EVERY = 2


def simulate(
    *, seconds: float, seed: int = 7, points_to_win: int = 5, change: float = 0.1, repeat: float = 0.0,
    late_every: int = 0, pause_at: int | None = None, rules=create,
) -> Recorder:
    """A match played like the room plays it, recorded: each tick each side changes
    its move with probability `change` (or sends the same again with `repeat`);
    snapshots after each batch of steps (one more step in every `late_every`-th
    batch, as after a late wake-up), a pause at tick `pause_at` (countdown
    snapshot again at the same tick), the end and its last snapshot."""
    game = rules(seed=seed, points_to_win=points_to_win)
    recorder = Recorder(game, seed=seed, tick_rate=TICK_RATE, snapshot_every=SNAPSHOT_EVERY)
    rng = random.Random(seed)
    acks = {side: 0 for side in game.sides}
    seqs = dict(acks)
    moves = dict(acks)
    recorder.snapshot(game.tick, game.snapshot(acks))  # the countdown's
    next_snapshot = 0
    wake = 0
    while game.tick < seconds * TICK_RATE and game.winner() is None:
        wake += 1
        steps = SNAPSHOT_EVERY + (1 if late_every and not wake % late_every else 0)
        for _ in range(steps):
            for side in game.sides:
                roll = rng.random()
                if roll < change:
                    moves[side] = rng.choice([m for m in (-1, 0, 1) if m != moves[side]])
                elif roll <= 1 - repeat:
                    continue
                seqs[side] += 1
                recorder.input(game.tick, side, seqs[side], moves[side])
                game.apply_input(side, moves[side])
                acks[side] = seqs[side]
            before = dict(game.score())
            game.step(1.0 / TICK_RATE)
            if game.score() != before:
                scorer = next(s for s in game.sides if game.score()[s] > before[s])
                recorder.point(game.tick, scorer, game.score())
            if game.winner() is not None or game.tick >= seconds * TICK_RATE:
                break
        if game.tick >= next_snapshot:
            next_snapshot = game.tick + SNAPSHOT_EVERY
            recorder.snapshot(game.tick, game.snapshot(acks))
        if pause_at is not None and game.tick >= pause_at:
            pause_at = None
            recorder.paused(game.tick, ["bob"])
            recorder.resumed(game.tick)
            recorder.snapshot(game.tick, game.snapshot(acks))  # the countdown's, at the same tick
    winner = game.winner()
    recorder.ended(game.tick, status="finished", reason="points" if winner else "time_limit",
                   winner=winner, score=game.score())
    recorder.snapshot(game.tick, game.snapshot(acks))  # the last one, sent with game_over
    return recorder


async def room_ms_per_match_second(record: bool, seconds: float) -> float:
    """CPU of one room's step and flush per second of play (see the module docstring)."""
    from arena.gameserver.contract import MatchInfo, Seat
    from arena.gameserver.room import GameSettings, Room
    from arena.gameserver.ticker import Ticker

    class Store:
        async def publish_score(self, score) -> None:
            pass

    info = MatchInfo(id="00000000-0000-0000-0000-000000000001", points_to_win=1000,
                     seats=(Seat(1, "alice", "left"), Seat(2, "bob", "right")))
    room = Room(info, Store(), GameSettings(record_replays=record), create(seed=1, points_to_win=1000),
                Ticker(rate=TICK_RATE), None, seed=1)
    room.player_sid = {1: "a", 2: "b"}  # both present: play goes on
    rng = random.Random(1)
    seq = 0
    started = time.process_time()
    for tick in range(int(seconds * TICK_RATE)):
        if rng.random() < 10 / TICK_RATE:
            seq += 1
            room.inputs["left"].append((seq, rng.choice((-1, 0, 1))))
        room.step(1.0 / TICK_RATE)
        if tick % SNAPSHOT_EVERY:
            await room.flush()
    return (time.process_time() - started) / seconds * 1e3


def per_call_us(fn, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - started) / n * 1e6


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the simulated match")
    args = parser.parse_args(argv)
    data: dict = {"sizes": [], "args": vars(args)}
    rows = []
    for per_second in (2, 6, 18, 60):
        recorder = simulate(seconds=args.seconds, points_to_win=1000, change=per_second / TICK_RATE, repeat=0.01)
        started = time.perf_counter()
        stored = replays.encode(recorder.recording())
        encode_ms = (time.perf_counter() - started) * 1e3
        started = time.perf_counter()
        frames: list = []
        check = replays.verify(replays.decode(stored), keep=frames)
        verify_ms = (time.perf_counter() - started) * 1e3
        assert check.ok, check.problems
        size = {"changes_per_s": per_second, "applied_inputs": len(recorder.inputs), "bytes": len(stored),
                "encode_ms": round(encode_ms, 1), "frames_ms": round(verify_ms, 1), "frames": len(frames)}
        data["sizes"].append(size)
        rows.append([per_second, len(recorder.inputs), f"{len(stored) / 1024:.1f}", f"{encode_ms:.1f}",
                     f"{verify_ms:.0f}"])
    print(table(["move changes/s/side", "applied inputs", "stored KiB", "record+encode ms", "re-simulate ms"], rows,
                title=f"Replay of a {args.seconds:.0f} s match (budget: 64 KiB for 5 minutes)"))

    game = create(seed=1, points_to_win=5)
    for _ in range(100):
        game.step(1.0 / TICK_RATE)
    acks = {"left": 17, "right": 9}
    payload = game.snapshot(acks)
    recorder = Recorder(game, seed=1, tick_rate=TICK_RATE, snapshot_every=SNAPSHOT_EVERY)
    n = 100_000
    tick = iter(range(0, 10 * n, 2))
    encode_us = per_call_us(lambda: encode_event("state", payload), n)
    snapshot_us = per_call_us(lambda: recorder.snapshot(next(tick), payload), n)
    input_us = per_call_us(lambda: recorder.input(5, "left", 3, 1), n)
    added_us = snapshot_us - encode_us  # the broadcast would encode the packet anyway
    per_match_second_us = 30 * added_us + 2 * 6 * input_us
    data.update(encode_us=encode_us, snapshot_us=snapshot_us, input_us=input_us,
                added_per_match_second_us=per_match_second_us)
    print(table(["state packet encode µs", "recorder.snapshot µs (incl. encode)", "recorder.input µs",
                 "added CPU per match-second µs"],
                [[f"{encode_us:.2f}", f"{snapshot_us:.2f}", f"{input_us:.3f}", f"{per_match_second_us:.0f}"]],
                title="Recording while playing (30 snapshots/s, 6 input changes/s per side)"))
    rounds = []
    for _ in range(3):
        rounds.append([asyncio.run(room_ms_per_match_second(record, 120)) for record in (True, False)])
    on = sorted(r[0] for r in rounds)[1]
    off = sorted(r[1] for r in rounds)[1]
    data.update(room_ms_per_s={"on": on, "off": off, "rounds": rounds})
    print(table(["room ms/s, recording on", "off", "added ms per match-second"],
                [[f"{on:.3f}", f"{off:.3f}", f"{on - off:.3f}"]],
                title="A room's step + flush per second of play (median of 3 alternating rounds of 120 s)"))
    save_result("replay", data)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
