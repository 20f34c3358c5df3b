"""The fixed-timestep loop, on a simulated clock: no drift, batches, catch-up, drops."""
from __future__ import annotations

import asyncio

import pytest

from arena.gameserver.clock import run_fixed_timestep


class FakeTime:
    """A clock that only moves when the loop sleeps, plus scripted stalls and overshoots."""

    def __init__(self, overshoot: float = 0.0) -> None:
        self.now = 100.0
        self.overshoot = overshoot
        self.stalls: dict[int, float] = {}  # wake-up number -> extra seconds lost before it
        self.wakes: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds + self.overshoot + self.stalls.pop(len(self.wakes), 0.0)
        self.wakes.append(self.now)


def run_loop(time: FakeTime, steps: int, **kwargs):
    """Run until `steps` steps; each batch records (time, steps so far)."""
    taken: list[float] = []
    batches: list[tuple[float, int]] = []

    def step(dt: float) -> bool:
        taken.append(dt)
        return len(taken) < steps

    async def after_batch() -> None:
        batches.append((time.now, len(taken)))

    stats = asyncio.run(run_fixed_timestep(step, after_batch, clock=time.clock, sleep=time.sleep, **kwargs))
    return stats, taken, batches


def test_every_step_has_the_same_dt_and_overshoot_never_adds_up():
    time = FakeTime(overshoot=0.004)  # every sleep wakes 4 ms late
    stats, taken, batches = run_loop(time, 600, rate=60)
    assert set(taken) == {1 / 60}
    assert stats.steps == 600 and stats.dropped_steps == 0
    # absolute deadlines: after 10 s of steps the loop is still 4 ms late, not 600 x 4 ms
    assert time.now - 100.0 == pytest.approx(599 / 60 + 0.004, abs=1e-6)


def test_steps_per_wake_runs_them_together_at_the_later_deadline():
    time = FakeTime()
    stats, taken, batches = run_loop(time, 60, rate=60, steps_per_wake=2)
    assert len(time.wakes) == 30  # 60 steps, 2 per wake-up
    # each batch ends on the deadline of its last step, two steps apart
    assert [n for _, n in batches] == list(range(2, 61, 2))
    ends = [t - 100.0 for t, _ in batches]
    assert ends == pytest.approx([(n - 1) / 60 for n in range(2, 61, 2)], abs=1e-9)
    assert stats.late_batches == 0


def test_a_stall_is_caught_up_within_the_cap_and_the_rest_dropped():
    time = FakeTime()
    time.stalls[10] = 0.05  # 3 steps' worth lost before the 11th wake-up
    stats, _, batches = run_loop(time, 120, rate=60, max_catch_up=5)
    assert stats.late_batches == 1 and stats.dropped_steps == 0
    assert max(b - a for (_, a), (_, b) in zip(batches, batches[1:])) == 4  # 1 due + 3 behind

    time = FakeTime()
    time.stalls[10] = 1.0  # a long pause: 60 steps' worth
    stats, _, batches = run_loop(time, 120, rate=60, max_catch_up=5)
    assert max(b - a for (_, a), (_, b) in zip(batches, batches[1:])) == 5  # never more than the cap
    assert stats.dropped_steps == 56  # 61 steps were due at that wake-up; 5 ran
    # and then it is back on a fresh schedule, one step per wake-up
    assert [b - a for (_, a), (_, b) in zip(batches[11:], batches[12:])] == [1] * (len(batches) - 12)


def test_the_loop_ends_on_the_step_that_says_so_and_flushes_once():
    time = FakeTime()
    stats, taken, batches = run_loop(time, 5, rate=60, steps_per_wake=2)
    assert len(taken) == 5 and stats.steps == 5
    assert batches[-1][1] == 5  # the last batch was cut short and still flushed


def test_nonsense_is_refused():
    with pytest.raises(ValueError):
        run_loop(FakeTime(), 1, rate=60, steps_per_wake=0)
