"""One metrics directory per machine, shared by every Arena process on it.

prometheus_client's multiprocess mode: each process writes its figures to
memory-mapped files named after its pid in ``PROMETHEUS_MULTIPROC_DIR``, and a
scrape sums the files. The variable must be set before prometheus_client is
imported, in every process: `setup()` sets it in the first Arena process of a
tree (web process, `supervise`, `gamehost`), and every process that one starts
(zygote, game servers, gunicorn workers) inherits it with the environment.

The files of a process that exited must keep counting (a counter never goes
down), but a directory that gains a file per game-server process would make every
scrape slower. So the files of exited processes are *folded*: their counters and
histograms are added to one archive file per type and removed, and their gauges
(``livesum``: only live processes count) are removed. Folding happens when a
process is reaped (`retire`), at every scrape, and at start-up (`setup`); all of
these hold an exclusive lock on the directory, so a scrape never sees a figure
twice or not at all. The directory is not emptied at start-up: game servers
outlive a restart of the web process that launched them, and their files are
live.
"""
from __future__ import annotations

import fcntl
import glob
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

logger = logging.getLogger("arena.metrics")

ENV = "PROMETHEUS_MULTIPROC_DIR"
LOCK_FILE = ".lock"
ARCHIVE = "archive"  # the pid part of the folded files' names: counter_archive.db
FOLDED_TYPES = ("counter", "histogram")


def enabled() -> bool:
    from arena.conf import settings

    return bool(settings.ARENA_METRICS)


def setup() -> Path | None:
    """Point prometheus_client at this machine's directory; None if metrics are off.

    Idempotent, and cheap after the first call. A process that inherited the
    variable (a child of an Arena process) keeps it as it is.
    """
    if not enabled():
        # Off here, whatever the environment says: nothing written to the directory
        # by this process or those it starts.
        os.environ.pop(ENV, None)
        return None
    inherited = os.environ.get(ENV)
    if inherited:
        return Path(inherited)
    from arena.conf import settings

    directory = Path(settings.ARENA_METRICS_DIR)
    directory.mkdir(parents=True, exist_ok=True)
    if "prometheus_client.values" in sys.modules:
        logger.warning("prometheus_client was imported before %s was set: this process's figures are not shared", ENV)
    os.environ[ENV] = str(directory)
    fold_dead(directory)
    return directory


def directory() -> Path | None:
    value = os.environ.get(ENV)
    return Path(value) if value else None


@contextmanager
def locked(path: Path) -> Iterator[None]:
    with open(path / LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def retire(pid: int) -> None:
    """A process of this machine exited (its reaper says so): fold its files now."""
    path = directory()
    if path is None or not path.is_dir():
        return
    try:
        with locked(path):
            _fold(path, {pid})
    except OSError:
        logger.warning("could not fold the metrics of process %s", pid, exc_info=True)


def fold_dead(path: Path) -> None:
    """Fold the files of every process that is gone (under the directory's lock).

    After a reboot every pid of the files is gone, even one a new process now
    happens to have: the directory remembers the boot it was written in."""
    with locked(path):
        if _new_boot(path):
            _fold(path, {pid for pid in map(_pid_of, os.listdir(path)) if pid is not None})
        _fold(path, dead_pids(path))


BOOT_FILE = ".boot_id"


def _new_boot(path: Path) -> bool:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            boot = f.read().strip()
    except OSError:
        return False
    marker = path / BOOT_FILE
    try:
        before = marker.read_text().strip()
    except OSError:
        before = None  # a new directory (or one from before the marker): its live files may be live
    if before == boot:
        return False
    marker.write_text(boot + "\n")
    return before is not None


def dead_pids(path: Path) -> set[int]:
    pids = set()
    for name in os.listdir(path):
        pid = _pid_of(name)
        if pid is not None and not _alive(pid):
            pids.add(pid)
    return pids


def live_files(path: Path) -> list[str]:
    return glob.glob(os.path.join(path, "*.db"))


def _fold(path: Path, pids: set[int]) -> None:
    if not pids:
        return
    from prometheus_client.mmap_dict import MmapedDict

    for pid in pids:
        for name in glob.glob(os.path.join(path, f"*_{pid}.db")):
            kind = os.path.basename(name).split("_", 1)[0]
            if kind in FOLDED_TYPES:
                archive = MmapedDict(str(path / f"{kind}_{ARCHIVE}.db"))
                try:
                    for key, value, _timestamp, _pos in MmapedDict.read_all_values_from_file(name):
                        if value:
                            total, _ = archive.read_value(key)
                            archive.write_value(key, total + value, 0.0)
                finally:
                    archive.close()
            os.remove(name)


def _pid_of(name: str) -> int | None:
    """The pid in `counter_123.db` / `gauge_livesum_123.db`; None for archives and others."""
    if not name.endswith(".db"):
        return None
    last = name[:-3].rsplit("_", 1)[-1]
    return int(last) if last.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:  # a zombie has exited: its parent just has not reaped it yet
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return True


class MachineCollector:
    """Every process's figures of this machine's directory, summed; the files of
    processes that are gone folded first, under the lock."""

    def collect(self):
        from arena.metrics import definitions  # noqa: F401  (sets the directory up)
        from prometheus_client.multiprocess import MultiProcessCollector

        path = directory()
        if path is None or not path.is_dir():
            return []
        with locked(path):
            _fold(path, dead_pids(path))
            return list(MultiProcessCollector.merge(live_files(path), accumulate=True))
