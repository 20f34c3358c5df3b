"""The load generator: processes full of lean clients, driven by the benchmark.

Each worker process runs one asyncio loop with many `bench.wsclient`
connections and obeys commands sent over a pipe:

* ``("connect", [spec, ...])`` opens connections (a spec is a dict: ``key``,
  ``match``, ``port``, ``token``, ``role`` "player"/"spectator", ``behaviour``
  "random"/"follow"/"idle", ``probe``: a python-socketio client instead of a lean
  one) and answers ``("connected", ok, [errors])``;
* ``("measure", t0, t1)`` records the states received between the monotonic
  times t0 and t1 and answers ``("results", {...})`` after t1: per connection
  the ticks and their arrival times, and the worker's own CPU time;
* ``("close",)`` closes every connection; ``("quit",)`` ends the worker.

Players send an `input` at 10 Hz: a random move ("random"), or towards the ball
("follow", so that a long measurement is not cut short by the end of the match).
"""
from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import random
import resource
import time
from array import array

from bench.wsclient import Connection, connect

INPUT_INTERVAL = 0.1
CONNECT_CONCURRENCY = 64
HOST = "127.0.0.1"


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class ProbeConnection:
    """A real python-socketio client (arena.client.GameClient) recording its states."""

    def __init__(self, spec: dict) -> None:
        from arena.client import GameClient

        self.client = GameClient(HOST, spec["port"], spec.get("token"))
        self.ticks = array("q")
        self.times = array("d")
        self.last_state = None

        async def on_state(payload):
            self.ticks.append(payload["tick"])
            self.times.append(time.monotonic())
            self.last_state = payload

        self.client.sio.on("state", on_state)

    async def start(self) -> None:
        await self.client.connect(timeout=20)

    def close(self) -> None:
        asyncio.get_running_loop().create_task(self.client.close())


class Worker:
    def __init__(self, pipe) -> None:
        self.pipe = pipe
        self.conns: dict[str, Connection | ProbeConnection] = {}
        self.specs: dict[str, dict] = {}
        self.tasks: list[asyncio.Task] = []
        self.inputs_sent = 0

    async def run(self) -> None:
        while True:
            command = await asyncio.to_thread(self.pipe.recv)
            name = command[0]
            if name == "connect":
                ok, errors = await self.connect_all(command[1])
                self.pipe.send(("connected", ok, errors[:10]))
            elif name == "measure":
                self.pipe.send(("results", await self.measure(command[1], command[2])))
            elif name == "close":
                await self.close_all()
                self.pipe.send(("closed",))
            elif name == "quit":
                await self.close_all()
                return

    async def connect_all(self, specs: list[dict]) -> tuple[int, list[str]]:
        gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
        errors: list[str] = []

        async def one(spec: dict) -> None:
            async with gate:
                try:
                    if spec.get("probe"):
                        conn = ProbeConnection(spec)
                        await conn.start()
                    else:
                        conn = await connect(HOST, spec["port"], spec.get("token"), timeout=20)
                except Exception as error:  # reported to the benchmark
                    errors.append(f"{spec['key']}: {error!r}")
                    return
                self.conns[spec["key"]] = conn
                self.specs[spec["key"]] = spec
                if spec["role"] == "player" and spec.get("behaviour", "random") != "idle":
                    self.tasks.append(asyncio.create_task(self.play(conn, spec)))

        await asyncio.gather(*(one(spec) for spec in specs))
        return len(specs) - len(errors), errors

    async def play(self, conn, spec: dict) -> None:
        behaviour = spec.get("behaviour", "random")
        lean = isinstance(conn, Connection)
        side = None
        await asyncio.sleep(random.random() * INPUT_INTERVAL)  # spread the players over the interval
        seq = 0
        while True:
            if behaviour == "follow":
                move = 0
                state = conn.last_state
                if state is not None:
                    if lean:
                        if side is None and conn.welcome:
                            side = json.loads(conn.welcome[2:])[1]["side"]
                        state = json.loads(state[2:])[1]
                    else:
                        side = conn.client.side
                    if side:
                        gap = state["ball"]["y"] - state["paddles"][side]
                        move = 0 if abs(gap) < 15 else (1 if gap > 0 else -1)
            else:
                move = random.choice((-1, 0, 1))
            try:
                if lean:
                    conn.send_input(move)
                else:
                    seq += 1
                    await conn.client.sio.emit("input", {"seq": seq, "move": move})
                self.inputs_sent += 1
            except Exception:
                return
            await asyncio.sleep(INPUT_INTERVAL)

    async def measure(self, t0: float, t1: float) -> dict:
        for conn in self.conns.values():
            del conn.ticks[:]
            del conn.times[:]
        sent0 = self.inputs_sent
        await asyncio.sleep(max(0.0, t0 - time.monotonic()))
        cpu_start = _cpu()
        await asyncio.sleep(max(0.0, t1 - time.monotonic()))
        cpu = _cpu() - cpu_start
        out = {}
        for key, conn in self.conns.items():
            ticks, times = [], []
            for tick, at in zip(conn.ticks, conn.times):
                if t0 <= at <= t1:
                    ticks.append(tick)
                    times.append(at)
            spec = self.specs[key]
            out[key] = {"match": spec["match"], "role": spec["role"], "probe": bool(spec.get("probe")),
                        "ticks": ticks, "times": times}
        return {"conns": out, "cpu": cpu, "window": t1 - t0, "inputs": self.inputs_sent - sent0,
                "pid": os.getpid()}

    async def close_all(self) -> None:
        for task in self.tasks:
            task.cancel()
        self.tasks.clear()
        for conn in self.conns.values():
            conn.close()
        self.conns.clear()
        self.specs.clear()
        await asyncio.sleep(0.2)


def _worker_main(pipe) -> None:
    asyncio.run(Worker(pipe).run())


class LoadGenerator:
    """The benchmark's handle on its worker processes."""

    def __init__(self, workers: int = 2) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.pipes = []
        self.procs = []
        for _ in range(workers):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=_worker_main, args=(theirs,), daemon=True)
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)

    def _ask(self, messages: list, timeout: float) -> list:
        for pipe, message in zip(self.pipes, messages):
            if message is not None:
                pipe.send(message)
        answers = []
        deadline = time.monotonic() + timeout
        for pipe, message in zip(self.pipes, messages):
            if message is None:
                answers.append(None)
                continue
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"load worker did not answer {message[0]!r} within {timeout} s")
            answers.append(pipe.recv())
        return answers

    def connect(self, specs: list[dict], timeout: float = 120) -> tuple[int, list[str]]:
        """Spread connections over the workers (a match's players stay together)."""
        shares: list[list[dict]] = [[] for _ in self.pipes]
        for i, spec in enumerate(specs):
            shares[hash(spec["match"]) % len(shares) if spec["role"] == "player" else i % len(shares)].append(spec)
        answers = self._ask([("connect", share) if share else None for share in shares], timeout)
        ok, errors = 0, []
        for answer in answers:
            if answer:
                ok += answer[1]
                errors += answer[2]
        return ok, errors

    def measure(self, seconds: float, delay: float = 0.2) -> list[dict]:
        t0 = time.monotonic() + delay
        t1 = t0 + seconds
        answers = self._ask([("measure", t0, t1)] * len(self.pipes), seconds + delay + 60)
        return [answer[1] for answer in answers]

    def close(self) -> None:
        self._ask([("close",)] * len(self.pipes), 60)

    def stop(self) -> None:
        for pipe in self.pipes:
            try:
                pipe.send(("quit",))
            except OSError:
                pass
        for proc in self.procs:
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)

    def __enter__(self) -> LoadGenerator:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
