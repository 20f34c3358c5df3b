"""The Celery application that carries launches to the game hosts.

Configured from Django's settings when first used (so tests and management
commands may set `CELERY_BROKER_URL` first). Redis or RabbitMQ, by URL alone:

* ``CELERY_BROKER_URL``: ``redis://host:6379/0`` or ``amqp://user:pass@host:5672//``
  (default: REDIS_URL);
* ``CELERY_RESULT_BACKEND``: where the hosts' answers come back (default: the
  same Redis, or ``rpc://`` reply queues with RabbitMQ).

A launch must never hang: publishing does not retry (a broker that refuses is a
503 at once), connections time out in a second or two, and each message expires
when its launch would have timed out anyway.
"""
from __future__ import annotations

import threading

from celery import Celery

LAUNCH_TASK = "arena.fleet.launch"


def celery_config() -> dict:
    """The Celery settings, from Django's."""
    from arena.conf import settings

    return {
        "broker_url": settings.CELERY_BROKER_URL,
        "result_backend": settings.CELERY_RESULT_BACKEND,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_expires": 600,
        # One launch at a time per worker thread, acknowledged on receipt: a
        # launch is never run twice (its expiry bounds any redelivery anyway).
        "worker_prefetch_multiplier": 1,
        "task_acks_late": False,
        "broker_connection_timeout": 2.0,
        "broker_connection_retry_on_startup": True,
        "broker_transport_options": {"socket_connect_timeout": 2},
        "redis_socket_connect_timeout": 2,
        "redis_socket_timeout": 10,
        "redis_retry_on_timeout": False,
        "result_backend_always_retry": False,
        # Redis answers: no reconnect loop (Celery's default retries 20 times a
        # second apart, inside the request): an unreachable store fails the launch now.
        "result_backend_transport_options": {"retry_policy": {"max_retries": 0}},
        "worker_hijack_root_logger": False,
        "worker_send_task_events": False,
        "task_send_sent_event": False,
    }


# No Django fix-up: it would close every database connection before and after
# each task (unless a CELERY_DB_REUSE_MAX is set), so each launch would open a new
# one on the host, a PostgreSQL connect (about 9 ms measured) on every launch's
# path. Django is set up by `manage.py gamehost` before the worker starts, and the
# agent manages its connections itself (arena/fleet/agent.py).
app = Celery("arena", fixups=[])
_configured = False
_lock = threading.Lock()


def configured_app() -> Celery:
    """The app, configured from Django's settings on first use."""
    global _configured
    if not _configured:
        with _lock:
            if not _configured:
                app.conf.update(celery_config())
                _configured = True
    return app


def reset_result_backend() -> None:
    """Drop this thread's result backend after a broker error: Celery keeps one
    per thread, and the Redis one stays broken once its reconnection gave up.
    The next launch builds a fresh one."""
    try:
        del app._local.backend
    except AttributeError:
        pass
