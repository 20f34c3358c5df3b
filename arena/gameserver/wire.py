"""The game server's wire format: event names and payload shapes, in one place.

`docs/protocol.md` documents these; the Python client imports them too.
"""
from __future__ import annotations

from typing import Any

# server -> client
WELCOME = "welcome"
PRESENCE = "presence"
COUNTDOWN = "countdown"
STATE = "state"
SCORE = "score"
PAUSED = "paused"
GAME_OVER = "game_over"
ERROR = "error"
# client -> server
INPUT = "input"
PING = "ping"

MOVES = (-1, 0, 1)
MAX_SEQ = 2**53  # what a JavaScript number holds exactly


def parse_input(data: Any) -> tuple[int, int] | None:
    """`{"seq": int, "move": -1|0|1}` -> (seq, move), or None if malformed."""
    if not isinstance(data, dict):
        return None
    seq, move = data.get("seq"), data.get("move")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:  # bool is not a seq
        return None
    if type(move) is not int or move not in MOVES:
        return None
    return seq, move


def error(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def state(tick: int, ball, paddles: dict[str, float], score: dict[str, int], acks: dict[str, int]) -> dict:
    """A snapshot; rounded so the JSON stays small and exact enough for drawing."""
    return {
        "tick": tick,
        "ball": {"x": round(ball.x, 2), "y": round(ball.y, 2), "vx": round(ball.vx, 2), "vy": round(ball.vy, 2)},
        "paddles": {side: round(y, 2) for side, y in paddles.items()},
        "score": dict(score),
        "acks": dict(acks),
    }


def game_over(winner: str | None, score: dict[str, int], reason: str) -> dict:
    return {"winner": winner, "score": dict(score), "reason": reason}
