"""The per-match stop path of a game-server process.

A process that serves several matches cannot be signalled for one of them: a
SIGTERM or SIGKILL would end its neighbours too. So every game-server process
(one match or several) listens on a Unix datagram socket,
``<GAME_SERVER_RUN_DIR>/<pid>.sock`` (the directory is private to the user running
Arena), for messages naming one match:

    {"stop": "<match id>", "reason": "cancelled", "abort": false}

``abort: false`` ends the match as a shutdown does (cancelled with `reason`, the
result written, the players told); ``abort: true`` drops it at once without a
write, as SIGKILL drops a one-match process (the supervisor then fails it). Either
way its port is closed and the process's other matches play on.

`send_stop` is the sending side (launchers, clean-up, cancel); it returns False
when `pid` has no control socket (a process started before this existed, or
gone), so the caller can signal it as before.
"""
from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from collections.abc import Callable
from pathlib import Path

logger = logging.getLogger("arena.gameserver")

MAX_MESSAGE = 1024


def socket_path(run_dir: Path | str, pid: int) -> Path:
    return Path(run_dir) / f"{pid}.sock"


def send_stop(run_dir: Path | str, pid: int, match_id: str, reason: str = "shutdown", *, abort: bool = False) -> bool:
    """Ask game-server process `pid` to end `match_id`; False if it has no control socket."""
    path = socket_path(run_dir, pid)
    message = json.dumps({"stop": str(match_id), "reason": reason, "abort": abort}).encode()
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        try:
            sock.sendto(message, str(path))
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError):
            return False
    return True


class ControlSocket:
    """The receiving side, on this process's event loop."""

    def __init__(self, run_dir: Path | str, stop: Callable[..., bool]) -> None:
        self.stop = stop
        run_dir = Path(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = socket_path(run_dir, os.getpid())
        self.path.unlink(missing_ok=True)  # a process that had this pid before was killed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.setblocking(False)
        asyncio.get_running_loop().add_reader(self.sock.fileno(), self._on_message)

    def _on_message(self) -> None:
        try:
            data = self.sock.recv(MAX_MESSAGE)
            message = json.loads(data)
            match_id, reason, abort = str(message["stop"]), str(message.get("reason", "shutdown")), bool(message.get("abort"))
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("dropped a malformed control message")
            return
        if not self.stop(match_id, reason[:200], abort=abort):
            logger.info("stop for match %s, which this process does not serve", match_id)

    def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.sock.fileno())
        self.sock.close()
        self.path.unlink(missing_ok=True)
