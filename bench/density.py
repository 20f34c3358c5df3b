"""`python -m bench.density`: how many live matches can one machine host?

For each N of the sweep: N matches are launched through the API (warm launcher),
two lean players join each and send an input at 10 Hz; the servers tick at 60 Hz
and send 30 snapshots a second. Once every match plays (or after
`PLAYING_WAIT` seconds: under saturation some start late or never) and a short
warm-up, the benchmark measures,
for a fixed window: each match's tick rate (from the ticks its players receive),
snapshot latency (see `bench.stats`), dropped snapshots, the CPU of the game
servers, of the load generator and of everything else on the machine, and the
USS of a sample of game servers. Then every server is stopped (SIGTERM: the match
is cancelled and the server logs its loop statistics, which are summed).

The sweep stops early once the median match ticks below 50 Hz: the machine is
past saturation and a larger N says nothing more.

`--compare-env ARENA_METRICS=0` runs each step a second time with those
settings (one web server per variant, up side by side, the variants of one N
measured back to back, taking turns going first), so a feature's cost is read
from two rows of one run; repeat a step (`--sweep 25,25,25,25`) on a busy machine.
With `--together` the variants' N matches each play at the same time, measured
over one window: the way to read a difference of a few per cent, which the
machine's drift between two back-to-back steps can exceed.

`--matches-per-process 1,8` runs the sweep once per hosting mode
(`GAME_MATCHES_PER_PROCESS`), in the same run, each behind a web server of its
own; the CPU of the game servers is also given per match-second, the figure that
compares the modes.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    DjangoServer,
    add_compare_env_option,
    add_emit_option,
    api,
    bench_run,
    broadcast_settings,
    env_variants,
    game_servers,
    loop_stats_from_logs,
    machine,
    prepare_database,
    report,
    table,
)
from bench.load import LoadGenerator
from bench.stats import analyse, cpu_seconds, machine_busy, server_tick_rate, uss_mib

PLAYING_WAIT = 30.0  # s, at most, for every match to start before measuring


class Accounts:
    def __init__(self, players: list[list[str]]) -> None:
        self.players = list(players)
        self.lock = threading.Lock()

    def take(self, count: int) -> list[list[str]]:
        with self.lock:
            taken, self.players = self.players[:count], self.players[count:]
        if len(taken) < count:
            raise RuntimeError("not enough bench players")
        return taken


def launch_matches(server: DjangoServer, ops: str, pairs: list[list[list[str]]], points: int,
                   threads: int = 4) -> tuple[list[dict], list[str]]:
    """Launch one match per pair of players; (matches, errors)."""

    def one(pair):
        status, body = api(server.url, ops, "PUT", "/api/match",
                           {"players": [pair[0][0], pair[1][0]], "points_to_win": points})
        if status != 201:
            return None, f"{status} {body.get('error')}: {body.get('detail')}"
        return {"id": body["id"], "port": body["port"], "tokens": [pair[0][1], pair[1][1]]}, None

    with ThreadPoolExecutor(max_workers=threads) as pool:
        answers = list(pool.map(one, pairs))
    return [m for m, _ in answers if m], [e for _, e in answers if e]


def wait_until_playing(server: DjangoServer, ops: str, matches: list[dict], timeout: float) -> tuple[int, float]:
    """Poll the API until every match is `playing` (bounded); (how many are, seconds waited)."""
    started = time.monotonic()
    waiting = {m["id"] for m in matches}
    while waiting and time.monotonic() - started < timeout:
        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = dict(zip(waiting, pool.map(
                lambda match_id: api(server.url, ops, "GET", f"/api/match/{match_id}")[1].get("status"), waiting)))
        waiting = {match_id for match_id, status in statuses.items() if status != "playing"}
        if waiting:
            time.sleep(0.5)
    return len(matches) - len(waiting), time.monotonic() - started


def player_specs(matches: list[dict], behaviour: str, probes: int) -> list[dict]:
    specs = []
    for i, match in enumerate(matches):
        for seat, token in enumerate(match["tokens"]):
            specs.append({"key": f"{match['id']}/{seat}", "match": match["id"], "port": match["port"],
                          "token": token, "role": "player", "behaviour": behaviour})
        if i < probes:
            specs.append({"key": f"{match['id']}/probe", "match": match["id"], "port": match["port"],
                          "role": "spectator", "probe": True})
    return specs


def stop_servers(pids: list[int], timeout: float = 30) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_exists(p) for p in pids):
        time.sleep(0.1)
    for pid in pids:
        if _exists(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _exists(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def measure_step(servers: list[tuple[str, DjangoServer]], load: LoadGenerator, ops: str, accounts: Accounts,
                 n: int, args) -> list[dict]:
    """N matches behind each of `servers` (one per variant), all playing at once and
    measured over the same window: one row per variant. With one server this is a
    plain step; with several (`--together`) the machine's drift falls on every
    variant alike, which is what a small difference between them needs."""
    started = time.monotonic()
    launched = []
    for _label, server in servers:
        pairs = [accounts.take(2) for _ in range(n)]
        launched.append(launch_matches(server, ops, pairs, points=21))
    launch_seconds = time.monotonic() - started
    ok, connect_errors = load.connect([spec for matches, _ in launched
                                       for spec in player_specs(matches, "random", args.probes)])
    waits = [wait_until_playing(server, ops, matches, PLAYING_WAIT)
             for (_label, server), (matches, _) in zip(servers, launched)]
    time.sleep(args.warmup)
    pids = [game_servers(server.pid()) for _label, server in servers]
    others = [p for p in load_pids(load) if p]
    cpu0, load_cpu0, busy0, wall0 = [cpu_seconds(p) for p in pids], cpu_seconds(others), machine_busy(), time.monotonic()
    results = load.measure(args.seconds)
    cpu1, load_cpu1, busy1, wall1 = [cpu_seconds(p) for p in pids], cpu_seconds(others), machine_busy(), time.monotonic()
    uss = [uss_mib(p, limit=len(p)) for p in pids]
    window = wall1 - wall0
    servers_cpu = [sum(after[p] - before[p] for p in after if p in before) for before, after in zip(cpu0, cpu1)]
    loadgen_cpu = sum(load_cpu1[p] - load_cpu0[p] for p in load_cpu1 if p in load_cpu0)
    machine_cpu = busy1[0] - busy0[0]
    for group in pids:
        stop_servers(group)
    load.close()
    steps = []
    for index, (label, _server) in enumerate(servers):
        matches, launch_errors = launched[index]
        playing, waited = waits[index]
        ids = {m["id"] for m in matches}
        loops = loop_stats_from_logs(ids)
        summary = analyse([{**r, "conns": {k: c for k, c in r["conns"].items() if c["match"] in ids}}
                           for r in results])
        summary.update({
            "n": n,
            "together": len(servers) > 1,
            "launched": len(matches),
            "launch_seconds": launch_seconds,
            "launch_errors": launch_errors[:5],
            "connections": ok,
            "playing_before_window": playing,
            "waited_for_playing": waited,
            "connect_errors": connect_errors[:5],
            "game_servers": len(pids[index]),
            "servers_cpu_pct": 100 * servers_cpu[index] / window,
            "server_cpu_ms_per_s": 1000 * servers_cpu[index] / window / max(1, len(pids[index])),
            "loadgen_cpu_pct_psutil": 100 * loadgen_cpu / window,
            "machine_cpu_pct": 100 * machine_cpu / window,
            "other_cpu_pct": 100 * (machine_cpu - sum(servers_cpu) - loadgen_cpu) / window,
            "uss_mib_mean": sum(uss[index]) / len(uss[index]) if uss[index] else float("nan"),
            "uss_mib_per_match": sum(uss[index]) / max(1, len(matches)),
            "cpu_ms_per_match_s": 1000 * servers_cpu[index] / window / max(1, playing),
            "per_process": args.per_process,
            "variant": label,
            "uss_mib_max": max(uss[index]) if uss[index] else float("nan"),
            "loop": loops,
            "server_tick_rate": server_tick_rate(loops),
            "loadavg": os.getloadavg()[0],
        })
        steps.append(summary)
    return steps


def load_pids(load: LoadGenerator) -> list[int]:
    return [proc.pid for proc in load.procs]


def row(s: dict) -> list:
    lat = s["latency_ms"]
    return [s["per_process"], s.get("variant", "as is"), s["n"], f"{s['launched']}/{s['n']}", f"{s['matches'] - s['silent_matches']}/{s['n']}", s["server_tick_rate"], s["tick_rate_p50"], s["tick_rate_min"],
            lat["player"]["p50"], lat["player"]["p99"], lat["probe"]["p99"], s["dropped"],
            s["loop"]["dropped_steps"], s["game_servers"], s["server_cpu_ms_per_s"], s["cpu_ms_per_match_s"],
            s["servers_cpu_pct"], s["loadgen_cpu_pct_psutil"], s["other_cpu_pct"], s["uss_mib_mean"],
            s["uss_mib_per_match"]]


HEADERS = ["per process", "variant", "N", "up", "playing", "server tick/s", "client tick/s p50", "client tick/s min", "lat p50 ms", "lat p99 ms", "probe p99 ms",
           "dropped snaps", "dropped steps", "processes", "CPU ms/s per process", "CPU ms per match-s",
           "servers CPU %", "loadgen CPU %", "other CPU %", "USS MiB per process", "USS MiB per match"]


def plot(steps: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for mode, variant in sorted({(s["per_process"], s.get("variant", "as is")) for s in steps}):
        mine = [s for s in steps if (s["per_process"], s.get("variant", "as is")) == (mode, variant)]
        ns = [s["n"] for s in mine]
        label = f"{mode} per process" + ("" if variant == "as is" else f", {variant}")
        ax1.plot(ns, [s["server_tick_rate"] for s in mine], "o-", label=f"{label}: simulated")
        ax1.plot(ns, [s["tick_rate_min"] for s in mine], "s--", label=f"{label}: slowest match seen")
        ax2.plot(ns, [s["latency_ms"]["player"]["p50"] for s in mine], "o-", label=f"{label}: p50")
        ax2.plot(ns, [s["latency_ms"]["player"]["p99"] for s in mine], "s--", label=f"{label}: p99")
    ax1.axhline(59.5, color="grey", lw=0.8, ls=":", label="target 59.5")
    ax1.set_xlabel("concurrent matches")
    ax1.set_ylabel("ticks per second")
    ax1.set_title("Tick rate")
    ax1.legend(fontsize=7)
    ax2.axhline(25, color="grey", lw=0.8, ls=":", label="target p99 25 ms")
    ax2.set_xlabel("concurrent matches")
    ax2.set_ylabel("ms")
    ax2.set_yscale("log")
    ax2.set_title("Snapshot latency (players)")
    ax2.legend(fontsize=7)
    fig.suptitle("Arena density: 2 players per match, 10 Hz inputs, 60 Hz ticks, 30 Hz snapshots")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="25,50,100,150,250")
    parser.add_argument("--seconds", type=float, default=8.0, help="measurement window per step")
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    parser.add_argument("--probes", type=int, default=2, help="python-socketio spectators, as a cross-check")
    parser.add_argument("--plot", default="docs/bench-density.png")
    parser.add_argument("--matches-per-process", default="1,8",
                        help="comma-separated GAME_MATCHES_PER_PROCESS values, one sweep each (e.g. 1,8)")
    parser.add_argument("--together", action="store_true",
                        help="with --compare-env: N matches of every variant play at once and are measured "
                             "over the same window (the machine's drift falls on each alike)")
    add_emit_option(parser)
    add_compare_env_option(parser)
    args = parser.parse_args(argv)
    variants = env_variants(args)
    sweep = [int(x) for x in args.sweep.split(",")]
    data = {"machine": machine(), "args": vars(args), "steps": []}
    with bench_run("bench.density"):
        modes = [int(x) for x in args.matches_per_process.split(",")]
        accounts_data = prepare_database(2 * sum(sweep) * len(modes) * len(variants) + 10)
        accounts = Accounts(accounts_data["players"])
        with LoadGenerator(args.workers) as load:
            for mode in modes:
                args.per_process = mode
                settings = {"GAME_SERVER_LAUNCHER": "warm", "GAME_MATCHES_PER_PROCESS": str(mode),
                            **broadcast_settings(args)}
                with contextlib.ExitStack() as stack:
                    servers = []
                    for index, (label, extra) in enumerate(variants):
                        server = stack.enter_context(DjangoServer(f"density-{mode}-{index}", **settings, **extra))
                        api(server.url, accounts_data["ops"], "GET", "/api/match/00000000-0000-0000-0000-000000000000")
                        servers.append((label, server))
                    for index, n in enumerate(sweep):
                        saturated = False
                        # The variants take turns going first (a sweep of 25,25,25,25 repeats
                        # a step): whatever the previous step leaves behind falls on each alike.
                        shift = index % len(servers)
                        turns = servers[shift:] + servers[:shift]
                        for group in ([turns] if args.together else [[turn] for turn in turns]):
                            for step in measure_step(group, load, accounts_data["ops"], accounts, n, args):
                                data["steps"].append(step)
                                print(table(HEADERS, [row(step)]).splitlines()[-1], flush=True)
                                saturated |= step["server_tick_rate"] < 50 or step["latency_ms"]["player"]["p99"] > 2000
                        if saturated:
                            print("stopping the sweep: the machine is far past saturation")
                            break
        report("density" + ("-emit" if args.emit else ""), data, HEADERS, [row(s) for s in data["steps"]],
               title="Density: N matches, 2 players each (10 Hz inputs), 60 Hz ticks, 30 Hz snapshots")
        if args.plot:
            plot(data["steps"], args.plot)
            print(f"plot: {args.plot}")
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
