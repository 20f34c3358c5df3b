"""The matches one game-server process serves: one event loop, one timer, one heartbeat.

Each match keeps everything a client can see: its own port (a listening socket
bound by the caller), its own Socket.IO server on its own aiohttp site, its own
room. What the matches of a process share is what costs per process: the event
loop, the `Ticker` that steps every playing match on one schedule, the
`Heartbeat` that writes one UPDATE for all of them, and the one database thread.

With ``GAME_MATCHES_PER_PROCESS=1`` a process runs one `Host` with one match (the
seed's mode); a shared process (`arena.gameserver.shared`) runs one `Host` with up
to N.
"""
from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web

from arena.gameserver.contract import MatchInfo
from arena.gameserver.game import GameFactory, load_rules
from arena.gameserver import remote_control
from arena.gameserver.heartbeat import Heartbeat
from arena.gameserver.metrics import FLUSH_SECONDS, ProcessMetrics, log_summary
from arena.gameserver.room import GameSettings, Outcome, Room
from arena.gameserver.store import MatchStore, close_connection, write_heartbeat
from arena.gameserver.ticker import Ticker

logger = logging.getLogger("arena.gameserver")

#: The match whose code is running (log records go to its log in a shared process).
CURRENT_MATCH: contextvars.ContextVar[str | None] = contextvars.ContextVar("arena_match", default=None)


@dataclass
class Hosted:
    room: Room
    runner: web.AppRunner
    context: contextvars.Context
    task: asyncio.Task | None = None
    released: bool = False
    aborted: bool = False  # an abort that came while its site was opening


class Host:
    def __init__(
        self,
        settings: GameSettings,
        rules: GameFactory,
        *,
        retry_for: float = 30.0,
        host_name: str | None = None,
        on_ended: Callable[[str, Outcome | None], None] | None = None,
        metrics: bool = False,
        metrics_interval: float = FLUSH_SECONDS,
    ) -> None:
        self.settings = settings
        self.rules = rules
        self.retry_for = retry_for
        self.host_name = host_name or None  # a fleet host's name: its writes are guarded by it
        self.on_ended = on_ended
        self.ticker = Ticker(rate=settings.tick_rate, steps_per_wake=max(1, round(settings.tick_rate / settings.snapshot_rate)))
        self.heartbeat = Heartbeat(
            functools.partial(write_heartbeat, host_name=self.host_name), settings.heartbeat_interval, self.stop
        )
        self.matches: dict[str, Hosted] = {}
        self.idle = asyncio.Event()
        self.idle.set()
        # Prometheus, flushed every `metrics_interval` seconds (ARENA_METRICS_FLUSH_SECONDS)
        self.metrics = ProcessMetrics(self, metrics_interval) if metrics else None

    @classmethod
    def from_django(cls, **kwargs) -> Host:
        from arena.conf import settings

        kwargs.setdefault("metrics", bool(settings.ARENA_METRICS))
        kwargs.setdefault("metrics_interval", float(settings.ARENA_METRICS_FLUSH_SECONDS))
        return cls(GameSettings.from_django(), load_rules(settings.GAME_RULES),
                   retry_for=settings.GAME_RESULT_RETRY_FOR, host_name=settings.GAME_HOST_NAME, **kwargs)

    def __len__(self) -> int:
        return len(self.matches)

    async def start(self, info: MatchInfo, sock: socket.socket) -> int:
        """Serve `info` on the listening `sock`; its port once it accepts connections.

        Everything of the match (site, handlers, room) runs in a context naming it,
        so its log records can be told apart from its neighbours'."""
        context = contextvars.copy_context()
        context.run(CURRENT_MATCH.set, info.id)
        store = MatchStore(info.id, retry_for=self.retry_for, host_name=self.host_name)
        room = Room.create(info, store, self.settings, self.rules, self.ticker, self.heartbeat)
        app = web.Application()
        room.sio.attach(app)
        remote_control.attach(app, room)  # cancel from the web side, on the match's own port
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        hosted = self.matches[info.id] = Hosted(room, runner, context)
        self.idle.clear()
        try:
            if CURRENT_MATCH.get() == info.id:  # the caller runs in the match's context already
                await self._open(runner, sock)
            else:
                await asyncio.create_task(self._open(runner, sock), context=context)
        except BaseException:
            del self.matches[info.id]
            if not self.matches:
                self.idle.set()
            raise
        if self.metrics is not None:
            self.metrics.start()
        hosted.task = asyncio.create_task(self._serve(hosted), context=context)
        hosted.task.add_done_callback(functools.partial(self._served, hosted))
        if hosted.aborted:
            hosted.task.cancel()
        return sock.getsockname()[1]

    @staticmethod
    async def _open(runner: web.AppRunner, sock: socket.socket) -> None:
        await runner.setup()
        await web.SockSite(runner, sock).start()

    async def _serve(self, hosted: Hosted) -> None:
        room, match_id = hosted.room, hosted.room.info.id
        outcome = None
        try:
            outcome = await room.run()
            logger.info(
                "match %s over: %s (%s), loop %s, broadcast sends: %d direct, %d queued",
                match_id, outcome.status, outcome.reason, room.loop_stats,
                room.broadcast.direct, room.broadcast.queued,
            )
        except asyncio.CancelledError:
            logger.warning("match %s aborted", match_id)
        except Exception:  # room.run records failures itself; this is a last resort
            logger.exception("match %s ended by an error", match_id)
        finally:
            await asyncio.shield(self._release(hosted, outcome))

    def _served(self, hosted: Hosted, task: asyncio.Task) -> None:
        """A task cancelled before it ran never ran its clean-up: do it now."""
        if not hosted.released:
            asyncio.create_task(self._release(hosted, None), context=hosted.context)

    async def _release(self, hosted: Hosted, outcome: Outcome | None) -> None:
        """Close the match's site (its port is free again) and forget it, once."""
        if hosted.released:
            return
        hosted.released = True
        match_id = hosted.room.info.id
        try:
            log_summary(hosted.room, outcome)
            if self.metrics is not None:
                self.metrics.ended(hosted.room, outcome.status if outcome else "aborted")
        except Exception:  # figures must never stand in the way of freeing the port
            logger.warning("metrics of match %s not recorded", match_id, exc_info=True)
        try:
            await hosted.runner.cleanup()
        except Exception:
            logger.warning("clean-up of match %s failed", match_id, exc_info=True)
        self.matches.pop(match_id, None)
        if self.metrics is not None:
            try:
                self.metrics.released()
            except Exception:
                logger.warning("metrics flush after match %s failed", match_id, exc_info=True)
        if self.on_ended is not None:
            self.on_ended(match_id, outcome)
        if not self.matches:
            self.idle.set()

    def stop(self, match_id: str, reason: str = "shutdown", *, abort: bool = False) -> bool:
        """End one match: cancelled with `reason`, or (`abort`) at once without
        writing anything, as SIGKILL would end a one-match process. False if unknown."""
        hosted = self.matches.get(match_id)
        if hosted is None:
            return False
        if abort:
            hosted.aborted = True
            if hosted.task is not None:
                hosted.task.cancel()
        else:
            hosted.room.request_shutdown(reason)
        return True

    def shutdown(self, reason: str = "shutdown") -> None:
        """End every match as today's shutdown ends one (SIGTERM)."""
        for match_id in list(self.matches):
            self.stop(match_id, reason)

    async def wait_idle(self) -> None:
        await self.idle.wait()

    async def close(self) -> None:
        self.heartbeat.stop()
        if self.metrics is not None:
            self.metrics.close()
        await close_connection()


class MatchLogs(logging.Handler):
    """Sends each record to the log of the match whose code emitted it (a shared
    process has one stderr for all); records of no match go to `fallback`."""

    def __init__(self, fallback: logging.Handler) -> None:
        super().__init__()
        self.fallback = fallback
        self.streams: dict[str, logging.StreamHandler] = {}

    def open(self, match_id: str, stream) -> None:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(self.fallback.formatter)
        self.streams[match_id] = handler

    def close_match(self, match_id: str) -> None:
        handler = self.streams.pop(match_id, None)
        if handler is not None:
            handler.flush()
            handler.stream.close()

    def emit(self, record: logging.LogRecord) -> None:
        handler = self.streams.get(CURRENT_MATCH.get())
        (handler or self.fallback).handle(record)


class MatchFormatter(logging.Formatter):
    """Starts each line of a match's code with ``match=<id>`` (whatever the
    project's own format), so a line still says its match once logs of many
    processes are gathered in one place."""

    def __init__(self, inner: logging.Formatter | None) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()

    def format(self, record: logging.LogRecord) -> str:
        line = self.inner.format(record)
        match_id = CURRENT_MATCH.get()
        return f"match={match_id} {line}" if match_id else line


def tag_logs_with_match() -> None:
    """Make every handler of Arena's logger say the match of each record."""
    for handler in logging.getLogger("arena").handlers:
        if not isinstance(handler.formatter, MatchFormatter):
            handler.setFormatter(MatchFormatter(handler.formatter))
