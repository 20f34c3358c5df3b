"""The plain strategy: one fresh Python process per match."""
from __future__ import annotations

import logging
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from arena.conf import settings

from arena.matches.launcher import LaunchError, LaunchResult
from arena.matches.launcher.base import (
    child_environment,
    explain_failure,
    gameserver_command,
    kill_group,
    log_path,
    read_port,
)

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo

logger = logging.getLogger("arena.launcher")


class SubprocessLauncher:
    """`python -m arena.gameserver <id>` with stdout piped, in its own session.

    Its own session means a Django restart (or Ctrl-C in the terminal) does not
    take running games down with it. Stderr goes to a per-match log file, never to
    a pipe, and the child stops writing to stdout after its port line, so nothing
    can block once we stop reading.
    """

    def __init__(self) -> None:
        self._reaper = Reaper()

    def prepare(self) -> None:
        """Nothing to prepare: every launch starts a new interpreter."""

    def launch(self, match: MatchInfo) -> LaunchResult:
        """The child reads its match from the database itself (only `match.id` is passed)."""
        match_id = match.id
        path = log_path(match_id)
        with open(path, "ab") as log:
            proc = subprocess.Popen(
                gameserver_command(match_id),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=log,
                env=child_environment(),
                cwd=settings.BASE_DIR,
                start_new_session=True,
                close_fds=True,
            )
        assert proc.stdout is not None
        try:
            port = read_port(proc.stdout.fileno(), settings.GAME_SERVER_LAUNCH_TIMEOUT)
        except LaunchError as error:
            error = self._explain(proc, error, path)
            logger.warning("launch of match %s failed: %s", match_id, error)
            raise error from None
        finally:
            proc.stdout.close()
            self._reaper.watch(proc)
        return LaunchResult(port=port, pid=proc.pid, host=settings.GAME_SERVER_HOST)

    @staticmethod
    def _explain(proc: subprocess.Popen, error: LaunchError, path) -> LaunchError:
        """Kill what is left of the child and add its exit code and stderr."""
        if proc.poll() is None:
            kill_group(proc.pid)
        try:
            code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        return explain_failure(error, code, path)


class Reaper:
    """Waits for exited children so they do not linger as zombies.

    One daemon thread polls the children still running; it exits when there are
    none and is started again by the next launch.
    """

    POLL_INTERVAL = 0.5

    def __init__(self) -> None:
        self._children: list[subprocess.Popen] = []
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def watch(self, proc: subprocess.Popen) -> None:
        with self._lock:
            self._children.append(proc)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="arena-reaper", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            time.sleep(self.POLL_INTERVAL)
            with self._lock:
                self._children = [p for p in self._children if p.poll() is None]
                if not self._children:
                    self._thread = None
                    return
