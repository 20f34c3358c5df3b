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
    late_batches: int = 0  # wake-ups that had to run more steps than planned
    dropped_steps: int = 0


async def run_fixed_timestep(
    step: Callable[[float], bool],
    after_batch: Callable[[], Awaitable[None]],
    *,
    rate: float,
    steps_per_wake: int = 1,
    max_catch_up: int = 5,
    clock: Callable[[], float] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    stats: LoopStats | None = None,
) -> LoopStats:
    """Call `step(dt)` `rate` times per second until it returns False.

    `after_batch` runs once after each batch of steps (sending a snapshot, say),
    so I/O is paid once per wake-up, not once per step. With `steps_per_wake`
    N > 1 the loop wakes on every Nth deadline only and runs the N steps due:
    when snapshots go out every N steps, waking in between would only apply
    inputs earlier to a state nobody sees before the next snapshot anyway, and
    each wake-up costs the event loop more than a step. Up to `max_catch_up`
    steps beyond those are run to catch up after a stall.

    The counts go to `stats` as they happen when given (a caller that reads them
    while the loop runs), else to a new `LoopStats`; either is returned.
    """
    if steps_per_wake < 1 or max_catch_up < 1:
        raise ValueError("steps_per_wake and max_catch_up must be >= 1")
    clock = clock or asyncio.get_running_loop().time
    dt = 1.0 / rate
    batch_cap = steps_per_wake + max_catch_up - 1
    stats = stats if stats is not None else LoopStats()
    deadline = clock()  # of the next step
    while True:
        now = clock()
        wake_at = deadline + (steps_per_wake - 1) * dt
        if now < wake_at:
            await sleep(wake_at - now)
            now = clock()
        batch = 0
        while deadline <= now and batch < batch_cap:
            batch += 1
            stats.steps += 1
            deadline += dt
            if not step(dt):
                await after_batch()
                return stats
        if batch > steps_per_wake:
            stats.late_batches += 1
        if deadline <= now:
            behind = int((now - deadline) / dt) + 1
            stats.dropped_steps += behind
            deadline += behind * dt
        await after_batch()
