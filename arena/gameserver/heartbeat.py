"""The process's heartbeat: one database write every few seconds for all its matches.

A room adds its match while it runs and discards it when it ends. However many
matches a process serves, its heartbeat costs one UPDATE per interval
(`services.matches_heartbeat`), made through the process's one database thread.
The same write records each match's spectator count (what `manage.py matches`
shows; the game servers are the only ones who know it) and says which matches are
no longer this process's to serve (cancelled, failed over after a lost host,
moved): `on_ended` stops each of them, and its clients get `game_over` with that
reason.
"""
from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping

logger = logging.getLogger("arena.gameserver")


class Heartbeat:
    def __init__(
        self,
        write: Callable[[Mapping[str, int]], Awaitable[dict[str, str]]],
        interval: float,
        on_ended: Callable[[str, str], object] | None = None,
    ) -> None:
        self.write = write
        self.interval = interval
        self.on_ended = on_ended
        # match id -> how to count its spectators now
        self.matches: dict[str, Callable[[], int]] = {}
        self._task: asyncio.Task | None = None

    def add(self, match_id: str, spectators: Callable[[], int] = lambda: 0) -> None:
        self.matches[match_id] = spectators
        if self._task is None:
            self._task = asyncio.create_task(self._run())

    def discard(self, match_id: str) -> None:
        self.matches.pop(match_id, None)

    async def _run(self) -> None:
        try:
            while self.matches:
                try:
                    ended = await self.write({match_id: count() for match_id, count in sorted(self.matches.items())})
                except Exception:
                    logger.warning("heartbeat write failed", exc_info=True)
                else:
                    for match_id, reason in (ended or {}).items():
                        logger.warning("match %s is no longer live here (%s): ending its session", match_id, reason)
                        self.discard(match_id)
                        if self.on_ended is not None:
                            self.on_ended(match_id, reason)
                await asyncio.sleep(self.interval)
        finally:
            self._task = None

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
