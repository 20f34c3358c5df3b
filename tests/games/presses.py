"""A second game for the room, living only in the tests: first to press N times wins.

An ``input`` with ``move: 1`` is a press; N is the match's ``points_to_win``.
``move: -1`` makes the game raise (a bug in the rules), to show that an exception in
one match's code ends that match alone. Imports nothing of Arena.
"""
from __future__ import annotations

SIDES = ("left", "right")


class PressesGame:
    sides = SIDES
    repeats_ignored = False  # every press counts

    def __init__(self, target: int) -> None:
        self.target = target
        self.presses = {side: 0 for side in SIDES}
        self.ticks = 0

    @property
    def tick(self) -> int:
        return self.ticks

    def describe(self) -> dict:
        return {"game": "presses", "target": self.target}

    def parse_input(self, data):
        move = data.get("move")
        return move if move in (1, -1) and type(move) is int else None

    def apply_input(self, side: str, action: int) -> None:
        if action == -1:
            raise RuntimeError("the presses game was told to break")
        if self.winner() is None:
            self.presses[side] += 1

    def step(self, dt: float) -> None:
        self.ticks += 1

    def score(self) -> dict[str, int]:
        return dict(self.presses)

    def winner(self) -> str | None:
        return next((side for side in SIDES if self.presses[side] >= self.target), None)

    def snapshot(self, acks) -> dict:
        return {"tick": self.ticks, "score": dict(self.presses), "acks": dict(acks)}


    def rules(self) -> dict:
        return {"name": "presses", "version": 1, "config": {"target": self.target}}

    def encode_action(self, action: int) -> dict:
        return {"move": action}


def create(*, seed: int, points_to_win: int) -> PressesGame:
    return PressesGame(points_to_win)


def from_config(*, seed: int, config) -> PressesGame:
    return PressesGame(int(config["target"]))
