"""One timer for all the matches of a process, on a simulated clock."""
from __future__ import annotations

import asyncio

from arena.gameserver.ticker import Ticker
from tests.gameserver.test_clock import FakeTime


class Member:
    def __init__(self, steps: int, fail_at: int | None = None) -> None:
        self.steps, self.fail_at = steps, fail_at
        self.taken = 0
        self.flushes = 0

    def step(self, dt: float) -> bool:
        self.taken += 1
        if self.taken == self.fail_at:
            raise RuntimeError("bug in the rules")
        return self.taken < self.steps

    async def flush(self) -> None:
        self.flushes += 1


def test_one_wake_up_steps_every_member_and_a_crash_ends_only_its_member():
    time = FakeTime()

    async def scenario():
        ticker = Ticker(rate=60, steps_per_wake=2, clock=time.clock, sleep=time.sleep)
        healthy, broken, late = Member(120), Member(120, fail_at=31), Member(40)
        joined = []
        step = healthy.step

        def step_and_let_one_join(dt: float) -> bool:
            if healthy.taken == 20:
                joined.append(ticker.join(late))  # joins a schedule already running
            return step(dt)

        healthy.step = step_and_let_one_join
        first, second = ticker.join(healthy), ticker.join(broken)
        await asyncio.gather(first.done, second.done)
        third = joined[0]
        await third.done
        return ticker, (healthy, broken, late), (first, second, third)

    ticker, (healthy, broken, late), (first, second, third) = asyncio.run(scenario())
    assert healthy.taken == 120 and late.taken == 40
    assert broken.taken == 31 and isinstance(second.crash, RuntimeError)
    assert first.crash is None and third.crash is None
    assert len(time.wakes) == 60, "one wake-up per batch for all members, not one per member"
    assert ticker.stats.steps == 120 and ticker.stats.dropped_steps == 0
    assert healthy.flushes == 60 and broken.flushes == 15  # its crashed batch sends nothing


def test_a_member_that_raises_while_flushing_leaves_alone():
    time = FakeTime()

    class BadFlush(Member):
        async def flush(self) -> None:
            raise ValueError("cannot encode")

    async def scenario():
        ticker = Ticker(rate=60, clock=time.clock, sleep=time.sleep)
        good, bad = ticker.join(Member(10)), ticker.join(BadFlush(10))
        await asyncio.gather(good.done, bad.done)
        return good, bad

    good, bad = asyncio.run(scenario())
    assert good.crash is None and good.member.taken == 10
    assert isinstance(bad.crash, ValueError) and bad.member.taken == 1
