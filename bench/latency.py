"""`python -m bench.latency`: from one player's input to the other player's screen.

In each of a few concurrent matches, player A sends an input about every 100 ms
(at a random phase with respect to the server's ticks) and player B records when
a snapshot first carries `acks.left >= seq`: the input has been applied and B can
see its effect. The latency is the time from A's send to B's receipt, both on
the same clock. Measured with the default 30 Hz snapshots and with a snapshot
every tick (GAME_SNAPSHOT_RATE=60), one web server (warm launcher) for each.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time

from bench.common import DjangoServer, bench_run, machine, prepare_database, report, summary_ms
from bench.density import Accounts, launch_matches, stop_servers
from bench.wsclient import connect

HOST = "127.0.0.1"


async def measure_match(match: dict, seconds: float) -> list[float]:
    sent: dict[int, float] = {}
    pending: list[int] = []
    latencies: list[float] = []

    def on_event(conn, name: str, text: str, now: float) -> None:
        if name != "state" or not pending:
            return
        acked = json.loads(text[2:])[1]["acks"]["left"]
        while pending and pending[0] <= acked:
            latencies.append(now - sent.pop(pending.pop(0)))

    a = await connect(HOST, match["port"], match["tokens"][0], timeout=20)
    b = await connect(HOST, match["port"], match["tokens"][1], timeout=20, on_event=on_event)
    try:
        # wait for the game to run
        deadline = time.monotonic() + 10
        while b.last_state is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        end = time.monotonic() + seconds
        await asyncio.sleep(random.random() * 0.1)
        while time.monotonic() < end and not b.game_over:
            seq = a.send_input(random.choice((-1, 0, 1)))
            sent[seq] = time.monotonic()
            pending.append(seq)
            await asyncio.sleep(0.07 + random.random() * 0.06)
        await asyncio.sleep(0.3)
    finally:
        a.close()
        b.close()
    return latencies


async def run_matches(matches: list[dict], seconds: float) -> list[float]:
    results = await asyncio.gather(*(measure_match(m, seconds) for m in matches))
    return [x for r in results for x in r]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matches", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    args = parser.parse_args(argv)
    data: dict = {"machine": machine(), "args": vars(args)}
    rows = []
    with bench_run("bench.latency"):
        accounts_data = prepare_database(4 * args.matches + 4)
        accounts = Accounts(accounts_data["players"])
        for rate in (30, 60):
            with DjangoServer(f"latency-{rate}", GAME_SERVER_LAUNCHER="warm", GAME_SNAPSHOT_RATE=str(rate)) as server:
                pairs = [accounts.take(2) for _ in range(args.matches)]
                matches, errors = launch_matches(server, accounts_data["ops"], pairs, points=21)
                if errors:
                    raise RuntimeError(errors)
                latencies = asyncio.run(run_matches(matches, args.seconds))
                from bench.common import game_servers

                stop_servers(game_servers(server.pid()))
            s = summary_ms(latencies)
            rows.append([f"{rate} Hz", s["n"], s["p50"], s["p99"], s["max"], 1000 / 60 + 5])
            data[f"snapshots_{rate}"] = s
    report("latency", data, ["snapshots", "inputs", "p50 ms", "p99 ms", "max ms", "target p99 ms"], rows,
           title="Input latency: player A's input -> visible in player B's snapshot (60 Hz ticks)")
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
