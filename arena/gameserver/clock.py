"""A fixed-timestep loop scheduled on absolute deadlines ("Fix Your Timestep!").

The simulation always advances by the same `dt`, whatever the scheduler does.
Deadlines are `start + n * dt`, never `now + dt`, so sleep overshoot does not add
up into drift. When the process falls behind (a GC pause, a busy core) it runs up
to `max_catch_up` steps at once; beyond that it drops the backlog rather than
spiral, and counts what it dropped.
"""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass
class LoopStats:
    steps: int = 0
    late_batches: int = 0  # times more than one step had to run at once
    dropped_steps: int = 0


async def run_fixed_timestep(
    step: Callable[[float], bool],
    after_batch: Callable[[], Awaitable[None]],
    *,
    rate: float,
    max_catch_up: int = 5,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> LoopStats:
    """Call `step(dt)` `rate` times per second until it returns False.

    `after_batch` runs once after each batch of steps (sending a snapshot, say),
    so I/O is paid once per wake-up, not once per step.
    """
    clock = clock or asyncio.get_running_loop().time
    dt = 1.0 / rate
    stats = LoopStats()
    deadline = clock()
    while True:
        now = clock()
        if now < deadline:
            await sleep(deadline - now)
            now = clock()
        batch = 0
        while deadline <= now and batch < max_catch_up:
            batch += 1
            stats.steps += 1
            deadline += dt
            if not step(dt):
                await after_batch()
                return stats
        if batch > 1:
            stats.late_batches += 1
        if deadline <= now:
            behind = int((now - deadline) / dt) + 1
            stats.dropped_steps += behind
            deadline += behind * dt
        await after_batch()
