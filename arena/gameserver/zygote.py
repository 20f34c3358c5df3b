"""The zygote: a game-server process that pays the start-up cost once and forks
one child per match.

`python -m arena.gameserver.zygote <fd>` is started by the warm launcher
(`arena.matches.launcher.warm`) with the environment a plain game server would get,
and with one end of a `SOCK_SEQPACKET` socket pair as file descriptor `<fd>`: the
*control socket*. It becomes a zygote once (`arena.gameserver.warmup`: Django
set-up, every import a match needs, warmed caches, no database connection, frozen
objects), says it is ready, and then waits for requests.

Control protocol, one JSON object per message:

* zygote -> launcher, once: ``{"ready": <zygote pid>}``, or
  ``{"error": code, "detail": "..."}`` if it refuses to start (e.g. code
  ``insecure_secret_key``: see `arena.gameserver.main.prepare`), then it exits.
* launcher -> zygote: ``{"match": {...}}`` (the match as `MatchInfo.as_dict()`,
  so the child need not read it) with three descriptors attached
  (`SCM_RIGHTS`): the write end of a pipe that becomes the child's stdout, the
  per-match log file that becomes its stderr, and one end of a fresh socket pair
  for the answer (one per launch, so concurrent launches never share a reply).
* zygote -> launcher, on that reply socket: ``{"pid": N}`` at once (or
  ``{"error": "..."}`` if it could not fork), then ``{"exit": code}`` if the child
  exits while the launcher still holds the reply socket (a failed start). The
  launcher closes it once it has the port line; the zygote then forgets it.

Spares: the zygote keeps `GAME_ZYGOTE_SPARES` children forked ahead of time. A
spare has become a clean child already, has built and thrown away a game session
(so the pages a game server writes at start-up are copied, and its code paths
run, before any match waits on it) and says ``ready`` on a socket pair of its own;
then it blocks until the zygote hands it a match: the launcher's request, as
received, with the stdout pipe and the log file. A launch with a ready spare
costs no fork and no start-up on its path; without one (a burst, or spares off)
the zygote forks as before. Spares are forked again only when no launch is under
way (no request waiting, no launcher still reading a port line): on two CPUs a
refill's fork and warm-up would otherwise delay the launch it follows by ~2 ms.

Shared processes (``GAME_MATCHES_PER_PROCESS`` N > 1): instead of a child per
match, the zygote hands the request (with the stdout pipe and the log file) to
the fullest shared child that has fewer than N live matches, on a socket pair of
its own, and forks a new one (`arena.gameserver.shared`) only when all are full.
The launcher's answer is ``{"pid": N, "shared": true}`` and its reply socket is
closed at once: a shared child's exit is no failed start of one launch. The child
says ``{"ended": "<match id>"}`` when a match ends; an idle one is retired (EOF)
when another has room. Spares are not kept in this mode.

The child starts clean: its own session (`setsid`), the signal dispositions and
mask of a fresh interpreter, stdin on /dev/null, stdout on the launcher's pipe
(the `Port: N` contract is unchanged), stderr on the match log, none of the
zygote's descriptors, no database connection (they were closed before the fork and
Django opens its own on first use), no other thread (the zygote never starts one,
so no lock can be inherited held) and a fresh event loop (`serve()` calls
`asyncio.run`). Then it runs `serve(info.id, info)` and `os._exit`s with its code.

Lifetime: the zygote reaps every child it forks (SIGCHLD wakes its poll loop). It
lives as long as the launcher's end of the control socket: when that end closes -
the Django process exited or crashed, or retired this zygote - the zygote accepts
no more requests, closes its spares' sockets (a spare exits on that EOF, as it does
if the zygote dies), waits for the games it forked (they keep running, each in its
own session) to end, reaping them, and then exits. So it never outlives its last game
and never leaves zombies behind, and a Django restart does not interrupt a match.
"""
from __future__ import annotations

import gc
import json
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from typing import TYPE_CHECKING

from arena.metrics.multiprocess import retire

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo

logger = logging.getLogger("arena.gameserver.zygote")

MAX_MESSAGE = 64 * 1024  # a request names the match and its players
FDS_PER_REQUEST = 3  # stdout pipe, log file, reply socket
POLL_INTERVAL_MS = 1000  # a safety net: SIGCHLD and the control socket wake us anyway
EXIT_CHILD_CRASH = 1
SPARE_READY = b"ready"
SPARE_RETRY_AFTER = 1.0  # after a spare died unused, wait before forking another


@dataclass
class Spare:
    """A child forked ahead of time, waiting for a match on `sock`."""

    pid: int
    sock: socket.socket
    ready: bool = False


@dataclass
class SharedChild:
    """A child serving several matches (`arena.gameserver.shared`), fed on `sock`."""

    pid: int
    sock: socket.socket
    live: set[str]


class Zygote:
    def __init__(
        self, control: socket.socket, initial_signals: dict, spares: int = 0, matches_per_process: int = 1
    ) -> None:
        self.control: socket.socket | None = control
        self.per_process = max(1, matches_per_process)
        self.shared: dict[int, SharedChild] = {}  # socket fd -> shared child
        self.poller = select.poll()
        self.children: dict[int, socket.socket | None] = {}  # pid -> reply socket while the launcher listens
        self.replies: dict[int, int] = {}  # reply socket fd -> pid
        self.spares: dict[int, Spare] = {}  # spare socket fd -> spare, oldest first
        # Spares are one-match children; a shared process takes matches once started.
        self.spare_target = max(0, spares) if self.per_process == 1 else 0
        self.spare_retry_at = 0.0
        self.forked = 0
        self.handed_to_spares = 0
        self.initial_signals = initial_signals  # a fresh interpreter's, restored in every child
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        os.set_blocking(self.wake_r, False)

    # --- the loop --------------------------------------------------------------------

    def run(self) -> int:
        assert self.control is not None
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, _ignore_signal)  # a Python handler, so the wake-up fd fires
        self.poller.register(self.control, select.POLLIN)
        self.poller.register(self.wake_r, select.POLLIN)
        self.control.sendall(json.dumps({"ready": os.getpid()}).encode())
        logger.info("zygote %s ready", os.getpid())
        self.refill_spares()
        while self.control is not None or self.children or self.spares or self.shared:
            for fd, events in self.poller.poll(POLL_INTERVAL_MS):
                if self.control is not None and fd == self.control.fileno():
                    self._on_control(events)
                elif fd == self.wake_r:
                    _drain(self.wake_r)
                elif fd in self.replies:
                    self._forget_reply(fd)  # the launcher closed its end: it has the port
                elif fd in self.spares:
                    self._on_spare(fd)
                elif fd in self.shared:
                    self._on_shared(fd)
            self.reap()
            if not self.replies and not self._request_waiting():
                self.refill_spares()  # between launches: a fork now would slow the one under way
        logger.info("zygote %s exits after %d games (%d of them started by a spare)",
                    os.getpid(), self.forked, self.handed_to_spares)
        return 0

    def _on_control(self, events: int) -> None:
        assert self.control is not None
        message, fds = b"", []
        if events & select.POLLIN:
            try:
                message, fds, flags, _ = socket.recv_fds(self.control, MAX_MESSAGE, FDS_PER_REQUEST)
            except OSError:
                message, fds, flags = b"", [], 0
            if message and flags & (socket.MSG_CTRUNC | socket.MSG_TRUNC):
                logger.warning("dropped a truncated request")
                _close_all(fds)
                return
        if not message:
            # The launcher's end is closed: no more requests. Finish the games.
            self._close_control()
            for fd in list(self.spares):
                self._drop_spare(fd).sock.close()  # each exits on EOF
            for fd in list(self.shared):
                self._drop_shared(fd)  # each ends its matches, then exits
            if self.children:
                logger.info("launcher gone; waiting for %d running games", len(self.children))
            return
        self._on_request(message, fds)

    def _on_request(self, message: bytes, fds: list[int]) -> None:
        from arena.gameserver.contract import MatchInfo

        try:
            info = MatchInfo.from_dict(json.loads(message)["match"])
            stdout_fd, log_fd, reply_fd = fds
        except (ValueError, KeyError, TypeError, AttributeError):
            logger.warning("dropped a malformed request")
            _close_all(fds)
            return
        reply = socket.socket(fileno=reply_fd)
        reply.setblocking(False)
        if self.per_process > 1:
            self._hand_to_shared(info, message, stdout_fd, log_fd, reply)
            return
        try:
            pid = self.hand_to_spare(message, stdout_fd, log_fd) or self.fork(info, stdout_fd, log_fd, reply)
        except OSError as error:
            logger.error("fork for match %s failed: %s", info.id, error)
            _send(reply, {"error": f"fork failed: {error}"})
            reply.close()
            return
        finally:
            os.close(stdout_fd)  # only the child may hold the write end, or EOF never comes
            os.close(log_fd)
        self.children[pid] = reply
        self.replies[reply.fileno()] = pid
        self.poller.register(reply, select.POLLIN)
        _send(reply, {"pid": pid})

    def fork(self, info: MatchInfo, stdout_fd: int, log_fd: int, reply: socket.socket) -> int:
        pid = self._fork()
        if pid == 0:
            reply.close()  # this launch's answer is the zygote's business
            _exit_with(self._child, info, stdout_fd, log_fd)
        self.forked += 1
        return pid

    def _fork(self) -> int:
        from django.db import connections

        connections.close_all()  # never share a database connection with a child
        if threading.active_count() != 1:
            logger.warning("forking with %d threads alive", threading.active_count())
        sys.stdout.flush()
        sys.stderr.flush()
        gc.freeze()  # whatever the zygote allocated since is shared too; the child's GC skips it
        return os.fork()

    def _child(self, info: MatchInfo, stdout_fd: int, log_fd: int) -> int:
        from arena.gameserver.main import serve

        self._become_clean_child()
        _redirect_output(stdout_fd, log_fd)
        return serve(info.id, info)

    # --- spares ------------------------------------------------------------------------

    def refill_spares(self) -> None:
        """Fork spares up to the target (not after a spare died unused, for a while)."""
        if self.control is None or time.monotonic() < self.spare_retry_at:
            return
        while len(self.spares) < self.spare_target:
            mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                pid = self._fork()
            except OSError as error:
                logger.error("fork of a spare failed: %s", error)
                mine.close()
                theirs.close()
                self.spare_retry_at = time.monotonic() + SPARE_RETRY_AFTER
                return
            if pid == 0:
                mine.close()
                _exit_with(self._spare, theirs)
            theirs.close()
            self.spares[mine.fileno()] = Spare(pid, mine)
            self.poller.register(mine, select.POLLIN)

    def hand_to_spare(self, message: bytes, stdout_fd: int, log_fd: int) -> int | None:
        """Give the request to the oldest ready spare; its pid, or None if none took it."""
        for fd, spare in list(self.spares.items()):
            if not spare.ready:
                continue
            self._drop_spare(fd)  # used or broken: either way no longer a spare
            try:
                socket.send_fds(spare.sock, [message], [stdout_fd, log_fd])
            except OSError:
                continue  # it died a moment ago; the reaper collects it
            finally:
                spare.sock.close()
            self.forked += 1
            self.handed_to_spares += 1
            return spare.pid
        return None

    def _on_spare(self, fd: int) -> None:
        spare = self.spares[fd]
        try:
            said = spare.sock.recv(64)
        except OSError:
            said = b""
        if said == SPARE_READY:
            spare.ready = True
        else:  # EOF: it died before it was used
            logger.warning("spare %s exited unused", spare.pid)
            self._drop_spare(fd).sock.close()
            self.spare_retry_at = time.monotonic() + SPARE_RETRY_AFTER

    def _drop_spare(self, fd: int) -> Spare:
        spare = self.spares.pop(fd)
        self.poller.unregister(fd)
        return spare

    def _request_waiting(self) -> bool:
        if self.control is None:
            return False
        poller = select.poll()
        poller.register(self.control, select.POLLIN)
        return bool(poller.poll(0))

    def _spare(self, sock: socket.socket) -> int:
        """A spare's life: warm up, say ready, wait for a match (or EOF), serve it."""
        from arena.gameserver.contract import MatchInfo
        from arena.gameserver.main import serve
        from arena.gameserver.warmup import warm_session

        self._become_clean_child(keep=sock)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # stderr stays the zygote's log until a match comes
        os.close(devnull)
        warm_session()
        sock.sendall(SPARE_READY)
        message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 2)
        sock.close()
        if not message:
            _close_all(fds)
            return 0  # the zygote is done with this spare
        info = MatchInfo.from_dict(json.loads(message)["match"])
        stdout_fd, log_fd = fds
        _redirect_output(stdout_fd, log_fd)
        return serve(info.id, info)

    # --- shared processes (GAME_MATCHES_PER_PROCESS > 1) -------------------------------

    def _hand_to_shared(self, info: MatchInfo, message: bytes, stdout_fd: int, log_fd: int,
                        reply: socket.socket) -> None:
        """Give the match to the fullest shared child with room, or to a new one.

        The launcher is told the pid at once and its reply socket closed: that
        process's exit is no failed start of this match, and its port line (or
        Error line) comes on the pipe as from a one-match child."""
        try:
            child = None
            for candidate in sorted(self.shared.values(), key=lambda c: -len(c.live)):
                if len(candidate.live) >= self.per_process:
                    continue
                try:
                    socket.send_fds(candidate.sock, [message], [stdout_fd, log_fd])
                except OSError:  # exiting or dead: the reaper and its EOF collect it
                    self._drop_shared(candidate.sock.fileno())
                    continue
                child = candidate
                break
            if child is None:
                child = self._fork_shared()
                socket.send_fds(child.sock, [message], [stdout_fd, log_fd])
            child.live.add(info.id)
            _send(reply, {"pid": child.pid, "shared": True})
        except OSError as error:
            logger.error("no shared process for match %s: %s", info.id, error)
            _send(reply, {"error": f"fork failed: {error}"})
        finally:
            os.close(stdout_fd)
            os.close(log_fd)
            reply.close()

    def _fork_shared(self) -> SharedChild:
        mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            pid = self._fork()
        except OSError:
            mine.close()
            theirs.close()
            raise
        if pid == 0:
            mine.close()
            _exit_with(self._shared_child, theirs)
        theirs.close()
        self.forked += 1
        child = self.shared[mine.fileno()] = SharedChild(pid, mine, set())
        self.children[pid] = None
        self.poller.register(mine, select.POLLIN)
        return child

    def _shared_child(self, sock: socket.socket) -> int:
        from arena.gameserver.shared import serve_shared

        self._become_clean_child(keep=sock)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)  # each match's port line goes to its own pipe; stderr stays the zygote's log
        os.close(devnull)
        return serve_shared(sock)

    def _on_shared(self, fd: int) -> None:
        child = self.shared[fd]
        try:
            said = child.sock.recv(MAX_MESSAGE)
        except BlockingIOError:
            return
        except OSError:
            said = b""
        if not said:  # it stopped taking matches (SIGTERM) or died
            self._drop_shared(fd)
            return
        try:
            child.live.discard(json.loads(said)["ended"])
        except (ValueError, KeyError, TypeError):
            logger.warning("shared process %s said something unexpected", child.pid)
            return
        others_have_room = any(len(c.live) < self.per_process for c in self.shared.values() if c is not child)
        if not child.live and others_have_room:
            self._drop_shared(fd)  # idle, and not needed: it exits

    def _drop_shared(self, fd: int) -> None:
        child = self.shared.pop(fd)
        self.poller.unregister(fd)
        child.sock.close()

    # --- a clean child -----------------------------------------------------------------

    def _become_clean_child(self, keep: socket.socket | None = None) -> None:
        os.setsid()
        signal.set_wakeup_fd(-1)
        for sig, handler in self.initial_signals.items():
            try:
                signal.signal(sig, handler)
            except (OSError, TypeError, ValueError):
                pass
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        # Nothing of the zygote's: its control socket, wake-up pipe, replies, spares.
        self._close_control()
        for reply in self.children.values():
            if reply is not None:
                reply.close()
        self.children.clear()
        self.replies.clear()
        for spare in self.spares.values():
            if spare.sock is not keep:
                spare.sock.close()
        self.spares.clear()
        for child in self.shared.values():
            if child.sock is not keep:
                child.sock.close()
        self.shared.clear()
        os.close(self.wake_r)
        os.close(self.wake_w)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        gc.enable()

    # --- children ----------------------------------------------------------------------

    def reap(self) -> None:
        """Wait for every exited child; tell its launcher the exit code if it listens."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left (a stale entry would keep us alive forever)
                for reply in self.children.values():
                    if reply is not None:
                        self._drop_reply(reply)
                self.children.clear()
                return
            if pid == 0:
                return
            retire(pid)  # its metrics files: folded into the machine's totals
            reply = self.children.pop(pid, None)
            if reply is not None:
                _send(reply, {"exit": os.waitstatus_to_exitcode(status)})
                self._drop_reply(reply)

    def _forget_reply(self, fd: int) -> None:
        pid = self.replies[fd]
        reply = self.children[pid]
        self.children[pid] = None
        if reply is not None:
            self._drop_reply(reply)

    def _drop_reply(self, reply: socket.socket) -> None:
        self.replies.pop(reply.fileno(), None)
        self.poller.unregister(reply)
        reply.close()

    def _close_control(self) -> None:
        if self.control is not None:
            try:
                self.poller.unregister(self.control)
            except KeyError:
                pass
            self.control.close()
            self.control = None


def _redirect_output(stdout_fd: int, log_fd: int) -> None:
    """The launcher's pipe becomes stdout (for the port line), the match log stderr."""
    os.dup2(stdout_fd, 1)
    os.dup2(log_fd, 2)
    os.close(stdout_fd)
    os.close(log_fd)


def _exit_with(body, *args) -> None:
    """Run a forked child's `body` and `os._exit` with its code: never return into the zygote."""
    code = EXIT_CHILD_CRASH
    try:
        code = body(*args)
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else EXIT_CHILD_CRASH
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            logging.shutdown()
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _catchable_signals() -> list[signal.Signals]:
    return [s for s in signal.valid_signals() if s not in (signal.SIGKILL, signal.SIGSTOP) and s < signal.SIGRTMIN]


def _ignore_signal(signum, frame) -> None:
    pass


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 512):
            pass
    except BlockingIOError:
        pass


def _send(sock: socket.socket, message: dict) -> None:
    try:
        sock.send(json.dumps(message).encode())
    except OSError:
        pass  # the launcher gave up on this launch already


def _close_all(fds: list[int]) -> None:
    for fd in fds:
        try:
            os.close(fd)
        except OSError:
            pass


def main(argv: list[str]) -> int:
    if len(argv) != 1 or not argv[0].isdigit():
        print("usage: python -m arena.gameserver.zygote <control fd>", file=sys.stderr)
        return 2
    control = socket.socket(fileno=int(argv[0]))
    initial_signals = {sig: signal.getsignal(sig) for sig in _catchable_signals()}
    from arena.gameserver.contract import EXIT_INSECURE_SETTINGS
    from arena.security.secret_key import InsecureSettings

    from arena.gameserver.warmup import become_zygote

    try:
        become_zygote()
    except InsecureSettings as error:
        print(error, file=sys.stderr)
        control.sendall(json.dumps({"error": error.code, "detail": str(error)}).encode())
        return EXIT_INSECURE_SETTINGS
    from arena.conf import settings

    return Zygote(control, initial_signals, spares=settings.GAME_ZYGOTE_SPARES,
                  matches_per_process=settings.GAME_MATCHES_PER_PROCESS).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
