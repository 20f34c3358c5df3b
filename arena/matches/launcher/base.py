"""Pieces every launch strategy shares: the child's command, environment and log,
and reading its stdout until the port line."""
from __future__ import annotations

import os
import select
import signal
import sys
import time
from pathlib import Path

from arena.conf import settings
from django.db import connection

import logging

from arena.gameserver.contract import ERROR_CODES_BY_EXIT, ERROR_LINE_RE, PORT_LINE_RE
from arena.matches.launcher import LaunchError

MAX_STARTUP_OUTPUT = 64 * 1024
logger = logging.getLogger("arena.launcher")


def gameserver_command(match_id: str) -> list[str]:
    return [sys.executable, "-m", "arena.gameserver", str(match_id)]


def child_environment() -> dict[str, str]:
    """The launcher's environment, plus the database it is really using.

    The child must write to the same database as the process that created the
    match (under tests that is the test database, whose name only the open
    connection knows).
    """
    from arena.metrics.multiprocess import setup

    setup()  # before the copy: every game server writes its metrics to this machine's directory
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    env["ARENA_DB_NAME"] = str(connection.settings_dict["NAME"])
    env["PYTHONUNBUFFERED"] = "1"
    return env


def kill_group(pid: int) -> None:
    """SIGKILL a game server and whatever it started (its process group)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    except PermissionError:  # not a group leader (yet): the process itself
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def stop_match(pid: int, match_id: str, reason: str = "shutdown", *, abort: bool = False) -> bool:
    """End one match of game-server process `pid`, cancelled with `reason` (or
    dropped at once: `abort`); in a shared process its neighbours play on.

    False if `pid` has no control socket (gone, or not a game server): signal it."""
    from arena.gameserver.control import send_stop

    return send_stop(settings.GAME_SERVER_RUN_DIR, pid, match_id, reason, abort=abort)


def stop_game_server(pid: int, match_id: str, *, shared: bool | None = None) -> None:
    """Drop the match at once, as SIGKILL drops a one-match process: the match alone
    in a shared process, the process group otherwise. `shared=None`: find out."""
    if shared is not False and stop_match(pid, match_id, abort=True):
        return
    if not shared:
        kill_group(pid)


def log_path(match_id: str) -> Path:
    log_dir = Path(settings.GAME_SERVER_LOG_DIR)
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{match_id}.log"


def log_tail(path: Path, limit: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - limit))
            return f.read().decode("utf-8", "replace").strip()
    except OSError:
        return ""


def read_port(fd: int, timeout: float) -> int:
    """Read lines from `fd` until the port line; raise LaunchError otherwise.

    Bounded in time (`timeout`) and in size; ends at EOF (the child died). Uses
    poll() so a descriptor number above 1024 is fine.
    """
    deadline = time.monotonic() + timeout
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    buffer = b""
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise LaunchError("launch_timeout", f"no port within {timeout:g} s")
        if not poller.poll(remaining * 1000):
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            raise LaunchError("launch_failed", "the game server exited before printing its port")
        buffer += chunk
        while b"\n" in buffer:
            raw, buffer = buffer.split(b"\n", 1)
            line = raw.decode("utf-8", "replace") + "\n"
            if match := PORT_LINE_RE.match(line):
                return int(match.group(1))
            if match := ERROR_LINE_RE.match(line):
                raise LaunchError(match.group(1), match.group(2).strip() or match.group(1))
        if len(buffer) > MAX_STARTUP_OUTPUT:
            raise LaunchError("launch_failed", "the game server wrote too much before its port")


def explain_failure(error: LaunchError, exit_code: int | None, log: Path) -> LaunchError:
    """The launch error a caller should see, once the child is gone.

    A child that died before its port line says why through its exit code; its
    stderr goes to our log.
    """
    if error.code == "launch_failed" and exit_code in ERROR_CODES_BY_EXIT:
        error = LaunchError(ERROR_CODES_BY_EXIT[exit_code], error.detail)
    tail = log_tail(log)
    if tail:
        logger.warning("game server stderr (exit code %s):\n%s", exit_code, tail)
    if error.code == "launch_failed":
        return LaunchError(error.code, f"{error.detail} (exit code {exit_code})")
    return error
