"""One timer for every match of a process.

Each playing room joins the process's `Ticker`; one fixed-timestep loop
(`clock.run_fixed_timestep`, absolute deadlines, injectable clock) wakes once for
all of them, steps each, then lets each flush what it has to send. A hundred
matches cost one wake-up per batch, not a hundred.

A member's exception ends that member alone: it is taken off the schedule with the
exception kept in `member.crash`, and the room that owns it fails its match. The
others are stepped as if nothing happened.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from arena.gameserver.clock import LoopStats, run_fixed_timestep

logger = logging.getLogger("arena.gameserver")


class Member(Protocol):
    """What the ticker drives: a playing room."""

    def step(self, dt: float) -> bool:
        """One step; False to leave the schedule (the match ended or paused)."""

    async def flush(self) -> None:
        """Send what the steps of this wake-up produced (once per wake-up)."""


class Membership:
    """A member's place on the schedule; `done` resolves when it has left."""

    __slots__ = ("member", "done", "crash", "leaving")

    def __init__(self, member: Member) -> None:
        self.member = member
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.crash: BaseException | None = None
        self.leaving = False


class Ticker:
    def __init__(
        self,
        *,
        rate: float,
        steps_per_wake: int = 1,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.rate = rate
        self.steps_per_wake = steps_per_wake
        self.clock = clock
        self.sleep = sleep
        self.stats = LoopStats()
        self.match_steps = 0  # steps summed over the members: each playing match's ticks
        # When metrics are on, two lists (`metrics.BatchedHistogram.values`) that each
        # wake-up appends its seconds to: all its work, and the sending part of it.
        self.timings: tuple[list[float], list[float]] | None = None
        self._batch_started: float | None = None
        self._members: list[Membership] = []
        self._task: asyncio.Task | None = None

    def __len__(self) -> int:
        return len(self._members)

    def join(self, member: Member) -> Membership:
        """Put `member` on the schedule from the next wake-up; await `.done`."""
        membership = Membership(member)
        self._members.append(membership)
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        return membership

    async def _run(self) -> None:
        try:
            while self._members:
                await run_fixed_timestep(
                    self._step, self._flush, rate=self.rate, steps_per_wake=self.steps_per_wake,
                    clock=self.clock, sleep=self.sleep, stats=self.stats,
                )
        finally:
            self._task = None
            for membership in self._members:  # only if the loop itself was cancelled
                _resolve(membership)
            self._members.clear()

    def _step(self, dt: float) -> bool:
        if self._batch_started is None and self.timings is not None:
            self._batch_started = time.perf_counter()
        self.match_steps += len(self._members)
        for membership in self._members:
            if membership.leaving:
                continue
            try:
                if not membership.member.step(dt):
                    membership.leaving = True
            except Exception as error:
                membership.crash, membership.leaving = error, True
        return any(not m.leaving for m in self._members)

    async def _flush(self) -> None:
        timings = self.timings
        if timings is None:
            await self._send()
            return
        sending = time.perf_counter()
        await self._send()
        end = time.perf_counter()
        timings[0].append(end - (self._batch_started or sending))
        timings[1].append(end - sending)
        self._batch_started = None

    async def _send(self) -> None:
        members = list(self._members)
        for membership in members:
            if membership.crash is None:
                try:
                    await membership.member.flush()
                except Exception as error:
                    membership.crash, membership.leaving = error, True
        leaving = [m for m in members if m.leaving]
        if leaving:
            self._members = [m for m in self._members if not m.leaving]
            for membership in leaving:
                _resolve(membership)


def _resolve(membership: Membership) -> None:
    if not membership.done.done():
        membership.done.set_result(None)
