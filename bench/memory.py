"""`python -m bench.memory`: private memory (USS) of a live match's process.

For each launch strategy, M matches are launched through the API and played by
two lean players each (10 Hz inputs); after a few seconds of play the benchmark
reads, for every game server, its USS (memory only it holds: what one more match
really costs), PSS (its fair share of what it shares) and RSS, and for the warm
launcher the zygote's too.

`--matches-per-process N` (N > 1) adds the shared mode (`GAME_MATCHES_PER_PROCESS=N`):
one match is launched and played, the USS of its process read; then N - 1 more
are launched into the same process and played, and the USS read again. The
difference over N - 1 is what one more match costs a process already running
matches.
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


def one_mode(strategy: str, settings: dict[str, str], count: int, accounts: Accounts, ops: str,
             load: LoadGenerator, play: float) -> tuple[list, dict]:
    with DjangoServer(f"memory-{strategy}", **settings) as server:
        pairs = [accounts.take(2) for _ in range(count)]
        matches, errors = launch_matches(server, ops, pairs, points=21, threads=2)
        load.connect(player_specs(matches, "follow", 0))
        time.sleep(play)
        pids = game_servers(server.pid())
        mem = memory_of(pids)
        zygote = zygote_of(server.pid()) if settings["GAME_SERVER_LAUNCHER"] == "warm" else None
        zmem = memory_of([zygote])[0] if zygote else None
        stop_servers(pids)
        load.close()
    uss = [m["uss"] for m in mem]
    pss = [m["pss"] for m in mem]
    rss = [m["rss"] for m in mem]
    row = [strategy, len(matches), len(mem), statistics.median(uss), max(uss), sum(uss) / max(1, len(matches)),
           statistics.median(pss), statistics.median(rss), zmem["rss"] if zmem else "", zmem["uss"] if zmem else ""]
    return row, {"processes": mem, "zygote": zmem, "errors": errors}


def shared_increment(per_process: int, accounts: Accounts, ops: str, load: LoadGenerator, play: float) -> dict:
    """USS of one shared process with 1 match, then with `per_process` matches."""
    settings = {"GAME_SERVER_LAUNCHER": "warm", "GAME_MATCHES_PER_PROCESS": str(per_process)}
    with DjangoServer("memory-shared-increment", **settings) as server:
        first, errors = launch_matches(server, ops, [accounts.take(2)], points=21, threads=1)
        load.connect(player_specs(first, "follow", 0))
        time.sleep(play)
        pids = game_servers(server.pid())
        one = memory_of(pids)
        more, more_errors = launch_matches(server, ops, [accounts.take(2) for _ in range(per_process - 1)],
                                           points=21, threads=2)
        load.connect(player_specs(more, "follow", 0))
        time.sleep(play)
        after_pids = game_servers(server.pid())
        full = memory_of(after_pids)
        stop_servers(after_pids)
        load.close()
    assert len(one) == 1 and [m["pid"] for m in full] == [one[0]["pid"]], (one, full)
    return {"uss_1": one[0]["uss"], "uss_n": full[0]["uss"], "n": 1 + len(more),
            "per_match": (full[0]["uss"] - one[0]["uss"]) / max(1, len(more)), "errors": errors + more_errors}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=10)
    parser.add_argument("--play", type=float, default=5.0, help="seconds of play before measuring")
    parser.add_argument("--matches-per-process", type=int, default=8,
                        help="the shared mode's GAME_MATCHES_PER_PROCESS (1: leave it out)")
    args = parser.parse_args(argv)
    data: dict = {"machine": machine(), "args": vars(args)}
    rows = []
    modes = {"subprocess": {"GAME_SERVER_LAUNCHER": "subprocess"}, "warm": {"GAME_SERVER_LAUNCHER": "warm"}}
    if args.matches_per_process > 1:
        modes[f"warm, {args.matches_per_process} per process"] = {
            "GAME_SERVER_LAUNCHER": "warm", "GAME_MATCHES_PER_PROCESS": str(args.matches_per_process)}
    with bench_run("bench.memory"):
        accounts_data = prepare_database(2 * args.matches * len(modes) + 2 * args.matches_per_process + 4)
        accounts = Accounts(accounts_data["players"])
        ops = accounts_data["ops"]
        with LoadGenerator(1) as load:
            for strategy, settings in modes.items():
                row, data[strategy] = one_mode(strategy, settings, args.matches, accounts, ops, load, args.play)
                rows.append(row)
            if args.matches_per_process > 1:
                data["shared_increment"] = shared_increment(args.matches_per_process, accounts, ops, load, args.play)
    text = report("memory", data, ["launcher", "matches", "processes", "USS p50 MiB", "USS max MiB",
                                   "USS per match MiB", "PSS p50 MiB", "RSS p50 MiB", "zygote RSS MiB",
                                   "zygote USS MiB"], rows,
                  title=f"Memory of live matches' processes, after {args.play:g} s of play")
    if "shared_increment" in data:
        inc = data["shared_increment"]
        print(f"one shared process: USS {inc['uss_1']:.2f} MiB with 1 match, {inc['uss_n']:.2f} MiB with "
              f"{inc['n']}: {inc['per_match']:.2f} MiB per additional match")
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
