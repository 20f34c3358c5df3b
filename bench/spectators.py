"""`python -m bench.spectators`: one match watched by a growing crowd.

One match, two lean players following the ball (10 Hz inputs), two
python-socketio spectators as probes and N lean spectators, for N up to 1000 (a
fresh match at each step, so that no step outlasts its match). At each step: the players' tick rate and snapshot latency (see
`bench.stats`), the spectators' latency, dropped snapshots, and the CPU of the
game server and of the load generator.
"""
from __future__ import annotations

import argparse
import sys
import time

from bench.common import (
    DjangoServer,
    add_emit_option,
    bench_run,
    broadcast_settings,
    game_servers,
    machine,
    prepare_database,
    report,
    table,
)
from bench.density import launch_matches, player_specs, stop_servers
from bench.load import LoadGenerator
from bench.stats import analyse, cpu_seconds, machine_busy

HEADERS = ["spectators", "connected", "players tick/s", "players p50 ms", "players p99 ms", "spect. p50 ms",
           "spect. p99 ms", "probe p99 ms", "dropped snaps", "server CPU %", "loadgen CPU %", "other CPU %"]


def plot(steps: list[dict], path, emit: list[dict] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [s["spectators"] for s in steps]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    ax1.plot(xs, [s["tick_rate_p50"] for s in steps], "o-", label="players' tick rate")
    ax1.axhline(59.5, color="grey", lw=0.8, ls=":", label="target 59.5")
    ax1.set_xlabel("spectators")
    ax1.set_ylabel("ticks per second")
    ax1.set_title("Tick rate")
    ax1.legend()
    ax1b = ax1.twinx()
    ax1b.plot(xs, [s["server_cpu_pct"] for s in steps], "^:", color="tab:red", label="server CPU %")
    ax1b.set_ylabel("game server CPU % (one core = 100)")
    ax1b.legend(loc="lower left")
    ax2.plot(xs, [s["latency_ms"]["player"]["p50"] for s in steps], "o-", label="players p50")
    ax2.plot(xs, [s["latency_ms"]["player"]["p99"] for s in steps], "s--", label="players p99")
    ax2.plot(xs, [s["latency_ms"]["spectator"]["p99"] for s in steps], "d:", label="spectators p99")
    if emit:
        px = [s["spectators"] for s in emit]
        ax1.plot(px, [s["tick_rate_p50"] for s in emit], "o-", color="tab:grey",
                 label="tick rate, emit()")
        ax1b.plot(px, [s["server_cpu_pct"] for s in emit], "^:", color="tab:olive",
                  label="server CPU %, emit()")
        ax1.legend(loc="center left")
        ax1b.legend(loc="lower left")
        ax2.plot(px, [s["latency_ms"]["player"]["p99"] for s in emit], "s-", color="tab:grey",
                 label="players p99, emit()")
    ax2.axhline(25, color="grey", lw=0.8, ls=":", label="target p99 25 ms")
    ax2.set_yscale("log")
    ax2.set_xlabel("spectators")
    ax2.set_ylabel("ms")
    ax2.set_title("Snapshot latency")
    ax2.legend()
    title = "Arena spectators: one match, 60 Hz ticks, 30 Hz snapshots to everyone"
    fig.suptitle(title + (" (grey: python-socketio's emit())" if emit else ""))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="0,100,250,500,1000")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--plot", default="docs/bench-spectators.png")
    add_emit_option(parser)
    args = parser.parse_args(argv)
    sweep = [int(x) for x in args.sweep.split(",")]
    data: dict = {"machine": machine(), "args": vars(args), "steps": []}
    with bench_run("bench.spectators"):
        accounts = prepare_database(2 * len(sweep) + 2)
        settings = {"GAME_SERVER_LAUNCHER": "warm", "GAME_MAX_SPECTATORS": str(max(sweep) + 10),
                    **broadcast_settings(args)}
        with DjangoServer("spectators", **settings) as server, \
                LoadGenerator(args.workers) as load:
            for index, target in enumerate(sweep):
                # A fresh match for each step: a long sweep must not outlast a match.
                pair = [accounts["players"][2 * index], accounts["players"][2 * index + 1]]
                matches, errors = launch_matches(server, accounts["ops"], [pair], points=21)
                if errors:
                    raise RuntimeError(errors)
                match = matches[0]
                specs = player_specs(matches, "follow", probes=1)
                specs.append({"key": f"{match['id']}/probe2", "match": match["id"], "port": match["port"],
                              "role": "spectator", "probe": True})
                specs += [{"key": f"{match['id']}/s{i}", "match": match["id"], "port": match["port"],
                           "role": "spectator"} for i in range(target)]
                ok, connect_errors = load.connect(specs)
                server_pid = game_servers(server.pid())[0]
                time.sleep(args.warmup)
                workers = [p.pid for p in load.procs]
                c0, l0, b0, w0 = cpu_seconds([server_pid]), cpu_seconds(workers), machine_busy(), time.monotonic()
                results = load.measure(args.seconds)
                c1, l1, b1, w1 = cpu_seconds([server_pid]), cpu_seconds(workers), machine_busy(), time.monotonic()
                window = w1 - w0
                stop_servers([server_pid])
                load.close()
                step = analyse(results)
                server_cpu = sum(c1[p] - c0[p] for p in c1 if p in c0)
                loadgen_cpu = sum(l1[p] - l0[p] for p in l1 if p in l0)
                step.update({
                    "spectators": target,
                    "connected": ok,
                    "server_cpu_pct": 100 * server_cpu / window,
                    "loadgen_cpu_pct_psutil": 100 * loadgen_cpu / window,
                    "other_cpu_pct": 100 * ((b1[0] - b0[0]) - server_cpu - loadgen_cpu) / window,
                    "connect_errors": connect_errors[:5],
                })
                lat = step["latency_ms"]
                row = [target, ok, step["tick_rate_p50"], lat["player"]["p50"], lat["player"]["p99"],
                       lat["spectator"]["p50"], lat["spectator"]["p99"], lat["probe"]["p99"], step["dropped"],
                       step["server_cpu_pct"], step["loadgen_cpu_pct_psutil"], step["other_cpu_pct"]]
                step["row"] = row
                data["steps"].append(step)
                print(table(HEADERS, [row]).splitlines()[-1], flush=True)
        report("spectators" + ("-emit" if args.emit else ""), data, HEADERS, [s["row"] for s in data["steps"]],
               title="Spectators: one match, 2 players + 2 python-socketio probes + N lean spectators")
        if args.plot:
            plot(data["steps"], args.plot)
            print(f"plot: {args.plot}")
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
