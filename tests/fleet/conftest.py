"""Game hosts for the fleet tests: real `manage.py gamehost` agents (Celery
workers on a real broker) whose game servers bind their own loopback addresses
(127.0.0.2, .3, .4) and port ranges, all on the test database.

The fleet needs PostgreSQL (game hosts are other machines sharing one database)
and a broker: these tests run in the PostgreSQL+Redis pass of `make test` and
are skipped, with that reason, in the SQLite pass. Under CI=true a missing
broker is an error, not a skip.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

import psutil
import pytest
from django.conf import settings

from tests.conftest import TEST_MAX_PORT, TEST_MIN_PORT, pid_alive

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"].endswith("postgresql")
BROKER_URL = os.environ.get("CELERY_BROKER_URL") or os.environ.get("REDIS_URL", "")
ADDRESSES = ("127.0.0.2", "127.0.0.3", "127.0.0.4")
# Short timeouts so host loss shows within seconds (generous for a loaded machine).
HOST_TIMEOUT = 4.0
FLEET_ENV = {
    "GAME_HOST_HEARTBEAT_INTERVAL": "0.5",
    "GAME_HEARTBEAT_INTERVAL": "1",
    "GAME_ZYGOTE_SPARES": "1",
    "GAME_CORS_ORIGINS": "*",
}

_names = itertools.count()


def fleet_skip_reason() -> str | None:
    if not ON_POSTGRES:
        return "the fleet needs PostgreSQL (its hosts share one database): run in make test's PostgreSQL pass"
    if not BROKER_URL:
        if os.environ.get("CI") == "true":
            pytest.fail("the fleet tests need a broker (REDIS_URL or CELERY_BROKER_URL) in CI")
        return "no broker: set REDIS_URL or CELERY_BROKER_URL"
    return None


def port_ranges(count: int) -> list[tuple[int, int]]:
    """Sub-ranges of the suite's port range, one per host (the top 60 % of it:
    local launches of other tests start at the bottom)."""
    span = TEST_MAX_PORT - TEST_MIN_PORT + 1
    start = TEST_MIN_PORT + span * 2 // 5
    size = (TEST_MAX_PORT - start + 1) // count
    return [(start + i * size, start + (i + 1) * size - 1) for i in range(count)]


@dataclass
class Host:
    name: str
    address: str
    ports: tuple[int, int]
    capacity: int
    proc: subprocess.Popen
    log: str
    extra: list[str] = field(default_factory=list)

    def tree(self) -> list[psutil.Process]:
        """The agent and everything under it (its zygote and game servers)."""
        try:
            agent = psutil.Process(self.proc.pid)
            return [agent, *agent.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def game_servers(self) -> list[int]:
        return [p.pid for p in self.tree()[1:] if _is_game_server(p)]

    def signal_all(self, signum: int) -> None:
        for proc in self.tree():
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.send_signal(signum)

    def log_text(self) -> str:
        with open(self.log, errors="replace") as f:
            return f.read()


def _is_game_server(proc: psutil.Process) -> bool:
    try:
        return os.readlink(f"/proc/{proc.pid}/fd/2").endswith(".log") and "zygote" not in os.readlink(
            f"/proc/{proc.pid}/fd/2")
    except OSError:
        return False


class Fleet:
    """Starts agents; stops every one of them (and their games) at the end."""

    def __init__(self, tmp_path) -> None:
        self.hosts: dict[str, Host] = {}
        self.tmp_path = tmp_path
        self.prefix = f"t{os.getpid()}n{next(_names)}"

    def start(self, *specs: tuple[str, int], extra: list[str] | None = None, env: dict[str, str] | None = None,
              wait: bool = True) -> list[Host]:
        """Start one agent per (short name, capacity); wait until each is registered."""
        from arena.matches.launcher.base import child_environment

        overrides = dict(env or {})

        ranges = port_ranges(len(ADDRESSES))
        started = []
        for short, capacity in specs:
            index = len(self.hosts)
            name = f"{self.prefix}-{short}"
            address = ADDRESSES[index % len(ADDRESSES)]
            ports = ranges[index % len(ranges)]
            host_env = child_environment() | FLEET_ENV | {
                "GAME_SERVER_HOST": address,
                "GAME_SERVER_BIND": address,
                "GAME_SERVER_MIN_PORT": str(ports[0]),
                "GAME_SERVER_MAX_PORT": str(ports[1]),
                "CELERY_BROKER_URL": BROKER_URL,
                "GAME_SERVER_LOG_DIR": str(settings.GAME_SERVER_LOG_DIR),
                # the host's metrics on the last port of its range (the suite's own ports)
                "GAME_HOST_METRICS_BIND": address,
                "GAME_HOST_METRICS_PORT": str(ports[1]),
            } | overrides
            log = str(self.tmp_path / f"{short}.log")
            with open(log, "ab") as out:
                proc = subprocess.Popen(
                    [sys.executable, "manage.py", "gamehost", "--name", name, "--capacity", str(capacity),
                     *(extra or [])],
                    cwd=settings.BASE_DIR, env=host_env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                )
            host = Host(name, address, ports, capacity, proc, log, extra or [])
            self.hosts[short] = host
            started.append(host)
        if wait:
            for host in started:
                self.wait_ready(host)
        return started

    def wait_ready(self, host: Host, timeout: float = 90) -> None:
        """Registered, consuming its queue, and its zygote up (a loaded machine is slow)."""
        deadline = time.monotonic() + timeout
        while True:
            text = host.log_text()
            if "ready." in text and "launcher ready" in text:
                return
            assert host.proc.poll() is None, f"agent {host.name} exited:\n{text[-3000:]}"
            assert time.monotonic() < deadline, f"agent {host.name} not ready:\n{text[-3000:]}"
            time.sleep(0.1)

    def stop(self) -> None:
        for host in self.hosts.values():
            host.signal_all(signal.SIGCONT)
            for proc in reversed(host.tree()):
                with contextlib.suppress(psutil.NoSuchProcess):
                    proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                host.proc.wait(10)


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    reason = fleet_skip_reason()
    if reason:
        pytest.skip(reason)
    monkeypatch.setattr(settings, "GAME_SERVER_LAUNCHER", "fleet")
    monkeypatch.setattr(settings, "GAME_HOST_TIMEOUT", HOST_TIMEOUT)
    monkeypatch.setattr(settings, "GAME_HOST_ANSWER_TIMEOUT", 10.0)
    monkeypatch.setattr(settings, "CELERY_BROKER_URL", BROKER_URL)
    monkeypatch.setattr(settings, "SUPERVISOR_CHECKS", ["arena.fleet.supervisor.fail_lost_hosts"])
    made = Fleet(tmp_path)
    try:
        yield made
    finally:
        made.stop()


def wait_for(predicate, timeout: float, interval: float = 0.1, message: str = ""):
    """Poll until `predicate()` is truthy (its value), or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, message or "condition not met in time"
        time.sleep(interval)


def wait_gone(pids, timeout: float = 15) -> None:
    wait_for(lambda: not any(pid_alive(p) for p in pids), timeout, message=f"still running: {pids}")
