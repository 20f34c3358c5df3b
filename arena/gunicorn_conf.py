"""gunicorn settings for serving the HTTP API and pages as WSGI:

    gunicorn -c python:arena.gunicorn_conf -b 0.0.0.0:8000 arena.wsgi:application

Daphne then serves only the notification WebSockets (`/ws/`). A sync worker
handles one request at a time on one thread, with no hand-offs between an event
loop and worker threads, so a request costs less CPU than under Daphne (see
docs/benchmarks.md), and several workers use several CPUs. Each worker launches
game servers through a zygote of its own, started when the worker starts.
"""
from __future__ import annotations

import logging
import os

# One thread per worker: a persistent connection is safe, and saves a connect per request.
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")

workers = int(os.environ.get("WEB_CONCURRENCY", 2 * (os.cpu_count() or 1)))
# A launch may wait GAME_SERVER_LAUNCH_TIMEOUT for its game server, and a retried
# request as long again for the first one: never kill a worker before that.
timeout = int(2 * float(os.environ.get("GAME_SERVER_LAUNCH_TIMEOUT", "10")) + 30)
accesslog = None
control_socket_disable = True  # its default path is per user: two servers on one host would share it


def post_worker_init(worker) -> None:
    """Start this worker's launcher (its zygote) before it takes requests."""
    from arena.matches.launcher import LaunchError, get_launcher

    try:
        get_launcher().prepare()
    except LaunchError as error:  # the first launch tries again
        logging.getLogger("arena.launcher").warning("could not prepare the launcher: %s", error)
