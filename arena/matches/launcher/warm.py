"""The fast strategy: a pre-imported zygote forks one game server per match.

A launch costs a `fork()` of a process that has already imported and set up
everything (see `arena.gameserver.zygote`), instead of a new interpreter that
imports Django, python-socketio and aiohttp again (~0.3 s of CPU).

The contract with the game server does not change: the launcher creates a pipe,
hands its write end to the zygote (`SCM_RIGHTS`), the child makes it its stdout,
and `read_port` reads the `Port: N` line from the read end exactly as for a
subprocess. Stderr goes to the same per-match log file.

The zygote

* is started on first use (or by `prepare()`), with `child_environment()` (so it opens the database
  this process really uses), in its own session: Ctrl-C in Django's terminal
  reaches neither it nor its games;
* is restarted when it died, or when `child_environment()` changed since it was
  started (another database name, other game settings): a zygote can only give
  its children the settings it was started with;
* belongs to this process: it exits once this process's end of its control socket
  is closed (this process exits or crashes, or retires it), after the games it
  already forked have ended; those games keep running meanwhile;
* serves several threads at once: each launch sends one self-contained message
  (atomic on a `SOCK_SEQPACKET` socket) and gets its answer on a socket of its own.

With ``GAME_MATCHES_PER_PROCESS`` N > 1 the zygote hands the match (and the pipe)
to a running game-server process with fewer than N matches, forking one only when
all are full (`arena.gameserver.shared`); the answer then says ``"shared": true``
and a failed launch stops that one match through the process's control socket,
never by a signal to the process.
"""
from __future__ import annotations

import json
import logging
import os
import select
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from arena.conf import settings

from arena.matches.launcher import LaunchError, LaunchResult
from arena.matches.launcher.base import (
    child_environment,
    explain_failure,
    stop_game_server,
    log_path,
    log_tail,
    read_port,
)

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo

logger = logging.getLogger("arena.launcher")

# Variables that change while a process runs without changing anything a game
# server does; a difference in any other variable restarts the zygote.
VOLATILE_ENV = frozenset({"PYTEST_CURRENT_TEST"})
MAX_MESSAGE = 4096
EXIT_WAIT = 5.0  # how long a failed launch waits for the child's exit code
LATE_ANSWER_GRACE = 1.0  # after a timeout, how long to wait for a pid to kill


class ZygoteGone(Exception):
    """The zygote died or closed before it forked: the launch may be retried."""


def environment_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if k not in VOLATILE_ENV))


def _remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def _recv_json(sock: socket.socket, deadline: float) -> dict | None:
    """One message from `sock` before `deadline`; None at EOF; TimeoutError after."""
    poller = select.poll()
    poller.register(sock, select.POLLIN)
    while True:
        remaining = _remaining(deadline)
        if remaining <= 0:
            raise TimeoutError
        if not poller.poll(remaining * 1000):
            continue
        try:
            data = sock.recv(MAX_MESSAGE)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return None
        if not data:
            return None
        return json.loads(data)


@dataclass
class ForkedChild:
    """The process the zygote gave one launch to, until its port is read."""

    pid: int
    stdout: int  # read end of the child's stdout pipe
    reply: socket.socket  # the zygote writes the child's exit code here if it dies first
    match_id: str = ""
    shared: bool = False  # a process serving other matches too: never signalled

    def close(self) -> None:
        os.close(self.stdout)
        self.reply.close()  # tells the zygote we no longer care about the exit code

    def kill(self) -> None:
        stop_game_server(self.pid, self.match_id, shared=self.shared)

    def exit_code(self, timeout: float) -> int | None:
        try:
            message = _recv_json(self.reply, time.monotonic() + timeout)
        except (TimeoutError, ValueError):
            return None
        return message.get("exit") if message else None


class ZygoteProcess:
    """The launcher's handle on one zygote: its process and control socket."""

    def __init__(self, env: dict[str, str], deadline: float) -> None:
        self.key = environment_key(env)
        self.owner = os.getpid()
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        log = Path(settings.GAME_SERVER_LOG_DIR) / "zygote.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(log, "ab") as log_file:
                self.proc = subprocess.Popen(
                    [sys.executable, "-m", "arena.gameserver.zygote", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=log_file,
                    env=env,
                    cwd=settings.BASE_DIR,
                    start_new_session=True,
                    pass_fds=(theirs.fileno(),),
                )
        except OSError as error:
            self.control.close()
            raise LaunchError("launch_failed", f"cannot start the zygote: {error}") from None
        finally:
            theirs.close()
        self.pid = self.proc.pid
        try:
            ready = _recv_json(self.control, deadline)
        except (TimeoutError, ValueError):
            ready = None
            self._kill()
            raise LaunchError("launch_timeout", "the zygote did not get ready in time") from None
        finally:
            if ready is None:
                self._abandon()
        if ready and "error" in ready:  # it refused to start, and says why
            self._kill()
            self._abandon()
            raise LaunchError(str(ready["error"]), str(ready.get("detail") or ready["error"]))
        if not ready or ready.get("ready") != self.pid:
            self._kill()
            tail = log_tail(log)
            raise LaunchError("launch_failed", f"the zygote exited while starting{': ' + tail[-300:] if tail else ''}")
        # Sends block only if the zygote stopped reading: bounded all the same.
        self.control.settimeout(max(1.0, settings.GAME_SERVER_LAUNCH_TIMEOUT))
        threading.Thread(target=self._wait, name=f"arena-zygote-{self.pid}", daemon=True).start()
        logger.info("zygote %s started", self.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None and self.control.fileno() != -1

    def fork(self, info: MatchInfo, path: Path, deadline: float) -> ForkedChild:
        """Ask the zygote for a child; its pid and stdout. ZygoteGone if it is gone."""
        read_fd, write_fd = os.pipe()
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        handed = False
        try:
            with open(path, "ab") as log:
                message = json.dumps({"match": info.as_dict()}).encode()
                try:
                    socket.send_fds(self.control, [message], [write_fd, log.fileno(), theirs.fileno()])
                except (OSError, ValueError) as error:  # closed, reset, or a bad fd after close
                    raise ZygoteGone(str(error)) from None
            os.close(write_fd)
            write_fd = -1
            theirs.close()
            try:
                answer = _recv_json(mine, deadline)
            except TimeoutError:
                # It may fork yet, and a child can print its port within
                # milliseconds: wait briefly for its pid and kill it. One forked
                # even later dies on its first write to the pipe we then close.
                try:
                    late = _recv_json(mine, time.monotonic() + LATE_ANSWER_GRACE)
                except (TimeoutError, ValueError):
                    late = None
                if late and "pid" in late:
                    stop_game_server(int(late["pid"]), info.id, shared=bool(late.get("shared")))
                raise LaunchError("launch_timeout", "the zygote did not answer in time") from None
            except ValueError:
                answer = None
            if answer is None:
                raise ZygoteGone("the zygote closed the launch")
            if "pid" not in answer:
                raise LaunchError("launch_failed", str(answer.get("error", "the zygote could not fork")))
            handed = True
            return ForkedChild(pid=int(answer["pid"]), stdout=read_fd, reply=mine, match_id=info.id,
                               shared=bool(answer.get("shared")))
        finally:
            if write_fd != -1:
                os.close(write_fd)
            theirs.close()
            if not handed:
                os.close(read_fd)
                mine.close()

    def retire(self) -> None:
        """Stop using this zygote: it sees EOF, finishes its games and exits."""
        try:
            self.control.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _wait(self) -> None:
        """Reap the zygote (a child of this process) whenever it exits."""
        self.proc.wait()
        logger.info("zygote %s exited with %s", self.pid, self.proc.returncode)
        self._abandon()

    def _abandon(self) -> None:
        try:
            self.control.close()
        except OSError:
            pass

    def _kill(self) -> None:
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            pass


class WarmLauncher:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._zygote: ZygoteProcess | None = None

    def prepare(self) -> None:
        """Start the zygote now, so that the first launch does not wait for it."""
        self._zygote_for(child_environment(), time.monotonic() + settings.GAME_SERVER_LAUNCH_TIMEOUT)

    def launch(self, match: MatchInfo) -> LaunchResult:
        """The child gets `match` in the fork request: it reads nothing before its port."""
        match_id = match.id
        timeout = settings.GAME_SERVER_LAUNCH_TIMEOUT
        deadline = time.monotonic() + timeout
        env = child_environment()
        path = log_path(match_id)
        child = None
        for attempt in range(2):
            zygote = self._zygote_for(env, deadline)
            try:
                child = zygote.fork(match, path, deadline)
                break
            except ZygoteGone as gone:
                logger.warning("zygote %s gone during a launch (%s); starting another", zygote.pid, gone)
                self._discard(zygote)
                if attempt:
                    raise LaunchError("launch_failed", "the zygote died twice in a row") from None
            except LaunchError as error:
                logger.warning("launch of match %s failed: %s", match_id, error)
                raise
        assert child is not None
        try:
            port = read_port(child.stdout, _remaining(deadline))
        except LaunchError as error:
            error = self._explain(child, error, path)
            logger.warning("launch of match %s failed: %s", match_id, error)
            raise error from None
        finally:
            child.close()
        return LaunchResult(port=port, pid=child.pid, host=settings.GAME_SERVER_HOST)

    def zygote_pid(self) -> int | None:
        """The pid of the zygote in use, if one runs (for tests and benchmarks)."""
        zygote = self._zygote
        return zygote.pid if zygote is not None and zygote.alive() else None

    def shutdown(self) -> None:
        """Retire the zygote now (it exits once its games have ended)."""
        with self._lock:
            if self._zygote is not None:
                self._zygote.retire()
                self._zygote = None

    def _zygote_for(self, env: dict[str, str], deadline: float) -> ZygoteProcess:
        if not self._lock.acquire(timeout=max(0.0, _remaining(deadline))):
            raise LaunchError("launch_timeout", "waited too long for the zygote to start")
        try:
            zygote = self._zygote
            if zygote is not None:
                if zygote.owner != os.getpid():
                    zygote = None  # inherited through a fork of this process: not ours to use or stop
                elif not zygote.alive():
                    zygote = None
                elif zygote.key != environment_key(env):
                    logger.info("environment changed; restarting zygote %s", zygote.pid)
                    zygote.retire()
                    zygote = None
            if zygote is None:
                zygote = self._zygote = ZygoteProcess(env, deadline)
            return zygote
        finally:
            self._lock.release()

    def _discard(self, zygote: ZygoteProcess) -> None:
        with self._lock:
            if self._zygote is zygote:
                self._zygote = None
        zygote.retire()

    @staticmethod
    def _explain(child: ForkedChild, error: LaunchError, path: Path) -> LaunchError:
        """Kill what is left of the child and add its exit code and stderr."""
        if error.code == "launch_timeout":
            child.kill()
        code = child.exit_code(EXIT_WAIT)
        if code is None and error.code != "launch_timeout":
            child.kill()
        return explain_failure(error, code, path)
