"""`python -m bench.memory`: private memory (USS) of a live match's process.

For each launch strategy, M matches are launched through the API and played by
two lean players each (10 Hz inputs); after a few seconds of play the benchmark
reads, for every game server, its USS (memory only it holds: what one more match
really costs), PSS (its fair share of what it shares) and RSS, and for the warm
launcher the zygote's too.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

from bench.common import DjangoServer, bench_run, game_servers, machine, prepare_database, report
from bench.density import Accounts, launch_matches, player_specs, stop_servers
from bench.load import LoadGenerator


def memory_of(pids: list[int]) -> list[dict]:
    import psutil

    out = []
    for pid in pids:
        try:
            info = psutil.Process(pid).memory_full_info()
        except psutil.Error:
            continue
        out.append({"pid": pid, "uss": info.uss / 2**20, "pss": info.pss / 2**20, "rss": info.rss / 2**20})
    return out


def zygote_of(server_pid: int) -> int | None:
    import psutil

    for child in psutil.Process(server_pid).children():
        try:
            if "arena.gameserver.zygote" in child.cmdline():
                return child.pid
        except psutil.Error:
            pass
    return None


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--play", type=float, default=5.0, help="seconds of play before measuring")
    args = parser.parse_args(argv)
    data: dict = {"machine": machine(), "args": vars(args)}
    rows = []
    with bench_run("bench.memory"):
        accounts_data = prepare_database(4 * args.matches + 4)
        accounts = Accounts(accounts_data["players"])
        with LoadGenerator(1) as load:
            for strategy in ("subprocess", "warm"):
                with DjangoServer(f"memory-{strategy}", GAME_SERVER_LAUNCHER=strategy) as server:
                    pairs = [accounts.take(2) for _ in range(args.matches)]
                    matches, errors = launch_matches(server, accounts_data["ops"], pairs, points=21, threads=2)
                    load.connect(player_specs(matches, "follow", 0))
                    time.sleep(args.play)
                    pids = game_servers(server.pid())
                    mem = memory_of(pids)
                    zygote = zygote_of(server.pid()) if strategy == "warm" else None
                    zmem = memory_of([zygote])[0] if zygote else None
                    stop_servers(pids)
                    load.close()
                uss = [m["uss"] for m in mem]
                pss = [m["pss"] for m in mem]
                rss = [m["rss"] for m in mem]
                rows.append([strategy, len(mem), statistics.median(uss), max(uss), statistics.median(pss),
                             statistics.median(rss), zmem["rss"] if zmem else "", zmem["uss"] if zmem else ""])
                data[strategy] = {"processes": mem, "zygote": zmem, "errors": errors}
    report("memory", data, ["launcher", "processes", "USS p50 MiB", "USS max MiB", "PSS p50 MiB", "RSS p50 MiB",
                             "zygote RSS MiB", "zygote USS MiB"], rows,
           title=f"Memory of a live match's process, after {args.play:g} s of play")
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
