"""`GAME_SERVER_LAUNCHER=fleet`: launches sent through Celery to a game host.

For each launch (a batch, `launch_many`, sends every launch before it waits for
an answer): reserve a slot on the live, non-draining host with the most
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from arena.conf import settings
from kombu.exceptions import KombuError, OperationalError as KombuOperationalError

from arena.fleet import services
from arena.fleet.celery import LAUNCH_TASK, configured_app, reset_result_backend
from arena.fleet.models import queue_name
from arena.matches.launcher import Launcher, LaunchError, LaunchOutcome, LaunchResult

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


@dataclass
class _Attempt:
    """One match's way through the hosts: those tried, the last error, its deadline."""

    match: MatchInfo
    deadline: float
    tried: set[str] = field(default_factory=set)
    previous: str = ""  # the host the match is assigned to now ("" before the first)
    last_error: LaunchError | None = None

    def reserve(self) -> str:
        """Assign the match to the next host with room (atomic per host); its name."""
        try:
            host = services.host_reserve(self.match.id, exclude=self.tried, previous=self.previous)
        except services.NotLaunching as gone:
            raise LaunchError("launch_failed", str(gone)) from None
        if host is None:
            raise self.last_error or LaunchError("no_capacity", "no live game host has room for another match")
        self.tried.add(host.name)
        self.previous = host.name
        return host.name


@dataclass
class _Sent:
    attempt: _Attempt
    host_name: str
    result: AsyncResult
    until: float  # when this host's answer is late
    wait: float


class FleetLauncher(Launcher):
    def prepare(self) -> None:
        """Open the broker connection now, so the first launch does not pay for it."""
        app = configured_app()
        try:
            with app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=settings.GAME_SERVER_LAUNCH_TIMEOUT)
        except BROKER_ERRORS as error:
            raise LaunchError("broker_unavailable", f"cannot reach the broker: {error}") from None

    def launch(self, match: MatchInfo) -> LaunchResult:
        ((_, outcome),) = self.launch_many([match])
        if isinstance(outcome, LaunchError):
            raise outcome
        return outcome

    def launch_many(self, matches: Iterable[MatchInfo]) -> Iterator[tuple[int, LaunchOutcome]]:
        """Reserve a host for each match and send its launch as it comes, before
        waiting for any answer (the hosts launch while the next matches are
        written and placed), then collect the answers in turn. Those to retry
        elsewhere (no answer in time, or the host cannot take it) go round again
        on the hosts they have not tried, each within GAME_SERVER_LAUNCH_TIMEOUT of
        being handed over."""
        sent: dict[int, _Sent] = {}
        for position, match in enumerate(matches):
            try:
                sent[position] = self._send(_Attempt(match, time.monotonic() + settings.GAME_SERVER_LAUNCH_TIMEOUT))
            except LaunchError as error:
                yield position, error
        while sent:
            retry = []
            for position, launch in sent.items():
                outcome = self._collect(launch)
                if outcome is None:
                    retry.append((position, launch.attempt))  # try the next host
                else:
                    yield position, outcome
            sent = {}
            for position, attempt in retry:
                try:
                    sent[position] = self._send(attempt)
                except LaunchError as error:
                    yield position, error

    @staticmethod
    def _send(attempt: _Attempt) -> _Sent:
        """Place the match and publish its launch to that host's queue (no waiting)."""
        host_name = attempt.reserve()
        remaining = attempt.deadline - time.monotonic()
        if remaining <= 0:
            raise LaunchError("launch_timeout", f"no game host answered within {settings.GAME_SERVER_LAUNCH_TIMEOUT:g} s")
        wait = min(remaining, settings.GAME_HOST_ANSWER_TIMEOUT)
        try:
            result = configured_app().send_task(
                LAUNCH_TASK,
                args=[attempt.match.as_dict(), host_name],
                queue=queue_name(host_name),
                expires=wait,  # a host that gets it later drops it: the launch is over
                retry=False,
            )
        except (*BROKER_ERRORS, RuntimeError) as error:  # RuntimeError: Celery's "retry limit exceeded"
            raise _broker_error(error) from None
        return _Sent(attempt, host_name, result, time.monotonic() + wait, wait)

    @staticmethod
    def _collect(sent: _Sent) -> LaunchOutcome | None:
        """The host's answer: where the server listens, a LaunchError, or None to
        try the next host (it did not answer in time, or cannot take the match)."""
        attempt, host_name = sent.attempt, sent.host_name
        try:
            answer = sent.result.get(timeout=max(0.0, sent.until - time.monotonic()), propagate=False)
        except CeleryTimeout:
            services.host_mark_suspect(host_name)
            attempt.last_error = LaunchError("launch_timeout", f"game host {host_name} did not answer within {sent.wait:g} s")
            return None
        except (*BROKER_ERRORS, RuntimeError) as error:
            return _broker_error(error)
        if not isinstance(answer, dict):  # the task raised: `answer` is the exception
            return LaunchError("launch_failed", f"{host_name} failed the launch: {answer!r}"[:250])
        if "error" in answer:
            error = LaunchError(str(answer["error"]), f"{host_name}: {answer.get('detail', '')}")
            if error.code in RETRY_ELSEWHERE:
                attempt.last_error = error
                return None
            return error
        logger.info("match %s runs on host %s (%s:%s)", attempt.match.id, host_name, answer["host"], answer["port"])
        return LaunchResult(port=int(answer["port"]), pid=int(answer["pid"]), host=str(answer["host"]))


def _broker_error(error: BaseException) -> LaunchError:
    reset_result_backend()
    detail = str(error).strip().splitlines()[0] if str(error).strip() else error.__class__.__name__
    return LaunchError("broker_unavailable", f"the launch could not go through the broker: {detail}")
