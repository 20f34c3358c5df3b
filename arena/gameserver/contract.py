"""What a game server and the process that launched it promise each other.

The launcher reads the child's stdout until a line matches `PORT_LINE_RE`. A child
that cannot start prints an `Error:` line instead and exits with one of the codes
below, so the launcher can answer with a precise reason whichever launch strategy
is used. Nothing else is ever written to stdout.

`MatchInfo` is what a game server needs to know about its match: a plain launch
reads it from the database (`arena.gameserver.store.load_match`); the warm
launcher is given it by the code that created the match and sends it with the
fork request (`as_dict` / `from_dict`).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

PORT_LINE_RE = re.compile(r"^Port:\s(\d+)\n?")
ERROR_LINE_RE = re.compile(r"^Error:\s(\w+)\s?(.*)\n?")

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2
EXIT_NO_FREE_PORT = 3
EXIT_BAD_MATCH = 4
EXIT_INSECURE_SETTINGS = 5  # DEBUG off with the public development SECRET_KEY

ERROR_CODES_BY_EXIT = {
    EXIT_NO_FREE_PORT: "no_free_port",
    EXIT_BAD_MATCH: "launch_failed",
    EXIT_INSECURE_SETTINGS: "insecure_secret_key",
}


def port_line(port: int) -> str:
    return f"Port: {port}\n"


def error_line(code: str, detail: str) -> str:
    return f"Error: {code} {detail}\n"


UserKey = int | str


def user_key(pk: object) -> UserKey:
    """A user's primary key as it travels (game tokens, fork requests, events).

    Integer keys stay integers (the wire contract of every existing client);
    any other key (a UUID, a string) travels as its string, so it survives JSON
    and compares equal however it was read back."""
    return pk if isinstance(pk, int) and not isinstance(pk, bool) else str(pk)


@dataclass(frozen=True)
class Seat:
    user_id: UserKey
    username: str
    side: str


@dataclass(frozen=True)
class MatchInfo:
    id: str
    points_to_win: int
    seats: tuple[Seat, ...]

    def seat_of(self, user_id: UserKey | None) -> Seat | None:
        return next((s for s in self.seats if s.user_id == user_id), None)

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "players": [{"username": s.username, "side": s.side} for s in self.seats],
            "points_to_win": self.points_to_win,
        }

    def as_dict(self) -> dict[str, Any]:
        """JSON for the warm launcher's fork request (see `from_dict`)."""
        return {"id": self.id, "points_to_win": self.points_to_win,
                "seats": [[s.user_id, s.username, s.side] for s in self.seats]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MatchInfo:
        """The inverse of `as_dict`; ValueError/TypeError/KeyError on anything else."""
        seats = tuple(Seat(user_key(user_id), str(username), str(side)) for user_id, username, side in data["seats"])
        return cls(id=str(data["id"]), points_to_win=int(data["points_to_win"]), seats=seats)
