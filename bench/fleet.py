"""`python -m bench.fleet`: launches through the fleet beside the local warm launcher.

Needs PostgreSQL and Redis (a fleet shares one database and a broker):
`BENCH_DATABASE_URL` (default postgres://postgres@127.0.0.1:5432/arena_bench,
created if missing) and `BENCH_BROKER_URL` (default redis://127.0.0.1:6379/0).

In the same run, on the same database: three game hosts (`manage.py gamehost`,
game servers on 127.0.0.2, .3 and .4, capacity 100 each) behind web servers with
`GAME_SERVER_LAUNCHER=fleet`, and web servers with the local `warm` launcher;
each under Daphne and under gunicorn (two workers). Measured for each:

* sequential: `PUT /api/match` -> 201, and -> a Socket.IO connection accepted at
  the address the answer gave (ready), launches alternating between the two;
* 50 concurrent launches;
* the same 50 matches as one batch (`PUT /api/matches` of 50), and as 2 batches
  of 25 sent at once: a match's latency is its request's (start to answer: every
  match of it has its port), "ready" adds a Socket.IO connection accepted at its
  port (probed after the answer);
* sustained: launches per second with `--workers` clients launching back to back;
* `launch()` in-process (no HTTP, no view): the strategy alone, where the fleet's
  Celery hop shows most plainly.

Unplayed matches cancel themselves after GAME_PLAYER_CONNECT_TIMEOUT (3 s here).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

from bench.common import BASE_DIR, BENCH_DIR, DjangoServer, api, bench_env, bench_run, machine, prepare_database
from bench.common import python, save_result, summary_ms, table
from bench.launch import Players, concurrent, one_launch, wait_quiet
from bench.wsclient import probe

HOSTS = (("fleet-a", "127.0.0.2", 27000), ("fleet-b", "127.0.0.3", 27300), ("fleet-c", "127.0.0.4", 27600))
HOST_PORTS = 300
CAPACITY = 100
LOCAL = {"GAME_SERVER_LAUNCHER": "warm", "GAME_SERVER_MIN_PORT": "27900", "GAME_SERVER_MAX_PORT": "28199"}
SERVER_SETTINGS = {"GAME_PLAYER_CONNECT_TIMEOUT": "3"}
# Between phases: the unplayed servers of the last one cancel themselves (3 s) and
# exit, releasing their ports and their database connections (one each).
QUIET = 6


def fleet_settings(broker: str) -> dict[str, str]:
    return {"GAME_SERVER_LAUNCHER": "fleet", "CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": broker}


def ensure_database(url: str) -> None:
    import psycopg

    parts = urllib.parse.urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urllib.parse.urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def start_hosts(broker: str) -> list[subprocess.Popen]:
    procs = []
    for name, address, first in HOSTS:
        env = bench_env(**SERVER_SETTINGS, **fleet_settings(broker), GAME_SERVER_HOST=address, GAME_SERVER_BIND=address,
                        GAME_SERVER_MIN_PORT=str(first), GAME_SERVER_MAX_PORT=str(first + HOST_PORTS - 1))
        log = open(BENCH_DIR / f"gamehost-{name}.log", "wb")
        procs.append(subprocess.Popen(
            [python(), "manage.py", "gamehost", "--name", name, "--capacity", str(CAPACITY)],
            cwd=BASE_DIR, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        ))
        log.close()
    deadline = time.monotonic() + 120
    for (name, _, _), proc in zip(HOSTS, procs):
        path = BENCH_DIR / f"gamehost-{name}.log"
        while "launcher ready" not in path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"game host {name} did not start; see {path}")
            time.sleep(0.2)
    return procs


def sustained(server: DjangoServer, ops: str, players: Players, count: int, workers: int) -> tuple[list[dict], float]:
    """`count` launches by `workers` clients, each launching again as soon as answered."""
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda _: one_launch(server, ops, players), range(count)))
    return results, time.monotonic() - started


def batches(server: DjangoServer, ops: str, players: Players, count: int, requests: int) -> tuple[list[dict], float]:
    """`count` matches in `requests` `PUT /api/matches` sent at once; one result per
    match, with its request's answer time (`put`) and its port's first accepted
    connection (`ready`), both from the request's start."""
    size = count // requests
    gate = threading.Barrier(requests)

    def one_batch(_) -> list[dict]:
        entries = [{"players": players.pair(), "points_to_win": 1} for _ in range(size)]
        gate.wait(timeout=30)
        started = time.monotonic()
        status, body = api(server.url, ops, "PUT", "/api/matches", {"matches": entries})
        answered = time.monotonic() - started
        if status != 200:
            return [{"status": status, "put": answered, "error": body.get("error")}] * size

        def ready(result: dict) -> dict:
            out = {"status": result["status"], "put": answered, "error": result.get("error")}
            if result["status"] == 201:
                try:
                    probe(result["match"]["host"], result["match"]["port"], timeout=10)
                    out["ready"] = time.monotonic() - started
                except OSError as error:
                    out["error"] = f"connect: {error}"
            return out

        with ThreadPoolExecutor(max_workers=size) as pool:
            return list(pool.map(ready, body["results"]))

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=requests) as pool:
        results = [r for batch in pool.map(one_batch, range(requests)) for r in batch]
    return results, time.monotonic() - started


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30, help="sequential launches per launcher")
    parser.add_argument("--concurrent", type=int, default=50)
    parser.add_argument("--sustained", type=int, default=120, help="launches in the sustained phase")
    parser.add_argument("--workers", type=int, default=8, help="clients in the sustained phase")
    parser.add_argument("--direct", type=int, default=30, help="in-process launches per launcher")
    parser.add_argument("--split", type=int, default=2, help="the --concurrent matches also as this many batches at once")
    args = parser.parse_args(argv)
    os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/arena_bench")
    # DEBUG is off in benchmarks: game servers refuse the public development key.
    os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    broker = os.environ.get("BENCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    ensure_database(os.environ["BENCH_DATABASE_URL"])
    configs = ("warm (local)", "fleet (3 hosts)", "warm, gunicorn", "fleet, gunicorn")
    needed = 2 * len(configs) * (args.rounds + 3 * args.concurrent + args.sustained + args.direct + 8)
    with bench_run("bench.fleet"):
        accounts = prepare_database(needed)
        players = Players([name for name, _ in accounts["players"]])
        ops = accounts["ops"]
        data: dict = {"machine": machine(), "args": vars(args), "load_before": os.getloadavg()}
        with contextlib.ExitStack() as stack:
            start_hosts(broker)
            fleet = fleet_settings(broker)
            servers = {
                configs[0]: stack.enter_context(DjangoServer("fleet-bench-warm", **SERVER_SETTINGS, **LOCAL)),
                configs[1]: stack.enter_context(DjangoServer("fleet-bench-fleet", **SERVER_SETTINGS, **fleet)),
                configs[2]: stack.enter_context(DjangoServer("fleet-bench-warm", server="gunicorn", workers=2,
                                                             **SERVER_SETTINGS, **LOCAL)),
                configs[3]: stack.enter_context(DjangoServer("fleet-bench-fleet", server="gunicorn", workers=2,
                                                             **SERVER_SETTINGS, **fleet)),
            }
            for server in servers.values():  # first launches: imports, zygote, connections (each worker)
                for _ in range(4):
                    one_launch(server, ops, players)
            # launch() alone first, while nothing else runs (each in a process of its own)
            direct = {name: in_process_with(config, players.take(2 * (args.direct + 2)), args.direct)
                      for name, config in zip(configs[:2], (LOCAL, fleet))}
            wait_quiet(QUIET)
            seq: dict[str, list[dict]] = {name: [] for name in configs}
            for i in range(args.rounds):
                shift = i % len(configs)
                for name in configs[shift:] + configs[:shift]:
                    seq[name].append(one_launch(servers[name], ops, players))
            wait_quiet(QUIET)
            conc, sust, batch, split = {}, {}, {}, {}
            for name in configs:
                conc[name] = concurrent(servers[name], ops, players, args.concurrent)
                wait_quiet(QUIET)
                batch[name] = batches(servers[name], ops, players, args.concurrent, 1)
                wait_quiet(QUIET)
                split[name] = batches(servers[name], ops, players, args.concurrent, args.split)
                wait_quiet(QUIET)
            for name in configs:
                sust[name] = sustained(servers[name], ops, players, args.sustained, args.workers)
                wait_quiet(QUIET)
        data["load_after"] = os.getloadavg()

        rows = []
        for name in configs:
            size = args.concurrent // args.split
            for mode, results in (("sequential", seq[name]), (f"{args.concurrent} concurrent", conc[name][0]),
                                  (f"1 batch of {args.concurrent}", batch[name][0]),
                                  (f"{args.split} batches of {size} at once", split[name][0]),
                                  (f"sustained, {args.workers} clients", sust[name][0])):
                ok = [r for r in results if r["status"] == 201 and "ready" in r]
                put, ready = summary_ms([r["put"] for r in ok]), summary_ms([r["ready"] for r in ok])
                rows.append([name, mode, f"{len(ok)}/{len(results)}", put["p50"], put["p99"], ready["p50"],
                             ready["p99"], ready["max"]])
                data[f"{name} {mode}"] = {"put": put, "ready": ready,
                                          "errors": sorted({str(r.get("error")) for r in results if r not in ok})}
            if name in direct:
                launch = summary_ms(direct[name]["durations"])
                rows.append([name, "launch() in-process", f"{launch['n']}/{args.direct}", launch["p50"],
                             launch["p99"], "", "", launch["max"]])
                data[f"{name} direct"] = launch
        rate_rows = []
        for name in configs:
            results, wall = sust[name]
            ok = sum(1 for r in results if r["status"] == 201)
            _, conc_wall = conc[name]
            rate_rows.append([name, ok / wall, args.concurrent / conc_wall,
                              _ok(batch[name][0]) / batch[name][1], _ok(split[name][0]) / split[name][1]])
        text = table(["launcher", "mode", "ok", "201 p50 ms", "201 p99 ms", "ready p50 ms", "ready p99 ms", "max ms"],
                     rows, title="Launch latency, local warm launcher vs fleet (Daphne, PostgreSQL, Redis broker)")
        rate = table(["launcher", "sustained launches/s", f"{args.concurrent} at once: launches/s",
                      f"1 batch of {args.concurrent}: launches/s", f"{args.split} batches: launches/s"], rate_rows,
                     title="Launch throughput")
        print(text, flush=True)
        print(rate, flush=True)
        for key, value in data.items():
            if isinstance(value, dict) and value.get("errors"):
                print(f"{key} errors: {value['errors']}")
        print(f"load average before {data['load_before']}, after {data['load_after']}")
        data["table"] = text + "\n" + rate
        save_result("fleet", data)
        return data


def _ok(results: list[dict]) -> int:
    return sum(1 for r in results if r["status"] == 201)


def in_process_with(settings: dict[str, str], names: list[str], count: int) -> dict:
    out = subprocess.run(
        [python(), "-m", "bench.launch_direct", str(count), *names],
        cwd=BASE_DIR, env=bench_env(**SERVER_SETTINGS, **settings), capture_output=True, text=True, timeout=300,
    )
    if out.returncode != 0:
        raise RuntimeError(f"launch_direct failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main(sys.argv[1:])
