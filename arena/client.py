"""A small Python client for Arena: the HTTP API and one game server.

Used by the bot, the tests, the demo and the benchmarks. The wire format comes
from `arena.gameserver.wire`, so it cannot drift from the server.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import socketio

from arena.gameserver import wire

SERVER_EVENTS = (
    wire.WELCOME, wire.PRESENCE, wire.COUNTDOWN, wire.STATE, wire.SCORE,
    wire.PAUSED, wire.GAME_OVER, wire.ERROR,
)


class ApiError(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(f"{status} {body.get('error')}: {body.get('detail')}")
        self.status = status
        self.body = body


class ArenaApi:
    """Blocking calls to the HTTP API (standard library only).

    `scheme` is the word before the token in the Authorization header: `Token`
    for REST framework tokens; a host project with its own scheme (e.g. `Bearer`)
    names it."""

    def __init__(self, base_url: str = "http://127.0.0.1:8000", token: str | None = None, *, scheme: str = "Token") -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.scheme = scheme

    def request(self, method: str, path: str, body: dict | None = None, timeout: float = 30) -> tuple[int, dict]:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        if self.token:
            req.add_header("Authorization", f"{self.scheme} {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as error:
            payload = json.loads(error.read() or b"{}")
            raise ApiError(error.code, payload) from None

    def login(self, username: str, password: str) -> str:
        _, body = self.request("POST", "/api/auth/token", {"username": username, "password": password})
        self.token = body["token"]
        return self.token

    def create_match(self, players: list[str], points_to_win: int | None = None, match_id: str | None = None) -> dict:
        body: dict[str, Any] = {"players": players}
        if points_to_win is not None:
            body["points_to_win"] = points_to_win
        if match_id is not None:
            body["id"] = match_id
        return self.request("PUT", "/api/match", body)[1]

    def create_matches(self, matches: list[dict]) -> list[dict]:
        """`PUT /api/matches`: each entry a `create_match` body; one result per entry,
        in order, `{"status", "match"}` or `{"status", "error", "detail"}`."""
        return self.request("PUT", "/api/matches", {"matches": matches})[1]["results"]

    def match(self, match_id: str) -> dict:
        return self.request("GET", f"/api/match/{match_id}")[1]

    def game_token(self, match_id: str) -> str:
        return self.request("GET", f"/api/match/{match_id}/token")[1]["token"]


class GameClient:
    """One Socket.IO connection to a game server, recording what it receives."""

    def __init__(self, host: str, port: int, token: str | None = None, *, transports: list[str] | None = None) -> None:
        self.url = f"http://{host}:{port}"
        self.token = token
        self.transports = transports or ["websocket"]
        self.sio = socketio.AsyncClient(reconnection=False)
        self.history: list[tuple[str, Any]] = []
        self.welcome: dict | None = None
        self.state: dict | None = None
        self.game_over: dict | None = None
        self.seq = 0
        self._changed = asyncio.Condition()
        for event in SERVER_EVENTS:
            self.sio.on(event, self._recorder(event))
        self.sio.on("disconnect", self._recorder("disconnect"))
        self.sio.on("connect_error", self._recorder("connect_error"))  # why a connection was refused

    def _recorder(self, event: str) -> Callable[..., Any]:
        async def record(*args: Any) -> None:
            payload = args[0] if args else None
            if event == wire.WELCOME:
                self.welcome = payload
            elif event == wire.STATE:
                self.state = payload
            elif event == wire.GAME_OVER:
                self.game_over = payload
            self.history.append((event, payload))
            async with self._changed:
                self._changed.notify_all()

        return record

    @property
    def role(self) -> str | None:
        return self.welcome["role"] if self.welcome else None

    @property
    def side(self) -> str | None:
        return self.welcome["side"] if self.welcome else None

    async def connect(self, timeout: float = 10) -> dict:
        auth = {"token": self.token} if self.token else None
        await self.sio.connect(self.url, auth=auth, transports=self.transports, wait_timeout=timeout)
        await self.wait_for(wire.WELCOME, timeout=timeout)
        assert self.welcome is not None
        return self.welcome

    async def wait_for(
        self, event: str, predicate: Callable[[Any], bool] | None = None, timeout: float = 10, since: int = 0
    ) -> Any:
        """The first `event` payload (from history index `since`) that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        index = since
        while True:
            while index < len(self.history):
                name, payload = self.history[index]
                index += 1
                if name == event and (predicate is None or predicate(payload)):
                    return payload
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no {event!r} within {timeout} s")
            async with self._changed:
                try:
                    await asyncio.wait_for(self._changed.wait(), remaining)
                except TimeoutError:
                    pass

    async def send_input(self, move: int) -> int:
        self.seq += 1
        await self.sio.emit(wire.INPUT, {"seq": self.seq, "move": move})
        return self.seq

    async def emit(self, event: str, *args: Any) -> None:
        await self.sio.emit(event, args[0] if len(args) == 1 else args if args else None)

    async def ping(self, timeout: float = 5) -> float:
        started = time.monotonic()
        await self.sio.call(wire.PING, {}, timeout=timeout)
        return time.monotonic() - started

    async def close(self) -> None:
        """Disconnect (if the server has not already) and release the HTTP session."""
        if self.sio.connected:
            await self.sio.disconnect()
        # When the server hung up first, Engine.IO keeps its aiohttp session open;
        # its disconnect() always releases it.
        await self.sio.eio.disconnect(abort=True)
