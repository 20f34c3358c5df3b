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

MAX_SEQ = 2**53  # what a JavaScript number holds exactly


def parse_seq(data: Any) -> int | None:
    """The ``seq`` of an ``input`` payload (an object), or None if malformed.

    The rest of the payload is the game's to validate (`Game.parse_input`)."""
    if not isinstance(data, dict):
        return None
    seq = data.get("seq")
    if type(seq) is not int or not 0 <= seq <= MAX_SEQ:  # bool is not a seq
        return None
    return seq


def error(code: str, detail: str) -> dict[str, str]:
    return {"code": code, "detail": detail}


def game_over(winner: str | None, score: dict[str, int], reason: str) -> dict:
    return {"winner": winner, "score": dict(score), "reason": reason}
