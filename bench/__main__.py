"""`python -m bench`: every benchmark, one after the other, in a few minutes.

Each prints its table; the raw numbers go to var/bench/results/*.json and the
plots to docs/bench-density.png and docs/bench-spectators.png. The fleet
benchmark runs when PostgreSQL and Redis answer on 127.0.0.1. The spectator
benchmark runs twice: as the game server is, and with python-socketio's emit()
for every broadcast (GAME_DIRECT_BROADCAST=0), to compare in the same run.
"""
from __future__ import annotations

import socket
import subprocess
import sys
import time

from bench import density, fleet, latency, launch, memory, spectators
from bench.common import BASE_DIR, machine, python


def answers(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=1).close()
    except OSError:
        return False
    return True


def main() -> int:
    info = machine()
    print(f"machine: {info['nproc']} CPU(s), {info['cpu']}, Python {info['python']}")
    started = time.monotonic()
    for name, module in (("launch", launch), ("memory", memory), ("cow", None), ("latency", latency),
                         ("density", density)):
        print(f"\n=== bench.{name}", flush=True)
        if module is None:  # it turns its process into a zygote: a process of its own
            subprocess.run([python(), "-m", f"bench.{name}"], cwd=BASE_DIR, check=True, timeout=300)
        else:
            module.main([])
    print("\n=== bench.spectators", flush=True)
    base = spectators.main(["--plot", ""])
    print("\n=== bench.spectators --emit (broadcasts through python-socketio's emit())", flush=True)
    emit = spectators.main(["--emit", "--plot", ""])
    spectators.plot(base["steps"], "docs/bench-spectators.png", emit=emit["steps"])
    print("plot: docs/bench-spectators.png")
    print("\n=== bench.fleet", flush=True)
    if answers("127.0.0.1", 5432) and answers("127.0.0.1", 6379):
        fleet.main([])
    else:
        print("skipped: the fleet needs PostgreSQL and Redis on 127.0.0.1 (BENCH_DATABASE_URL, BENCH_BROKER_URL)")
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
