"""`GAME_SERVER_LAUNCHER=fleet`: launches sent through Celery to a game host.

For each launch: reserve a slot on the live, non-draining host with the most
free capacity (`services.host_reserve`, atomic), send the launch to that host's
queue with an expiry, and wait for its answer. A host that does not answer
within GAME_HOST_ANSWER_TIMEOUT is marked suspect and the match is moved to the
next host; the whole launch stays within GAME_SERVER_LAUNCH_TIMEOUT. A late
answer cannot leave a second server: the first host checks that the match is
still its own and `launching` before it forks, and a server that starts anyway
finds the match moved at its first heartbeat and exits without writing.
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from celery.exceptions import TimeoutError as CeleryTimeout
from arena.conf import settings
from kombu.exceptions import KombuError, OperationalError as KombuOperationalError

from arena.fleet import services
from arena.fleet.celery import LAUNCH_TASK, configured_app, reset_result_backend
from arena.fleet.models import queue_name
from arena.matches.launcher import LaunchError, LaunchResult

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo

logger = logging.getLogger("arena.fleet")

# Answers that say this host cannot take the match now (its port range is full in
# fact, or it cannot reach the database): the launch tries the next host.
RETRY_ELSEWHERE = frozenset({"no_free_port", "host_unavailable"})


def _broker_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [KombuError, KombuOperationalError, ConnectionError, OSError]
    try:
        import redis.exceptions

        errors.append(redis.exceptions.RedisError)
    except ImportError:  # RabbitMQ only
        pass
    return tuple(errors)


BROKER_ERRORS = _broker_errors()


class FleetLauncher:
    def prepare(self) -> None:
        """Open the broker connection now, so the first launch does not pay for it."""
        app = configured_app()
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.GAME_SERVER_LAUNCH_TIMEOUT)
        except BROKER_ERRORS as error:
            raise LaunchError("broker_unavailable", f"cannot reach the broker: {error}") from None

    def launch(self, match: MatchInfo) -> LaunchResult:
        deadline = time.monotonic() + settings.GAME_SERVER_LAUNCH_TIMEOUT
        tried: set[str] = set()
        previous = ""
        last_error: LaunchError | None = None
        while True:
            try:
                host = services.host_reserve(match.id, exclude=tried, previous=previous)
            except services.NotLaunching as gone:
                raise LaunchError("launch_failed", str(gone)) from None
            if host is None:
                if last_error is not None:
                    raise last_error
                raise LaunchError("no_capacity", "no live game host has room for another match")
            tried.add(host)
            previous = host
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LaunchError("launch_timeout", f"no game host answered within {settings.GAME_SERVER_LAUNCH_TIMEOUT:g} s")
            wait = min(remaining, settings.GAME_HOST_ANSWER_TIMEOUT)
            try:
                answer = self._send(match, host, wait)
            except CeleryTimeout:
                services.host_mark_suspect(host)
                last_error = LaunchError("launch_timeout", f"game host {host} did not answer within {wait:g} s")
                continue
            if "error" in answer:
                error = LaunchError(str(answer["error"]), f"{host}: {answer.get('detail', '')}")
                if error.code in RETRY_ELSEWHERE:
                    last_error = error
                    continue
                raise error
            logger.info("match %s runs on host %s (%s:%s)", match.id, host, answer["host"], answer["port"])
            return LaunchResult(port=int(answer["port"]), pid=int(answer["pid"]), host=str(answer["host"]))

    @staticmethod
    def _send(match: MatchInfo, host_name: str, wait: float) -> dict:
        """Publish the launch to the host's queue and wait for its answer (bounded)."""
        app = configured_app()
        try:
            result = app.send_task(
                LAUNCH_TASK,
                args=[match.as_dict(), host_name],
                queue=queue_name(host_name),
                expires=wait,  # a host that gets it later drops it: the launch is over
                retry=False,
            )
            answer = result.get(timeout=wait, propagate=False)
        except CeleryTimeout:
            raise
        except (*BROKER_ERRORS, RuntimeError) as error:  # RuntimeError: Celery's "retry limit exceeded"
            reset_result_backend()
            detail = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
            raise LaunchError("broker_unavailable", f"the launch could not go through the broker: {detail}") from None
        if not isinstance(answer, dict):  # the task raised: `answer` is the exception
            raise LaunchError("launch_failed", f"{host_name} failed the launch: {answer!r}"[:250])
        return answer
