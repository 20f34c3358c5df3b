"""`python -m bench.launch`: how fast does PUT /api/match give a playable server?

Four web servers run side by side on the same bench database, one per
configuration (daphne with `subprocess`; daphne with `warm`, as configured by
default, with spares; daphne with `warm` and `GAME_ZYGOTE_SPARES=0`, every game
forked on request; and the WSGI API under gunicorn, two workers, `warm`), so all
are measured in the same run under the same noise. A launch is timed from sending `PUT /api/match` to the `201`, and to
a Socket.IO connection accepted by the port in the answer.

* sequential: launches rotate between the configurations, one at a time;
* concurrent: 50 launches at once against one configuration, then the next;
* in-process: `get_launcher().launch()` alone, without HTTP, Django views or
  the database writes around it (what the strategy itself costs).

`--compare-env ARENA_METRICS=0` adds one more daphne `warm` configuration with
those settings ("warm, ARENA_METRICS=0"), measured in the same rotation: a
feature's cost to launch latency is read from two rows of one run.

Unplayed matches cancel themselves after GAME_PLAYER_CONNECT_TIMEOUT (3 s here)
and their servers exit; every process is killed at the end anyway.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from bench.common import (
    BASE_DIR,
    DjangoServer,
    add_compare_env_option,
    api,
    bench_env,
    bench_run,
    env_variants,
    machine,
    prepare_database,
    python,
    save_result,
    summary_ms,
    table,
)
from bench.stats import cpu_seconds
from bench.wsclient import probe

LAUNCHERS = {  # name -> the launcher's settings
    "subprocess": {"GAME_SERVER_LAUNCHER": "subprocess"},
    "warm": {"GAME_SERVER_LAUNCHER": "warm"},
    "warm, no spares": {"GAME_SERVER_LAUNCHER": "warm", "GAME_ZYGOTE_SPARES": "0"},
}
STRATEGIES = tuple(LAUNCHERS)  # launch() alone is timed for each of these
GUNICORN = "warm, gunicorn"
GUNICORN_WORKERS = 2
CONFIGS = STRATEGIES + (GUNICORN,)  # the web servers: daphne per strategy, and gunicorn with `warm`
SERVER_SETTINGS = {"GAME_PLAYER_CONNECT_TIMEOUT": "3"}


class Players:
    """Hands out fresh pairs of players, never one twice in a run."""

    def __init__(self, names: list[str]) -> None:
        self.names = list(names)
        self.lock = threading.Lock()

    def pair(self) -> list[str]:
        with self.lock:
            if len(self.names) < 2:
                raise RuntimeError("not enough bench players")
            return [self.names.pop(), self.names.pop()]

    def take(self, count: int) -> list[str]:
        with self.lock:
            taken, self.names = self.names[:count], self.names[count:]
            return taken


def one_launch(server: DjangoServer, ops: str, players: Players) -> dict:
    pair = players.pair()
    started = time.monotonic()
    status, body = api(server.url, ops, "PUT", "/api/match", {"players": pair, "points_to_win": 1})
    answered = time.monotonic()
    result = {"status": status, "put": answered - started, "error": body.get("error")}
    if status == 201:
        try:
            probe(body["host"], body["port"], timeout=10)
            result["ready"] = time.monotonic() - started
        except OSError as error:
            result["error"] = f"connect: {error}"
    return result


def sequential(servers: dict[str, DjangoServer], ops: str, players: Players, rounds: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {name: [] for name in servers}
    for i in range(rounds):
        shift = i % len(CONFIGS)
        for name in CONFIGS[shift:] + CONFIGS[:shift]:
            results[name].append(one_launch(servers[name], ops, players))
    return results


def concurrent(server: DjangoServer, ops: str, players: Players, count: int) -> tuple[list[dict], float]:
    gate = threading.Barrier(count)

    def task(_):
        gate.wait(timeout=30)
        return one_launch(server, ops, players)

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=count) as pool:
        results = list(pool.map(task, range(count)))
    return results, time.monotonic() - started


def no_view_cpu(server: DjangoServer, ops: str, count: int = 200) -> float:
    """Web-process CPU (ms) per request that runs no view (an unknown URL: 404): what
    the web server and Django's request handling cost on their own."""
    pids = server.web_pids()
    before = cpu_seconds(pids)
    for _ in range(count):
        api(server.url, ops, "GET", "/api/no-such-endpoint")
    after = cpu_seconds(pids)
    return 1000 * sum(after[p] - before[p] for p in pids if p in before) / count


def in_process(name: str, names: list[str], count: int, settings: dict[str, str] | None = None) -> dict[str, list[float]]:
    out = subprocess.run(
        [python(), "-m", "bench.launch_direct", str(count), *names],
        cwd=BASE_DIR, env=bench_env(**SERVER_SETTINGS, **(settings or LAUNCHERS[name])), capture_output=True,
        text=True, timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"launch_direct failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def wait_quiet(seconds: float) -> None:
    """Let the previous phase's unplayed servers exit before the next one."""
    time.sleep(seconds)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=25, help="sequential launches per strategy")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--direct", type=int, default=20, help="in-process launches per strategy")
    parser.add_argument("--matches-per-process", type=int, default=8,
                        help="also time launch() into shared processes (GAME_MATCHES_PER_PROCESS; 1: leave it out)")
    add_compare_env_option(parser)
    args = parser.parse_args(argv)
    global CONFIGS
    variants = [f"warm, {label}" for label, _ in env_variants(args)[1:]]
    for (label, extra), name in zip(env_variants(args)[1:], variants):
        LAUNCHERS[name] = {**LAUNCHERS["warm"], **extra}
    CONFIGS = STRATEGIES + tuple(variants) + (GUNICORN,)
    needed = 2 * (len(CONFIGS) + 1) * (args.rounds + args.concurrent + args.direct + 2 * GUNICORN_WORKERS + 4)
    with bench_run("bench.launch"):
        accounts = prepare_database(needed)
        players = Players([name for name, _ in accounts["players"]])
        ops = accounts["ops"]
        rows, data = [], {"machine": machine(), "args": vars(args)}
        with contextlib.ExitStack() as stack:
            servers = {name: stack.enter_context(DjangoServer(
                           "".join(c if c.isalnum() else "-" for c in name), **SERVER_SETTINGS, **config))
                       for name, config in LAUNCHERS.items()}
            servers[GUNICORN] = stack.enter_context(DjangoServer(
                "warm-gunicorn", server="gunicorn", workers=GUNICORN_WORKERS, **SERVER_SETTINGS, **LAUNCHERS["warm"]))
            for server in servers.values():  # first launches: imports, zygote start, DB connection
                for _ in range(2 * (GUNICORN_WORKERS if server.server == "gunicorn" else 1)):
                    one_launch(server, ops, players)
            web_pids = {name: s.web_pids() for name, s in servers.items()}
            cpu0 = cpu_seconds([pid for pids in web_pids.values() for pid in pids])
            seq = sequential(servers, ops, players, args.rounds)
            cpu1 = cpu_seconds([pid for pids in web_pids.values() for pid in pids])
            web_cpu = {name: 1000 * sum(cpu1[p] - cpu0[p] for p in pids) / args.rounds for name, pids in web_pids.items()}
            no_view = {name: no_view_cpu(server, ops) for name, server in servers.items()}
            wait_quiet(4)
            conc = {}
            for name in CONFIGS[::-1]:
                conc[name] = concurrent(servers[name], ops, players, args.concurrent)
                wait_quiet(4)
        direct = {name: in_process(name, players.take(2 * (args.direct + 2)), args.direct) for name in STRATEGIES}
        direct_names = list(STRATEGIES)
        for name in variants:
            direct[name] = in_process(name, players.take(2 * (args.direct + 2)), args.direct)
            direct_names.append(name)
        if args.matches_per_process > 1:
            # Most of these launches go to a process with room; one in N forks a new one.
            shared = f"warm, {args.matches_per_process} per process"
            direct[shared] = in_process(shared, players.take(2 * (args.direct + 2)), args.direct, {
                "GAME_SERVER_LAUNCHER": "warm", "GAME_MATCHES_PER_PROCESS": str(args.matches_per_process)})
            direct_names.append(shared)

        for name in CONFIGS:
            ok = [r for r in seq[name] if r["status"] == 201 and "ready" in r]
            put, ready = summary_ms([r["put"] for r in ok]), summary_ms([r["ready"] for r in ok])
            rows.append([name, "sequential", f"{len(ok)}/{len(seq[name])}", put["p50"], put["p99"],
                         ready["p50"], ready["p99"], ready["max"]])
            data[f"{name}_sequential"] = {"put": put, "ready": ready, "results": seq[name]}
        for name in CONFIGS:
            results, wall = conc[name]
            ok = [r for r in results if r["status"] == 201 and "ready" in r]
            put, ready = summary_ms([r["put"] for r in ok]), summary_ms([r["ready"] for r in ok])
            rows.append([name, f"{args.concurrent} concurrent", f"{len(ok)}/{len(results)}", put["p50"],
                         put["p99"], ready["p50"], ready["p99"], ready["max"]])
            data[f"{name}_concurrent"] = {"put": put, "ready": ready, "wall": wall, "results": results,
                                         "errors": sorted({str(r.get('error')) for r in results if r not in ok})}
        for name in direct_names:
            launch = summary_ms(direct[name]["durations"])
            rows.append([name, "launch() in-process", f"{launch['n']}/{args.direct}", launch["p50"],
                         launch["p99"], "", "", launch["max"]])
            data[f"{name}_direct"] = launch
        cpu_rows = []
        for name in CONFIGS:
            measured = direct.get(name, direct["warm"])  # gunicorn's launcher is `warm`
            child = sorted(measured["child_cpu"])
            wait = sorted(measured["child_wait"])
            cpu_rows.append([name, web_cpu[name], no_view[name], child[len(child) // 2] * 1000 if child else float("nan"),
                             wait[len(wait) // 2] * 1000 if wait else float("nan")])
        data["cpu"] = cpu_rows
        text = table(
            ["launcher", "mode", "ok", "201 p50 ms", "201 p99 ms", "ready p50 ms", "ready p99 ms", "max ms"],
            rows,
            title="Launch latency: PUT /api/match -> 201, and -> Socket.IO connection accepted (ready)",
        )
        cpu_text = table(["launcher", "web server CPU per PUT ms", "per request running no view ms", "child CPU to port ms p50 (a spare's includes its warm-up)",
                          "child waiting for a CPU ms p50"], cpu_rows,
                         title="CPU per launch (robust to a busy machine: CPU time, not wall time)")
        print(text, flush=True)
        print(cpu_text, flush=True)
        text += "\n" + cpu_text
        for name in CONFIGS:
            errors = data[f"{name}_concurrent"]["errors"]
            if errors:
                print(f"{name} concurrent errors: {errors}")
        print(f"{args.concurrent} concurrent wall time: " + ", ".join(f"{name} {conc[name][1]:.2f} s" for name in CONFIGS))
        data["table"] = text
        save_result("launch", data)
        return data


if __name__ == "__main__":
    main(sys.argv[1:])
