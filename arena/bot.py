"""A Pong bot: `python -m arena.bot --match <id> --token <token>`.

Connects as a player and follows the ball, so one person can play against the
machine, or two bots can play a whole match with no human.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys

from arena.client import ArenaApi, GameClient
from arena.gameserver import wire

logger = logging.getLogger("arena.bot")
DEAD_ZONE = 12.0
REACH = 420.0  # it reacts only to a ball this close: fast balls can beat it


def choose_move(state: dict, side: str, field: dict) -> int:
    """Follow the ball once it comes close; drift back to the centre otherwise."""
    ball, paddle = state["ball"], state["paddles"][side]
    coming = ball["vx"] < 0 if side == "left" else ball["vx"] > 0
    distance = ball["x"] if side == "left" else field["width"] - ball["x"]
    target = ball["y"] if coming and distance <= REACH else field["height"] / 2
    if abs(target - paddle) <= DEAD_ZONE:
        return 0
    return 1 if target > paddle else -1


async def play(host: str, port: int, token: str) -> dict:
    client = GameClient(host, port, token)
    welcome = await client.connect()
    if welcome["role"] != "player":
        await client.close()
        raise SystemExit("this token does not make a player of that match")
    side, field, last_move = welcome["side"], welcome["field"], None
    logger.info("playing %s as %s", welcome["match"]["id"], side)
    seen = 0
    while client.game_over is None and client.sio.connected:
        try:
            await client.wait_for(wire.STATE, timeout=1, since=seen)
        except TimeoutError:
            continue
        seen = len(client.history)
        move = choose_move(client.state, side, field)
        if move != last_move:
            await client.send_input(move)
            last_move = move
    if client.game_over is None:
        try:
            await client.wait_for(wire.GAME_OVER, timeout=2)
        except TimeoutError:
            pass
    await client.close()
    return client.game_over or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arena.bot", description=__doc__.splitlines()[0])
    parser.add_argument("--match", help="match id (looked up through the API)")
    parser.add_argument(
        "--token",
        default=os.environ.get("ARENA_BOT_TOKEN"),
        help="a game token or API token (default: $ARENA_BOT_TOKEN; or use --username/--password)",
    )
    parser.add_argument("--username")
    parser.add_argument("--password")
    parser.add_argument("--host", help="game server host (skips the API lookup, with --port and --token)")
    parser.add_argument("--port", type=int, help="game server port")
    parser.add_argument("--api", default=os.environ.get("ARENA_API", "http://127.0.0.1:8000"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s bot: %(message)s")
    if args.host and args.port and args.token:
        result = asyncio.run(play(args.host, args.port, args.token))
        logger.info("game over: %s", result)
        return 0
    if not args.match:
        parser.error("give --match, or --host, --port and --token")
    api = ArenaApi(args.api, args.token)
    if not args.token:
        if not (args.username and args.password):
            parser.error("give --token, or --username and --password")
        api.login(args.username, args.password)
    match = api.match(args.match)
    token = args.token or api.game_token(args.match)
    result = asyncio.run(play(match["host"], match["port"], token))
    logger.info("game over: %s", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
