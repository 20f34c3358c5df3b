"""`python -m bench.metrics_cost`: what a game server's metrics cost, in CPU.

Times, in one process writing to a metrics directory of its own (prometheus_client's
multiprocess mode, as game servers do), the two things a game server does for its
metrics (`arena.gameserver.metrics`):

* ``batch()``: what the ticker adds to each wake-up (two timestamps, two bucket
  lookups), 30 times a second per process at 30 snapshots a second;
* ``flush()``: once a second per process, for K matches whose counts moved since
  the last flush (every counter and gauge written, both histograms flushed).

From these, the CPU a second costs a process of K matches, against what a match
costs (13-17 ms of CPU a second, `bench.density`). The density benchmark with
``--compare-env ARENA_METRICS=0`` measures the same end to end, under the noise
of a real load; this one is small enough to be exact.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from types import SimpleNamespace

from bench.common import save_result, table

WAKEUPS_PER_SECOND = 30


def fake_host(matches: int):
    """A `Host` as `ProcessMetrics` sees it: rooms with counts, a ticker."""
    from arena.gameserver.clock import LoopStats
    from arena.gameserver.metrics import RoomStats

    rooms = {}
    for i in range(matches):
        room = SimpleNamespace(
            info=SimpleNamespace(id=f"match-{i}"), stats=RoomStats(), broadcast=SimpleNamespace(bytes=0),
            player_sid={1: "a", 2: "b"}, clients={"a": 1, "b": 2, "c": None},
        )
        room.spectator_count = lambda room=room: sum(1 for user in room.clients.values() if user is None)
        rooms[room.info.id] = SimpleNamespace(room=room)
    ticker = SimpleNamespace(match_steps=0, stats=LoopStats(), timings=None)
    return SimpleNamespace(matches=rooms, ticker=ticker)


def measure(matches: int, seconds: float) -> dict:
    from arena.gameserver.metrics import ProcessMetrics

    host = fake_host(matches)
    metrics = ProcessMetrics(host)
    flushes, batches = 0, 0
    flush_cpu = batch_cpu = 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for hosted in host.matches.values():  # a second of play moves every count
            hosted.room.stats.inputs += 20
            hosted.room.broadcast.bytes += 30 * 2 * 220
        host.ticker.match_steps += 60 * matches
        started = time.process_time()
        work, send = host.ticker.timings  # what the ticker appends to, each wake-up
        for i in range(WAKEUPS_PER_SECOND):
            work.append(0.0004 + i * 1e-5)
            send.append(0.0002)
        batch_cpu += time.process_time() - started
        batches += WAKEUPS_PER_SECOND
        started = time.process_time()
        metrics.flush()
        flush_cpu += time.process_time() - started
        flushes += 1
    per_flush = 1e6 * flush_cpu / flushes
    per_batch = 1e6 * batch_cpu / batches
    per_second = per_flush + WAKEUPS_PER_SECOND * per_batch
    return {"matches": matches, "flush_us": per_flush, "batch_us": per_batch,
            "us_per_process_s": per_second, "us_per_match_s": per_second / matches}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", default="1,8,100", help="matches per process, comma-separated")
    parser.add_argument("--seconds", type=float, default=2.0, help="of CPU-bound looping per figure")
    parser.add_argument("--match-cpu-ms", type=float, default=13.0,
                        help="CPU a match costs a second, to compare with (docs/benchmarks.md)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
        os.environ["ARENA_GAME_SERVER"] = "1"
        import django

        django.setup()
        rows, results = [], []
        for matches in (int(x) for x in args.matches.split(",")):
            result = measure(matches, args.seconds)
            results.append(result)
            rows.append([matches, result["flush_us"], result["batch_us"], result["us_per_process_s"],
                         result["us_per_match_s"], 100 * result["us_per_match_s"] / (1000 * args.match_cpu_ms)])
    text = table(["matches per process", "flush() µs", "batch() µs", "µs of CPU per process-s",
                  "µs per match-s", f"% of a match's {args.match_cpu_ms:g} ms/s"], rows,
                 title="Game-server metrics: CPU per second (multiprocess files)")
    print(text)
    save_result("metrics-cost", {"results": results, "table": text})
    return {"results": results}


if __name__ == "__main__":
    main(sys.argv[1:])
