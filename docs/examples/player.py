#!/usr/bin/env python3
"""An Arena client in Python: join a match, follow the ball, print the result.

    python player.py --host 127.0.0.1 --port 25000 --token <game token>
    python player.py --match <id> --username alice --password alice [--api http://127.0.0.1:8000]
    python player.py --host 127.0.0.1 --port 25000              # no token: watch as a spectator

Every option can come from the environment instead: ARENA_HOST, ARENA_PORT,
ARENA_TOKEN, ARENA_API, ARENA_USERNAME, ARENA_PASSWORD, ARENA_MATCH, ARENA_TIMEOUT.

Needs nothing but `pip install "python-socketio[asyncio_client]"` (see
docs/protocol.md, "Client walk-through"). Exit status: 0 after `game_over`,
1 on an error, a refused or lost connection, 2 on bad usage, 3 on a timeout.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import urllib.error
import urllib.request

import socketio

REACH = 200  # px: follow the ball only this close to our goal line (so the bot can lose)
DEAD_ZONE = 10  # px: close enough, stop


def api(base: str, method: str, path: str, body: dict | None = None, token: str | None = None) -> dict:
    """One call to the HTTP API; raises RuntimeError with the API's error code."""
    request = urllib.request.Request(
        base.rstrip("/") + path,
        data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **({"Authorization": f"Token {token}"} if token else {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        problem = json.load(error)  # every error is {"error": code, "detail": text}
        raise RuntimeError(f"{method} {path}: {error.code} {problem['error']}: {problem['detail']}") from None


def join_through_api(base: str, username: str, password: str, match_id: str) -> tuple[str, int, str]:
    """As a player: API token, then the match's address, then a game token for it."""
    api_token = api(base, "POST", "/api/auth/token", {"username": username, "password": password})["token"]
    match = api(base, "GET", f"/api/match/{match_id}", token=api_token)
    game_token = api(base, "GET", f"/api/match/{match_id}/token", token=api_token)["token"]
    return match["host"], match["port"], game_token


def choose_move(state: dict, side: str, field: dict) -> int:
    """-1 (up), 0 or 1 (down): follow a ball coming close, else go back to the middle."""
    ball, paddle = state["ball"], state["paddles"][side]
    coming = ball["vx"] < 0 if side == "left" else ball["vx"] > 0
    distance = ball["x"] if side == "left" else field["width"] - ball["x"]
    target = ball["y"] if coming and distance <= REACH else field["height"] / 2
    if abs(target - paddle) <= DEAD_ZONE:
        return 0
    return 1 if target > paddle else -1


async def play(host: str, port: int, token: str | None, timeout: float) -> int:
    sio = socketio.AsyncClient(reconnection=False)
    done = asyncio.get_running_loop().create_future()  # resolves to the exit status
    welcomed = asyncio.Event()
    me = {"role": None, "side": None, "field": None}
    game = {"tick": -1, "running": False, "move": None, "seq": 0}

    def finish(status: int) -> None:
        if not done.done():
            done.set_result(status)

    @sio.on("welcome")
    async def on_welcome(msg):
        me.update(role=msg["role"], side=msg["side"], field=msg["field"])
        game.update(tick=msg["state"]["tick"], running=False, move=None)
        print(f"role: {msg['role']}" + (f" {msg['side']}" if msg["side"] else ""), flush=True)
        print(f"match {msg['match']['id']}, phase {msg['phase']}, missing {msg['missing']}", flush=True)
        if token and msg["role"] != "player":  # a bad token is not refused: it makes a spectator
            print("error: this token does not make a player of this match", file=sys.stderr, flush=True)
            finish(1)
        elif msg["role"] == "player":  # keep seq above what the server applied (after a reconnect)
            game["seq"] = max(game["seq"], msg["state"]["acks"][msg["side"]])
        welcomed.set()

    @sio.on("presence")
    async def on_presence(msg):
        print(f"presence: connected {msg['connected']}, missing {msg['missing']}", flush=True)

    @sio.on("countdown")
    async def on_countdown(msg):
        game["running"] = False  # not running until `tick` advances again
        print(f"countdown: {msg['seconds']} s", flush=True)

    @sio.on("paused")
    async def on_paused(msg):
        game["running"] = False
        print(f"paused: waiting {msg['grace']} s for {msg['missing']}", flush=True)

    @sio.on("state")
    async def on_state(msg):
        if msg["tick"] > game["tick"] and not game["running"]:
            game["running"] = True  # play (re)started: what we sent before was dropped,
            game["move"] = None  # so the next decision is sent whatever it is
        game["tick"] = max(game["tick"], msg["tick"])
        if me["role"] != "player" or not game["running"]:
            return
        move = choose_move(msg, me["side"], me["field"])
        if move != game["move"]:  # send on change only, with an increasing seq
            game["move"] = move
            game["seq"] += 1
            await sio.emit("input", {"seq": game["seq"], "move": move})

    @sio.on("score")
    async def on_score(msg):
        print(f"score: {msg['side']} scored, {msg['score']['left']}-{msg['score']['right']}", flush=True)

    @sio.on("game_over")
    async def on_game_over(msg):
        print("game_over " + json.dumps(msg, sort_keys=True), flush=True)
        finish(0)

    @sio.on("error")
    async def on_error(msg):  # our own mistake, or "replaced": another connection took over
        print(f"error: {msg['code']}: {msg['detail']}", file=sys.stderr, flush=True)
        finish(1)

    @sio.on("connect_error")
    async def on_connect_error(data):  # refused: {"message": detail, "data": {"code", "detail"}}
        reason = data.get("data") if isinstance(data, dict) else None
        if reason:  # (a network failure gives just a message; connect() raises in both cases)
            print(f"refused: {reason['code']}: {reason['detail']}", file=sys.stderr, flush=True)

    @sio.on("disconnect")
    async def on_disconnect(*reason):
        if not done.done():
            print("connection lost before game_over", file=sys.stderr, flush=True)
        finish(1)

    try:
        await sio.connect(
            f"http://{host}:{port}",
            auth={"token": token} if token else None,  # no token: spectator
            transports=["websocket"],
            wait_timeout=10,
        )
        await asyncio.wait_for(welcomed.wait(), 10)
        print(f"rtt: {await round_trip(sio) * 1000:.1f} ms", flush=True)
        return await asyncio.wait_for(done, timeout)
    except socketio.exceptions.ConnectionError as error:
        print(f"could not connect: {error}", file=sys.stderr)
        return 1
    except (TimeoutError, socketio.exceptions.TimeoutError):
        print(f"timed out (game_over not within {timeout} s, or no welcome/ping answer)", file=sys.stderr)
        return 3
    finally:
        await sio.disconnect()  # also after a failed connect: it closes the HTTP session


async def round_trip(sio: socketio.AsyncClient) -> float:
    """Seconds for a `ping` to be acknowledged (the server answers {"t": its clock})."""
    started = asyncio.get_running_loop().time()
    await sio.call("ping", {}, timeout=5)
    return asyncio.get_running_loop().time() - started


def main() -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Play (or watch) one Arena match.")
    parser.add_argument("--host", default=env("ARENA_HOST"), help="game server host")
    parser.add_argument("--port", type=int, default=env("ARENA_PORT"), help="game server port")
    parser.add_argument("--token", default=env("ARENA_TOKEN"), help="game token (or API token); none: spectator")
    parser.add_argument("--match", default=env("ARENA_MATCH"), help="match id: log in instead of --host/--port/--token")
    parser.add_argument("--username", default=env("ARENA_USERNAME"))
    parser.add_argument("--password", default=env("ARENA_PASSWORD"))
    parser.add_argument("--api", default=env("ARENA_API", "http://127.0.0.1:8000"), help="Arena URL (with --match)")
    parser.add_argument("--timeout", type=float, default=float(env("ARENA_TIMEOUT", "1200")),
                        help="seconds to wait for game_over (default 1200)")
    args = parser.parse_args()
    host, port, token = args.host, args.port, args.token
    if args.match:
        if not (args.username and args.password):
            parser.error("--match needs --username and --password")
        try:
            host, port, token = join_through_api(args.api, args.username, args.password, args.match)
        except (RuntimeError, OSError) as error:
            print(error, file=sys.stderr)
            return 1
    if not (host and port):
        parser.error("give --host and --port (and --token to play), or --match, --username and --password")
    return asyncio.run(play(host, int(port), token, args.timeout))


if __name__ == "__main__":
    sys.exit(main())
