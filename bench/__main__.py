"""`python -m bench`: every benchmark, one after the other, in a few minutes.

Each prints its table; the raw numbers go to var/bench/results/*.json and the
plots to docs/bench-density.png and docs/bench-spectators.png. The spectator
benchmark runs twice: as the game server is, and with python-socketio's emit()
for every broadcast (GAME_DIRECT_BROADCAST=0), to compare in the same run.
"""
from __future__ import annotations

import subprocess
import sys
import time

from bench import density, latency, launch, memory, spectators
from bench.common import BASE_DIR, machine, python


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
    print(f"\nall benchmarks: {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
