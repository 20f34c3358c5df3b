"""The machine's metrics on a port of their own, for a game host of the fleet.

`manage.py gamehost` serves no web pages, so it serves `/metrics` itself
(``GAME_HOST_METRICS_PORT`` on ``GAME_HOST_METRICS_BIND``): the figures of every
game server of its machine, summed (`multiprocess.MachineCollector`), behind the
same access rules as the web side (`access`; the peer's address, there being no
proxy in front). A thread of the agent's process; a port that cannot be bound
is logged and the agent runs on without it.
"""
from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from arena.metrics import access

logger = logging.getLogger("arena.metrics")


class _Handler(BaseHTTPRequestHandler):
    server_version = "arena-metrics"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.path.split("?", 1)[0] != "/metrics":
            self._error(404, "not_found", "Only /metrics is served here.")
            return
        address = self.client_address[0]
        if not (access.token_ok(self.headers.get("Authorization", "")) or access.address_ok(address)):
            self._error(403, "forbidden", "Metrics are served to ARENA_METRICS_ALLOWED addresses or with ARENA_METRICS_TOKEN.")
            return
        from arena.metrics.views import render

        try:
            body, content_type = render(database=False)
        except Exception:
            logger.exception("metrics could not be read")
            self._error(500, "server_error", "The metrics could not be read.")
            return
        self._send(200, body, content_type)

    def _error(self, status: int, code: str, detail: str) -> None:
        self._send(status, json.dumps({"error": code, "detail": detail}).encode(), "application/json")

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:  # noqa: A002
        logger.debug("metrics: " + format, *args)


def serve(bind: str, port: int) -> ThreadingHTTPServer | None:
    """Serve in a daemon thread; the server, or None if the port cannot be bound."""
    try:
        server = ThreadingHTTPServer((bind, port), _Handler)
    except OSError as error:
        logger.error("metrics not served on %s:%s: %s", bind, port, error)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="arena-metrics", daemon=True).start()
    logger.info("metrics of this machine on http://%s:%s/metrics", bind, server.server_address[1])
    return server
