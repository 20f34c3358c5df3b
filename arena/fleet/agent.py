"""The game-host agent: what `manage.py gamehost --name NAME` runs.

* a Celery worker consuming only `gamehost.NAME`, whose launch task
  (`launch_here`) checks that the match is still `launching` and assigned to this
  host, then launches it with the local warm launcher (zygote, spares, the
  `Port: N` pipe, all unchanged) and answers `{host, port, pid}`;
* a heartbeat thread writing the host's `GameHost` row every
  GAME_HOST_HEARTBEAT_INTERVAL seconds (and, with `--exit-when-drained`, ending
  the agent once the host is draining and holds no live match).

Game servers run in sessions of their own: stopping the agent (SIGTERM, warm
shutdown) does not stop their games; its zygote exits after the last of them.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
import time
from importlib import metadata

from celery.signals import worker_ready
from django.conf import settings as django_settings

from arena.conf import settings
from django.db import Error as DatabaseError, InterfaceError, OperationalError, connection

from arena.fleet import selectors, services
from arena.gameserver.contract import MatchInfo
from arena.matches import selectors as match_selectors
from arena.matches.launcher import Launcher, LaunchError, STRATEGIES
from arena.matches.states import MatchStatus
from arena.metrics import definitions as metrics

logger = logging.getLogger("arena.fleet")

_launcher: Launcher | None = None


def local_launcher() -> Launcher:
    """The launcher this host forks its game servers with (GAME_HOST_LAUNCHER)."""
    global _launcher
    if _launcher is None:
        name = settings.GAME_HOST_LAUNCHER
        if name not in STRATEGIES or name == "fleet":
            raise LaunchError("launch_failed", f"GAME_HOST_LAUNCHER must be a local strategy, not {name!r}")
        from django.utils.module_loading import import_string

        _launcher = import_string(STRATEGIES[name])()
    return _launcher


def launch_here(match: dict, host_name: str) -> dict:
    """Launch one match on this host; `{host, port, pid}` or `{error, detail}`."""
    try:
        info = MatchInfo.from_dict(match)
    except (KeyError, TypeError, ValueError) as error:
        return {"error": "launch_failed", "detail": f"bad launch request ({error})"}
    if host_name != settings.GAME_HOST_NAME:
        return {"error": "launch_failed", "detail": f"sent to {host_name}, received by {settings.GAME_HOST_NAME}"}
    try:
        target = _launch_target(info.id)
    except (OperationalError, InterfaceError):
        return {"error": "host_unavailable", "detail": "this host cannot reach the database"}
    if target != (MatchStatus.LAUNCHING, host_name):
        # Failed over to another host, cancelled, or unknown: never a second server.
        status, owner = target or ("missing", "")
        logger.warning("not launching match %s: it is %s on %r", info.id, status, owner)
        return {"error": "launch_failed", "detail": f"match is {status} on {owner or 'no host'}"}
    started = time.perf_counter()
    try:
        result = local_launcher().launch(info)
    except LaunchError as error:
        metrics.record_launch(settings.GAME_HOST_LAUNCHER, error.code, None)
        return {"error": error.code, "detail": error.detail}
    # This host's own figure (its local launch), on its own /metrics.
    metrics.record_launch(settings.GAME_HOST_LAUNCHER, "ok", time.perf_counter() - started)
    return {"host": result.host or settings.GAME_SERVER_HOST, "port": result.port, "pid": result.pid}


def _launch_target(match_id: str) -> tuple[str, str] | None:
    """The match's (status, host), read on this thread's kept connection; once
    more on a new one if that connection broke since the last launch (a database
    restart, an idle timeout). Raises if the database cannot be reached."""
    try:
        return match_selectors.match_launch_target(match_id)
    except (OperationalError, InterfaceError):
        connection.close()
    try:
        return match_selectors.match_launch_target(match_id)
    except (OperationalError, InterfaceError):
        connection.close()
        raise


def host_fields(capacity: int) -> dict:
    return {
        "address": settings.GAME_SERVER_HOST,
        "min_port": settings.GAME_SERVER_MIN_PORT,
        "max_port": settings.GAME_SERVER_MAX_PORT,
        "capacity": capacity,
        "version": arena_version(),
    }


def arena_version() -> str:
    try:
        return metadata.version("arena")
    except metadata.PackageNotFoundError:
        return ""


def _prepare_launcher(**_: object) -> None:
    started = time.monotonic()
    try:
        local_launcher().prepare()
    except LaunchError as error:  # the first launch tries again
        logger.error("launcher not ready: %s", error)
        return
    logger.info("host %s: launcher ready in %.2f s", settings.GAME_HOST_NAME, time.monotonic() - started)


class Heartbeat(threading.Thread):
    """Writes the host's row every interval; ends the agent once drained if asked."""

    def __init__(self, name: str, capacity: int, exit_when_drained: bool) -> None:
        super().__init__(name="arena-gamehost-heartbeat", daemon=True)
        self.host_name = name
        self.capacity = capacity
        self.exit_when_drained = exit_when_drained
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            try:
                host = services.host_heartbeat(name=self.host_name, **host_fields(self.capacity))
                if self.exit_when_drained and host.draining and selectors.live_match_count(self.host_name) == 0:
                    logger.info("host %s is drained: exiting", self.host_name)
                    os.kill(os.getpid(), signal.SIGTERM)  # the worker's warm shutdown
                    return
            except DatabaseError as error:
                logger.warning("host heartbeat failed: %s", error)
                connection.close()
            self.stopped.wait(settings.GAME_HOST_HEARTBEAT_INTERVAL)
        connection.close()


def run_agent(name: str, *, capacity: int, concurrency: int, exit_when_drained: bool, loglevel: str = "INFO") -> None:
    """Register the host, start its launcher and heartbeat, and serve its queue."""
    from arena.fleet import tasks  # noqa: F401  (registers the launch task)
    from arena.fleet.celery import configured_app
    from arena.fleet.models import queue_name

    os.environ["GAME_HOST_NAME"] = name  # for the game servers it launches
    django_settings.GAME_HOST_NAME = name
    # Keep each worker thread's database connection between launches (a connect
    # would be on every launch's path; the Celery app leaves Django's connections
    # alone, see arena/fleet/celery.py). No health check before each task (a round
    # trip per launch): a launch that finds its connection broken reconnects once
    # (`_launch_target`).
    for config in (django_settings.DATABASES["default"], connection.settings_dict):
        config["CONN_MAX_AGE"] = None
        config["CONN_HEALTH_CHECKS"] = False
    services.host_register(name=name, **host_fields(capacity))
    connection.close()  # this thread's: it only registered; launches and heartbeats have their own
    # The zygote starts once the worker has set up its process (Celery adds to
    # the environment, which a zygote started earlier would be restarted for).
    worker_ready.connect(_prepare_launcher, weak=False)
    heartbeat = Heartbeat(name, capacity, exit_when_drained)
    heartbeat.start()
    if settings.ARENA_METRICS and settings.GAME_HOST_METRICS_PORT:
        from arena.metrics import exporter

        exporter.serve(settings.GAME_HOST_METRICS_BIND, settings.GAME_HOST_METRICS_PORT)
    app = configured_app()
    try:
        app.worker_main([
            "worker",
            "--queues", queue_name(name),
            "--hostname", f"{name}@%h",
            "--pool", "threads",
            "--concurrency", str(concurrency),
            "--prefetch-multiplier", "1",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", loglevel,
        ])
    finally:
        heartbeat.stopped.set()
