"""`python -m bench.profile`: where does one game server spend its CPU?

Launches N matches (warm launcher) with two lean players each, optionally S lean
spectators on the first one, and measures the first match's server: user and
system CPU per second, context switches, then samples it with py-spy (when it is
installed: `pip install py-spy`) and prints a flat profile: the functions the
samples were in ("own") and the ones on the stack ("inclusive").

    python -m bench.profile                        # one match, two players
    python -m bench.profile --spectators 500       # what spectators cost
    python -m bench.profile --env GAME_SNAPSHOT_RATE=60
    python -m bench.profile --cprofile             # the server in this process, under cProfile

With --cprofile the game server runs in this process (same code: `serve()`), so
that cProfile can count what its event loop does: loop iterations, tasks,
socket writes per second.
"""
from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DjangoServer, bench_run, game_servers, prepare_database, save_result
from bench.density import launch_matches, player_specs
from bench.load import LoadGenerator


IDLE_LEAVES = ("select (selectors.py", "_worker (concurrent/futures/thread.py", "wait (threading.py")  # waits


def flat_profile(raw: str, top: int = 25) -> tuple[list[tuple[float, str]], list[tuple[float, str]], int]:
    """Own and inclusive shares of the samples taken while the server was busy.

    Samples whose innermost frame is a wait (epoll, an idle worker thread) are left
    out: only where the CPU went counts.
    """
    own: collections.Counter = collections.Counter()
    inclusive: collections.Counter = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    pct = lambda c: 100.0 * c / total if total else 0.0  # noqa: E731
    return ([(pct(c), f) for f, c in own.most_common(top)],
            [(pct(c), f) for f, c in inclusive.most_common(top)], total)


def in_process(args) -> dict:
    """Serve one match in this process under cProfile, played by two lean players."""
    import asyncio
    import cProfile
    import io
    import os
    import pstats
    import signal
    import threading

    from bench.common import bench_env, insert_match

    accounts = prepare_database(2)
    os.environ.update(bench_env(**dict(item.split("=", 1) for item in args.env)))
    import django

    django.setup()
    import arena.gameserver.main as main

    (name_a, token_a), (name_b, token_b) = accounts["players"][:2]
    match = insert_match([name_a, name_b], points_to_win=21)
    profiler = cProfile.Profile()
    result: dict = {}
    load = LoadGenerator(1)

    def drive(port: int, loop) -> None:
        specs = [{"key": f"p{i}", "match": "m", "port": port, "token": token, "role": "player",
                  "behaviour": "follow"} for i, token in enumerate((token_a, token_b))]
        specs += [{"key": f"s{i}", "match": "m", "port": port, "role": "spectator"} for i in range(args.spectators)]
        load.connect(specs)
        time.sleep(2)
        loop.call_soon_threadsafe(profiler.enable)
        cpu0 = time.process_time()
        time.sleep(args.seconds)
        loop.call_soon_threadsafe(profiler.disable)
        result["cpu_ms_per_s"] = 1000 * (time.process_time() - cpu0) / args.seconds
        os.kill(os.getpid(), signal.SIGTERM)  # the session's own shutdown path

    def announce(line: str) -> None:
        threading.Thread(target=drive, args=(int(line.split()[1]), asyncio.get_running_loop()), daemon=True).start()

    main.announce = announce
    try:
        main.serve(str(match.id))
    finally:
        load.stop()
    stats = pstats.Stats(profiler)
    calls = {f"{func[0].rsplit('/', 1)[-1]}:{func[2]}": (cc, tt, ct) for func, (cc, nc, tt, ct, _) in stats.stats.items()}

    def per_second(suffix: str) -> float:
        return sum(v[0] for k, v in calls.items() if k.endswith(suffix)) / args.seconds

    result.update({
        "loop_iterations_per_s": per_second("base_events.py:_run_once"),
        "tasks_created_per_s": per_second("base_events.py:create_task"),
        "socket_sends_per_s": per_second(":<method 'send' of '_socket.socket' objects>"),
        "steps_per_s": per_second("session.py:step"),
    })
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
    print(f"in-process game server, {args.spectators} spectator(s): "
          f"{result['cpu_ms_per_s']:.1f} ms CPU/s (profiler included); per second: "
          f"{result['loop_iterations_per_s']:.0f} event-loop iterations, {result['tasks_created_per_s']:.0f} tasks "
          f"created, {result['socket_sends_per_s']:.0f} socket sends, {result['steps_per_s']:.0f} steps")
    print(out.getvalue())
    save_result(args.name + "-cprofile", result)
    return result


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=1)
    parser.add_argument("--spectators", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE for the servers")
    parser.add_argument("--name", default="profile")
    parser.add_argument("--cprofile", action="store_true", help="serve one match in this process under cProfile")
    args = parser.parse_args(argv)
    if args.cprofile:
        with bench_run("bench.profile"):
            return in_process(args)
    import psutil

    settings = dict(item.split("=", 1) for item in args.env)
    data: dict = {"args": vars(args)}
    with bench_run("bench.profile"):
        accounts = prepare_database(2 * args.matches + 2)
        players = accounts["players"]
        with DjangoServer("profile", GAME_SERVER_LAUNCHER="warm", **settings) as server, LoadGenerator(2) as load:
            pairs = [[players[2 * i], players[2 * i + 1]] for i in range(args.matches)]
            matches, errors = launch_matches(server, accounts["ops"], pairs, points=21)
            if errors:
                raise RuntimeError(errors)
            specs = player_specs(matches, "follow", 0)
            first = matches[0]
            specs += [{"key": f"spectator{i}", "match": first["id"], "port": first["port"], "role": "spectator"}
                      for i in range(args.spectators)]
            ok, errors = load.connect(specs)
            time.sleep(2)
            servers = game_servers(server.pid())
            target = next(p for p in servers if _listens_on(p, first["port"]))
            proc = psutil.Process(target)
            t0, c0, w0 = proc.cpu_times(), proc.num_ctx_switches(), time.monotonic()
            time.sleep(args.seconds)
            t1, c1, w1 = proc.cpu_times(), proc.num_ctx_switches(), time.monotonic()
            span = w1 - w0
            data.update({
                "connections": ok, "connect_errors": errors[:5],
                "user_ms_per_s": 1000 * (t1.user - t0.user) / span,
                "system_ms_per_s": 1000 * (t1.system - t0.system) / span,
                "voluntary_switches_per_s": (c1.voluntary - c0.voluntary) / span,
                "involuntary_switches_per_s": (c1.involuntary - c0.involuntary) / span,
            })
            print(f"{args.matches} match(es), {args.spectators} spectator(s), {ok} connections; server {target}:")
            print(f"  CPU {data['user_ms_per_s']:.1f} ms/s user + {data['system_ms_per_s']:.1f} ms/s system; "
                  f"{data['voluntary_switches_per_s']:.0f} voluntary and "
                  f"{data['involuntary_switches_per_s']:.0f} involuntary context switches/s")
            spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
            if Path(spy).exists():
                with tempfile.NamedTemporaryFile(suffix=".txt") as out:
                    subprocess.run([spy, "record", "-p", str(target), "-d", str(int(args.seconds)), "-r", "250",
                                    "-f", "raw", "-o", out.name, "--nonblocking"],
                                   capture_output=True, timeout=args.seconds + 60)
                    raw = Path(out.name).read_text()
                own, inclusive, total = flat_profile(raw, args.top)
                print(f"  py-spy: {total} busy samples at 250 Hz")
                print("  own time:")
                for pct, frame in own:
                    print(f"    {pct:5.1f}%  {frame}")
                print("  inclusive:")
                for pct, frame in inclusive:
                    print(f"    {pct:5.1f}%  {frame}")
                data["own"], data["inclusive"], data["samples"] = own, inclusive, total
            else:
                print("  (py-spy not installed: no profile)")
            load.close()
        save_result(args.name, data)
    return data


def _listens_on(pid: int, port: int) -> bool:
    import psutil

    try:
        return any(c.laddr and c.laddr.port == port and c.status == "LISTEN"
                   for c in psutil.Process(pid).net_connections(kind="tcp"))
    except psutil.Error:
        return False


if __name__ == "__main__":
    main(sys.argv[1:])
