"""A game-server process serving up to ``GAME_MATCHES_PER_PROCESS`` matches.

The zygote forks it (`arena.gameserver.zygote`) and hands it matches on a
`SOCK_SEQPACKET` socket: each request is the launcher's message (the match as
`MatchInfo.as_dict()`) with two descriptors attached (`SCM_RIGHTS`), the write end
of the launcher's pipe and the match's log file. For each, this process binds the
first free port of the range, starts the match on its own aiohttp site and
Socket.IO server, writes ``Port: N`` (or an ``Error:`` line) to that pipe and
closes it: the launcher's side is the same as for a forked one-match child.

It tells the zygote ``{"ended": "<match id>"}`` when a match ends, so the zygote
knows which process has room. Its matches' log records go to each match's own log.
It stops taking matches at EOF on the zygote's socket (the zygote retired it or
exited) or on SIGTERM (which also ends every match, as a shutdown ends one), and
exits once its last match has ended. One match is stopped through the control
socket (`arena.gameserver.control`).
"""
from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import logging
import os
import signal
import socket
import time

from arena.gameserver.contract import MatchInfo, error_line, port_line

logger = logging.getLogger("arena.gameserver")

MAX_MESSAGE = 64 * 1024
FDS_PER_MATCH = 2  # stdout pipe, log file
EARLY_STOP_KEPT = 60.0  # s: how long a stop for a match not (yet) here is remembered


def serve_shared(zygote: socket.socket) -> int:
    """Serve matches handed over on `zygote` until told to stop; the exit code."""
    gc.collect()
    gc.freeze()
    asyncio.run(SharedProcess(zygote).run())  # its database connection is closed by its own thread
    return 0


class SharedProcess:
    def __init__(self, zygote: socket.socket) -> None:
        self.zygote: socket.socket | None = zygote
        self.stopping = asyncio.Event()
        self.launches: set[asyncio.Task] = set()
        # Stops that came before their match (a launcher that gave up at once):
        # match id -> (reason, abort, when); applied when the match arrives.
        self.early_stops: dict[str, tuple[str, bool, float]] = {}

    async def run(self) -> None:
        from arena.conf import settings

        from arena.gameserver.control import ControlSocket
        from arena.gameserver.host import Host, MatchLogs
        from arena.gameserver.store import adopt_connection

        await adopt_connection()
        self.settings = settings
        arena_logger = logging.getLogger("arena")
        fallback = arena_logger.handlers[0] if arena_logger.handlers else logging.StreamHandler()
        self.logs = MatchLogs(fallback)
        arena_logger.handlers = [self.logs]
        self.host = Host.from_django(on_ended=self._ended)
        loop = asyncio.get_running_loop()
        assert self.zygote is not None
        self.zygote.setblocking(False)
        loop.add_reader(self.zygote.fileno(), self._on_request)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._terminate)
        control = ControlSocket(settings.GAME_SERVER_RUN_DIR, self.stop)
        logger.info("shared game server %s ready", os.getpid())
        try:
            await self.stopping.wait()
            while self.launches or self.host.matches:
                if self.launches:
                    await asyncio.wait(set(self.launches))
                await self.host.wait_idle()
        finally:
            control.close()
            await self.host.close()
        logger.info("shared game server %s exits", os.getpid())

    def stop(self, match_id: str, reason: str = "shutdown", *, abort: bool = False) -> bool:
        """The per-match stop path; a stop for a match not started yet waits for it."""
        if self.host.stop(match_id, reason, abort=abort):
            return True
        now = time.monotonic()
        self.early_stops = {k: v for k, v in self.early_stops.items() if now - v[2] < EARLY_STOP_KEPT}
        self.early_stops[match_id] = (reason, abort, now)
        return False

    def _terminate(self) -> None:
        logger.info("SIGTERM: ending %d matches", len(self.host))
        self._stop_taking()
        self.host.shutdown("shutdown")

    def _stop_taking(self) -> None:
        if self.zygote is not None:
            asyncio.get_running_loop().remove_reader(self.zygote.fileno())
            self.zygote.close()  # requests still queued are dropped: their launchers see EOF
            self.zygote = None
        self.stopping.set()

    def _on_request(self) -> None:
        assert self.zygote is not None
        try:
            message, fds, _, _ = socket.recv_fds(self.zygote, MAX_MESSAGE, FDS_PER_MATCH)
        except BlockingIOError:
            return
        except OSError:
            message, fds = b"", []
        if not message:
            self._stop_taking()  # the zygote retired this process or is gone
            return
        try:
            info = MatchInfo.from_dict(json.loads(message)["match"])
            stdout_fd, log_fd = fds
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("dropped a malformed request")
            for fd in fds:
                os.close(fd)
            return
        # The launch runs in the match's context from the start: its records go to
        # the match's log, and `Host.start` needs no task of its own to set it.
        from arena.gameserver.host import CURRENT_MATCH

        context = contextvars.copy_context()
        context.run(CURRENT_MATCH.set, info.id)
        task = asyncio.create_task(self._launch(info, stdout_fd, log_fd), context=context)
        self.launches.add(task)
        task.add_done_callback(self.launches.discard)

    async def _launch(self, info: MatchInfo, stdout_fd: int, log_fd: int) -> None:
        """Bind, start, announce: what a forked child does before its port line."""
        from arena.gameserver.ports import NoFreePort, bind_first_free

        s = self.settings
        self.logs.open(info.id, os.fdopen(log_fd, "a", buffering=1))
        try:
            try:
                sock = bind_first_free(s.GAME_SERVER_BIND, s.GAME_SERVER_MIN_PORT, s.GAME_SERVER_MAX_PORT)
            except NoFreePort as error:
                _write_line(stdout_fd, error_line("no_free_port", str(error)))
                self._ended(info.id, None)
                return
            try:
                port = await self.host.start(info, sock)
            except Exception as error:
                logger.exception("match %s could not start", info.id)
                sock.close()
                _write_line(stdout_fd, error_line("launch_failed", f"{error.__class__.__name__}: {error}"))
                self._ended(info.id, None)
                return
            early = self.early_stops.pop(info.id, None)
            if early is not None:
                logger.warning("match %s was stopped before it started", info.id)
                self.host.stop(info.id, early[0], abort=early[1])
            elif not _write_line(stdout_fd, port_line(port)):
                logger.warning("launcher of match %s gave up before its port line", info.id)
                self.host.stop(info.id, abort=True)
        finally:
            os.close(stdout_fd)

    def _ended(self, match_id: str, outcome) -> None:
        from arena.gameserver.store import close_connection

        self.logs.close_match(match_id)
        if not self.host.matches and not self.launches:
            # Idle: hold no database connection while no match needs one.
            task = asyncio.create_task(close_connection())
            self.launches.add(task)
            task.add_done_callback(self.launches.discard)
        if self.zygote is not None:
            try:
                self.zygote.send(json.dumps({"ended": match_id}).encode())
            except OSError:
                pass


def _write_line(fd: int, line: str) -> bool:
    """Write the launcher's one line; False if it stopped listening."""
    try:
        os.write(fd, line.encode())
    except OSError:  # EPIPE: the launcher timed out and closed its end
        return False
    return True
