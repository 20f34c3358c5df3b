"""`python -m bench.launch_direct N PLAYER...`: time `launch()` alone.

Run by `bench.launch` with the benchmark's environment (which names the launch
strategy). Creates N matches directly in the database (two of the given players
each), times `get_launcher().launch(info)` for each (its `MatchInfo`, read
beforehand as the API would have built it), one every
`PAUSE` seconds (about the pace of sequential `PUT /api/match` requests), after
two warm-up launches, stops the servers, and prints the N durations (seconds),
the CPU time each child had used by then and the time it waited for a CPU, as
JSON.
"""
from __future__ import annotations

import json
import os
import signal
import sys
import time

PAUSE = 0.03


def main(count: int, names: list[str]) -> None:
    import django

    django.setup()
    from arena.gameserver.store import load_match
    from arena.matches.launcher import get_launcher

    names = sorted(names)
    launcher = get_launcher()
    from bench.common import insert_match, schedstat

    durations, cpu, waits, pids = [], [], [], []
    for i in range(count + 2):
        pair = names[2 * i: 2 * i + 2]
        if len(pair) < 2:
            break
        match = insert_match(pair, points_to_win=1)
        info = load_match(str(match.id))  # what the API hands the launcher: not timed
        time.sleep(PAUSE)
        started = time.monotonic()
        result = launcher.launch(info)
        elapsed = time.monotonic() - started
        try:
            used, waited = schedstat(result.pid)
        except OSError:
            used = waited = float("nan")
        pids.append(result.pid)
        if i >= 2:
            durations.append(elapsed)
            cpu.append(used)
            waits.append(waited)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    print(json.dumps({"durations": durations, "child_cpu": cpu, "child_wait": waits}))


if __name__ == "__main__":
    main(int(sys.argv[1]), sys.argv[2:])
