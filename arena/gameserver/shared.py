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
import gc
import json
import logging
import os
import signal
import socket

from arena.gameserver.contract import MatchInfo, error_line, port_line

logger = logging.getLogger("arena.gameserver")

MAX_MESSAGE = 64 * 1024
FDS_PER_MATCH = 2  # stdout pipe, log file


def serve_shared(zygote: socket.socket) -> int:
    """Serve matches handed over on `zygote` until told to stop; the exit code."""
    from django.db import connections

    gc.collect()
    gc.freeze()
    try:
        asyncio.run(SharedProcess(zygote).run())
    finally:
        connections.close_all()
    return 0


class SharedProcess:
    def __init__(self, zygote: socket.socket) -> None:
        self.zygote: socket.socket | None = zygote
        self.stopping = asyncio.Event()
        self.launches: set[asyncio.Task] = set()

    async def run(self) -> None:
        from django.conf import settings

        from arena.gameserver.control import ControlSocket
        from arena.gameserver.host import Host, MatchLogs

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
        control = ControlSocket(settings.GAME_SERVER_RUN_DIR, self.host.stop)
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
        task = asyncio.create_task(self._launch(info, stdout_fd, log_fd))
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
            if not _write_line(stdout_fd, port_line(port)):
                logger.warning("launcher of match %s gave up before its port line", info.id)
                self.host.stop(info.id, abort=True)
        finally:
            os.close(stdout_fd)

    def _ended(self, match_id: str, outcome) -> None:
        self.logs.close_match(match_id)
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
