"""Sending the outbox: one signed POST per row, retried with backoff.

`deliver_soon(pk)` (after the commit of the event's transaction) hands the row to
a sender thread of this process, so a launch never waits for the webhook.
`deliver_due()` sends every row whose attempt is due (`manage.py
webhooks_deliver`); the supervisor hands them to its sender thread on each pass
(`deliver_due_in_background`, so a slow receiver never delays its other work).
Rows left by a process that stopped (a game server exits right after its match;
a web process restarts) are thus sent anyway.

Two senders never POST one row at the same time: a sender first moves the row's
`next_attempt_at` past the attempt's time-out with a conditional UPDATE, and only
the sender whose UPDATE changed the row sends it.
"""
from __future__ import annotations

import logging
import queue
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

from django.db import close_old_connections, connection
from django.db.models import F
from django.utils import timezone

from arena.conf import settings
from arena.webhooks.models import WebhookDelivery
from arena.webhooks.signing import signature

logger = logging.getLogger("arena.webhooks")

BACKOFF_MAX = 3600.0  # s, the longest wait between two attempts
USER_AGENT = "arena-webhook/1"


def backoff(attempts: int) -> float:
    """Seconds before the next attempt after `attempts` failed ones: 2, 4, 8… up to an hour."""
    return min(BACKOFF_MAX, 2.0**attempts)


def _claim(pk: int) -> WebhookDelivery | None:
    now = timezone.now()
    lease = now + timedelta(seconds=2 * float(settings.ARENA_WEBHOOK_TIMEOUT) + 1)
    claimed = WebhookDelivery.objects.filter(
        pk=pk, delivered_at=None, gave_up_at=None, next_attempt_at__lte=now
    ).update(next_attempt_at=lease)
    return WebhookDelivery.objects.filter(pk=pk).first() if claimed else None


def _post(row: WebhookDelivery) -> str:
    """POST the row once; '' on a 2xx answer, else what went wrong."""
    body = row.body.encode()
    timestamp = str(int(time.time()))
    request = urllib.request.Request(
        row.url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Arena-Event-Id": str(row.event_id),
            "X-Arena-Event": row.event_type,
            "X-Arena-Timestamp": timestamp,
            "X-Arena-Signature": signature(settings.ARENA_WEBHOOK_SECRET, timestamp, body),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=float(settings.ARENA_WEBHOOK_TIMEOUT)) as response:
            return "" if 200 <= response.status < 300 else f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"{error.__class__.__name__}: {error}"[:255]


def attempt(pk: int) -> bool:
    """Send one row if its attempt is due and nobody else is sending it; True if delivered."""
    row = _claim(pk)
    if row is None:
        return False
    error = _post(row)
    now = timezone.now()
    rows = WebhookDelivery.objects.filter(pk=pk)
    if not error:
        rows.update(delivered_at=now, attempts=F("attempts") + 1, last_error="")
        return True
    attempts = row.attempts + 1
    if attempts >= int(settings.ARENA_WEBHOOK_MAX_ATTEMPTS):
        rows.update(attempts=attempts, gave_up_at=now, last_error=error)
        logger.error("webhook %s %s given up after %d attempts: %s", row.event_type, row.event_id, attempts, error)
    else:
        rows.update(attempts=attempts, last_error=error, next_attempt_at=now + timedelta(seconds=backoff(attempts)))
        logger.warning("webhook %s %s failed (%s); attempt %d in %.0f s",
                       row.event_type, row.event_id, error, attempts + 1, backoff(attempts))
    return False


def _due(limit: int) -> list[int]:
    return list(
        WebhookDelivery.objects.filter(delivered_at=None, gave_up_at=None, next_attempt_at__lte=timezone.now())
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def deliver_due(limit: int = 100) -> int:
    """Send every row whose attempt is due (oldest first), here and now; the number delivered."""
    return sum(attempt(pk) for pk in _due(limit))


def prune() -> int:
    """Delete rows delivered or given up more than ARENA_WEBHOOK_RETENTION ago."""
    horizon = timezone.now() - timedelta(seconds=float(settings.ARENA_WEBHOOK_RETENTION))
    deleted, _ = WebhookDelivery.objects.filter(delivered_at__lt=horizon).delete()
    given_up, _ = WebhookDelivery.objects.filter(gave_up_at__lt=horizon).delete()
    return deleted + given_up


def deliver_due_in_background(limit: int = 100) -> int:
    """Hand the due rows to the sender thread, unless it is still busy with earlier
    ones; the number handed over. For loops that must not wait on a slow receiver
    (the supervisor's pass also fails lost matches)."""
    if not _sender.idle():
        return 0
    due = _due(limit)
    for pk in due:
        _sender.submit(pk)
    return len(due)


class _Sender:
    """One background thread per process, alive while it has rows to send.

    Not a daemon: a process that exits normally first sends what it queued
    (each attempt is bounded by ARENA_WEBHOOK_TIMEOUT)."""

    IDLE_EXIT = 2.0  # s without work before the thread ends

    def __init__(self) -> None:
        self.queue: queue.Queue[int] = queue.Queue()
        self.lock = threading.Lock()
        self.thread: threading.Thread | None = None

    def idle(self) -> bool:
        return self.queue.unfinished_tasks == 0

    def submit(self, pk: int) -> None:
        self.queue.put(pk)
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="arena-webhooks", daemon=False)
                self.thread.start()

    def _run(self) -> None:
        try:
            while True:
                try:
                    pk = self.queue.get(timeout=self.IDLE_EXIT)
                except queue.Empty:
                    with self.lock:
                        if self.queue.empty():
                            self.thread = None
                            return
                    continue
                try:
                    close_old_connections()
                    attempt(pk)
                except Exception:  # noqa: BLE001 - the row stays due; the supervisor retries it
                    logger.warning("webhook delivery %s failed", pk, exc_info=True)
                finally:
                    self.queue.task_done()
        finally:
            connection.close()


_sender = _Sender()


def deliver_soon(pk: int) -> None:
    """Send this row from the background thread (never blocks the caller)."""
    _sender.submit(pk)
