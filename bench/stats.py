"""Turning what the load generator recorded into rates and latencies.

Snapshot latency. A game server steps on absolute deadlines `start + n / 60`
(see `arena.gameserver.clock`) and sends the state of tick `k` right after that
step, so the state of tick `k` is due at `start + k / 60` plus a constant. The
client and the server read the same clock (CLOCK_MONOTONIC), so for every state
received, `arrival - k / 60` is that constant plus how late the state came. The
smallest value over everything received from one match (every connection, the
whole window) stands for an on-time delivery; a state's latency is how much later
than that it arrived. It is therefore a lower bound, short of the true
figure by the best delivery time on the loopback (a fraction of a millisecond).
It includes the server's lateness in running the tick, the time to write the
message to every recipient, the kernel, and the load generator's own delay in
reading it (whose CPU is reported next to it).

Dropped snapshots: states come every `snapshot_every` ticks; a larger jump in the
ticks a client receives means snapshots that were never sent (the server ran late
and caught up several steps at once) or never arrived.
"""
from __future__ import annotations

import contextlib
from collections import defaultdict

from bench.common import percentile


def merge(results: list[dict]) -> dict[str, dict]:
    conns: dict[str, dict] = {}
    for result in results:
        conns.update(result["conns"])
    return conns


def analyse(results: list[dict], *, tick_rate: int = 60, snapshot_every: int = 2) -> dict:
    conns = merge(results)
    by_match: dict[str, list[dict]] = defaultdict(list)
    for conn in conns.values():
        by_match[conn["match"]].append(conn)
    latency: dict[str, list[float]] = {"player": [], "spectator": [], "probe": []}
    tick_rates: list[float] = []
    received = dropped = 0
    silent = 0
    for match_conns in by_match.values():
        offsets = [at - tick / tick_rate for c in match_conns for tick, at in zip(c["ticks"], c["times"])]
        if not offsets:
            silent += 1
            continue
        base = min(offsets)
        for conn in match_conns:
            bucket = "probe" if conn["probe"] else conn["role"]
            latency[bucket].extend(at - tick / tick_rate - base for tick, at in zip(conn["ticks"], conn["times"]))
            ticks = conn["ticks"]
            received += len(ticks)
            for before, after in zip(ticks, ticks[1:]):
                if after - before > snapshot_every:
                    dropped += (after - before + snapshot_every - 1) // snapshot_every - 1
        players = [c for c in match_conns if c["role"] == "player" and len(c["ticks"]) > 2]
        if players:
            best = max(players, key=lambda c: len(c["ticks"]))
            rate = _slope(best["times"], best["ticks"])
            if rate == rate:
                tick_rates.append(rate)
    cpu = sum(r["cpu"] for r in results)
    window = max((r["window"] for r in results), default=0) or 1
    return {
        "matches": len(by_match),
        "silent_matches": silent,
        "tick_rate_p50": percentile(tick_rates, 50),
        "tick_rate_min": min(tick_rates) if tick_rates else float("nan"),
        "tick_rate_p1": percentile(tick_rates, 1),
        "latency_ms": {k: _ms(v) for k, v in latency.items()},
        "snapshots": received,
        "dropped": dropped,
        "dropped_pct": 100.0 * dropped / (received + dropped) if received + dropped else float("nan"),
        "loadgen_cpu_pct": 100.0 * cpu / window,
        "inputs_per_s": sum(r["inputs"] for r in results) / window,
    }


def _slope(xs: list[float], ys: list[int]) -> float:
    """Least-squares slope of ys over xs: ticks per second, robust to late arrivals at the ends."""
    n = len(xs)
    if n < 3:
        return float("nan")
    mx, my = sum(xs) / n, sum(ys) / n
    var = sum((x - mx) ** 2 for x in xs)
    if var <= 0:
        return float("nan")
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / var


def server_tick_rate(loop: dict, tick_rate: int = 60) -> float:
    """Ticks per second the servers simulated, from the loop statistics they log at exit.

    A server that falls behind runs up to 5 steps at once to catch up; beyond that
    it drops steps. Steps run / (run + dropped) is the share of game time kept.
    """
    total = loop["steps"] + loop["dropped_steps"]
    return tick_rate * loop["steps"] / total if total else float("nan")


def _ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50) * 1000,
        "p99": percentile(values, 99) * 1000,
        "max": (max(values) * 1000) if values else float("nan"),
    }


# --- CPU accounting -------------------------------------------------------------------


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """CPU time (user + system) of each process so far, in seconds.

    From the scheduler's own count (`/proc/<pid>/schedstat`, nanoseconds) where
    the kernel has it: `cpu_times()` comes in 10 ms ticks, 1 ms/s of resolution
    over a 10 s window, as large as the differences some comparisons look for."""
    import psutil

    out = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/schedstat") as f:
                out[pid] = int(f.read().split()[0]) / 1e9
            continue
        except (OSError, ValueError, IndexError):
            pass
        with contextlib.suppress(psutil.Error):
            t = psutil.Process(pid).cpu_times()
            out[pid] = t.user + t.system
    return out


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    hz = 100.0
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return (total - idle) / hz, total / hz


def uss_mib(pids: list[int], limit: int = 20) -> list[float]:
    import psutil

    values = []
    for pid in pids[:limit]:
        with contextlib.suppress(psutil.Error):
            values.append(psutil.Process(pid).memory_full_info().uss / 2**20)
    return values
