"""Notification sockets for tests: the real ASGI application in this process
(`channels.testing.WebsocketCommunicator`) or real web server processes.

The suite runs with whichever channel layer the environment selects: the in-memory
layer (events travel through the outbox and this process's relay) or Redis when
`REDIS_URL` is set (events are sent straight to Redis by the API and the game
servers).
"""
from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.authtoken.models import Token

from arena.notifications.backends import backend_name, stop_relays
from arena.notifications.checks import redis_socket_timeout_too_short

WS_PATH = "/ws/notifications/"
REPO = Path(__file__).resolve().parents[2]


def layer_mode() -> str:
    """'redis' or 'memory': which layer this run uses (the suite runs under both)."""
    return "redis" if os.environ.get("REDIS_URL") else "memory"


@pytest.fixture(scope="session", autouse=True)
def _backend_matches_environment():
    # Never test the wrong thing silently: with REDIS_URL the producers must send
    # to Redis directly; without, events must go through the outbox.
    assert backend_name() == ("layer" if layer_mode() == "redis" else "outbox"), backend_name()
    too_short = redis_socket_timeout_too_short()
    assert not too_short, (
        "CHANNEL_LAYERS: the Redis hosts need a socket_timeout above 5 s (notifications.E003), "
        "or every idle socket is torn down"
    )


@pytest.fixture
def tokens(users) -> dict[str, str]:
    return {name: Token.objects.get_or_create(user=user)[0].key for name, user in users.items()}


@pytest.fixture
def session_cookie(users):
    """session_cookie("alice") -> the `Cookie` header value of a logged-in browser.

    Made before the test's event loop runs (logging in writes the database).
    """
    cookies = {}
    for name, user in users.items():
        client = Client()
        client.force_login(user)
        cookies[name] = f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"
    return cookies.__getitem__


class Socket:
    """What a notification client saw, with waiting helpers (any transport)."""

    def __init__(self) -> None:
        self.history: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        """The next message, or None once the socket is closed."""
        raise NotImplementedError

    async def send(self, data: dict[str, Any]) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def wait_for(
        self, type_: str, match: str | None = None, timeout: float = 10.0, since: int = 0
    ) -> dict[str, Any]:
        """The first message of `type_` (about `match`) from history index `since`."""
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.history):
                message = self.history[index]
                index += 1
                if message.get("type") == type_ and (match is None or message.get("match", {}).get("id") == match):
                    return message
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {type_} within {timeout} s; got {[m.get('type') for m in self.history]}")
            try:
                message = await self._next(remaining)
            except TimeoutError:
                continue
            if message is None:
                raise AssertionError(f"socket closed ({self.close_code}) while waiting for {type_}")
            self.history.append(message)

    async def drain(self, seconds: float) -> list[dict[str, Any]]:
        """Everything that arrives within `seconds` (added to history too)."""
        deadline = time.monotonic() + seconds
        got = []
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                message = await self._next(remaining)
            except TimeoutError:
                break
            if message is None:
                break
            self.history.append(message)
            got.append(message)
        return got

    def about(self, match_id: str) -> list[dict[str, Any]]:
        return [m for m in self.history if m.get("match", {}).get("id") == match_id]


class CommunicatorSocket(Socket):
    """The application of `arena.asgi`, called in this process's event loop."""

    def __init__(self, communicator: WebsocketCommunicator) -> None:
        super().__init__()
        self.communicator = communicator
        self.closed = False

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        if self.closed:
            return None
        try:
            # Not communicator.receive_output(): its timeout cancels the application.
            output = await asyncio.wait_for(self.communicator.output_queue.get(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError from None
        if output["type"] == "websocket.close":
            self.closed, self.close_code = True, output.get("code", 1000)
            return None
        assert output["type"] == "websocket.send", output
        return json.loads(output["text"])

    async def send(self, data: dict[str, Any]) -> None:
        await self.communicator.send_json_to(data)

    async def send_text(self, text: str) -> None:
        await self.communicator.send_to(text_data=text)

    async def close(self) -> None:
        if not self.communicator.future.done():
            await self.communicator.disconnect()


@pytest.fixture
async def connect():
    """connect(token=..., cookie=..., origin=...) -> an accepted CommunicatorSocket.

    Every socket is closed, and this loop's outbox relay stopped, after the test.
    """
    from arena.asgi import application

    opened: list[CommunicatorSocket] = []

    async def open_socket(
        *, token: str | None = None, cookie: str | None = None, origin: str | None = None, expect_accept: bool = True
    ) -> CommunicatorSocket:
        path = WS_PATH + (f"?token={token}" if token is not None else "")
        headers = [(b"host", b"127.0.0.1:8000")]
        if cookie:
            headers.append((b"cookie", cookie.encode()))
        if origin:
            headers.append((b"origin", origin.encode()))
        communicator = WebsocketCommunicator(application, path, headers=headers)
        sock = CommunicatorSocket(communicator)
        opened.append(sock)
        connected, code = await communicator.connect(timeout=5)
        if not connected:
            sock.closed, sock.close_code = True, code
        assert connected == expect_accept, (connected, code)
        return sock

    yield open_socket
    for sock in opened:
        await sock.close()
    await stop_relays()


def api_call(api, method: str, path: str, body: dict | None = None):
    """An API request through DRF's test client, off the event loop's thread.

    Not the thread-sensitive default: a launch takes a while and must not hold up
    the sockets' own database calls. The connection it opened is closed after.
    """

    def call():
        return getattr(api, method)(path, body, format="json")

    return database_sync_to_async(call, thread_sensitive=False)()


# --- real web server processes ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class WebServer:
    """A real web server process on 127.0.0.1, on the test database: `daphne`
    (HTTP and WebSockets, as `manage.py runserver`) or `gunicorn` (WSGI: HTTP only,
    with `arena/gunicorn_conf.py` and two workers)."""

    COMMANDS = {
        "daphne": ["-m", "daphne", "-b", "127.0.0.1", "-p", "{port}", "arena.asgi:application"],
        "gunicorn": ["-m", "gunicorn", "-c", "python:arena.gunicorn_conf", "-w", "2", "-b", "127.0.0.1:{port}",
                     "arena.wsgi:application"],
    }

    def __init__(self, log_path: Path, kind: str = "daphne") -> None:
        self.kind = kind
        self.port = free_port()
        env = dict(os.environ)
        env["DJANGO_SETTINGS_MODULE"] = "arena.settings"
        env["ARENA_DB_NAME"] = str(connection.settings_dict["NAME"])
        env["PYTHONUNBUFFERED"] = "1"
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable] + [part.format(port=self.port) for part in self.COMMANDS[kind]],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.log_path = log_path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}{WS_PATH}"

    def wait_ready(self, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited: {self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"{self.kind} did not listen: {self.log_path.read_text(errors='replace')[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


@pytest.fixture
def web_servers(transactional_db, tmp_path):
    """web_servers(n, kind="daphne") -> n running web server processes sharing the test database."""
    started: list[WebServer] = []

    def start(count: int, kind: str = "daphne") -> list[WebServer]:
        servers = [WebServer(tmp_path / f"{kind}-{len(started) + i}.log", kind) for i in range(count)]
        started.extend(servers)
        for server in servers:
            server.wait_ready()
        return servers

    yield start
    for server in started:
        server.stop()


class WebsocketsSocket(Socket):
    """A real WebSocket client (the `websockets` library) to a real server."""

    def __init__(self, connection) -> None:
        super().__init__()
        self.connection = connection

    @classmethod
    async def open(cls, url: str, **kwargs: Any) -> WebsocketsSocket:
        from websockets.asyncio.client import connect

        return cls(await connect(url, open_timeout=10, **kwargs))

    async def _next(self, timeout: float) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        try:
            text = await asyncio.wait_for(self.connection.recv(), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError from None
        except ConnectionClosed as closed:
            self.close_code = closed.rcvd.code if closed.rcvd else None
            return None
        return json.loads(text)

    async def send(self, data: dict[str, Any]) -> None:
        await self.connection.send(json.dumps(data))

    async def close(self) -> None:
        await self.connection.close()
