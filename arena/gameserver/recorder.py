"""What a room records while it plays, so that the match can be replayed bit for bit.

The rules are deterministic: the seed, the rules' name, version and config, and
every action the room *applied* (with the tick it was applied at) reproduce every
state. The room calls a `Recorder` at a few points: each applied input, each point,
each pause and resume, each ``state`` snapshot it broadcasts, and the end.

Every broadcast snapshot is covered by one SHA-256 over the stream of their
packets (`SnapshotDigest`), with a checkpoint every `CHECKPOINT_EVERY` snapshots
and the final digest: a replay that re-runs the inputs through the same code
(`arena.matches.replays`) proves it reproduced every snapshot the players saw
without the recording storing any of them. The ticks the snapshots were taken at
depend on the process's timer (a late wake-up runs several steps before the next
snapshot), so they are recorded too, run-length coded (nearly all are
`snapshot_every` apart).

Cheap by design, since it runs on every tick of hundreds of matches in a process:
an applied input appends one tuple, a snapshot appends its packet (the broadcast
sends the packet the recorder encoded) and touches no other list unless its tick
breaks the run. The hashing waits for `HASH_BATCH` packets and takes them in one
call: `docs/benchmarks.md` ("Replays and metrics together") measured a hash per
snapshot at about 3 % of a match's CPU end to end, far more than its microseconds
in a loop, because each call runs OpenSSL's code cold between two of the
process's wake-ups. Everything else is built once, at the end (`recording`).
"""
from __future__ import annotations

import hashlib
from typing import Any

from arena.gameserver import wire
from arena.gameserver.broadcast import encode_event
from arena.gameserver.game import Game

#: The version of the recording's shape (`recording` and `arena.matches.replays`).
#: 2: the snapshot digest is one hash over the packet stream (`SnapshotDigest`);
#: 1: a chain of hashes, one per packet (`ChainDigest`, still verified).
FORMAT = 2
#: Snapshots per digest checkpoint: a replay that diverges is located within this many.
CHECKPOINT_EVERY = 256
#: Snapshots hashed in one call (at most: a checkpoint hashes what is pending).
HASH_BATCH = 32

_sha256 = hashlib.sha256


def snapshot_packet(payload: dict[str, Any]) -> str:
    """What the digest covers of a ``state`` snapshot: the Socket.IO packet the room
    broadcasts (``2["state",{...}]``, `encode_event`), so recording costs no second
    encoding."""
    return encode_event(wire.STATE, payload)


class SnapshotDigest:
    """SHA-256 over every snapshot's packet, each followed by a newline (a packet is
    JSON text: it has none of its own), read every `CHECKPOINT_EVERY` snapshots
    (``checkpoints``) and at the end (`hexdigest`).

    Packets wait in a list until `HASH_BATCH` of them are joined and hashed at once;
    the digest is the same as hashing each on arrival."""

    __slots__ = ("every", "count", "checkpoints", "_hash", "_pending")

    def __init__(self, every: int = CHECKPOINT_EVERY) -> None:
        self.every = every
        self.count = 0
        self.checkpoints: list[str] = []
        self._hash = _sha256()
        self._pending: list[str] = []

    def add(self, packet: str) -> None:
        pending = self._pending
        pending.append(packet)
        self.count += 1
        checkpoint = not self.count % self.every
        if checkpoint or len(pending) == HASH_BATCH:
            self._absorb()
            if checkpoint:
                self.checkpoints.append(self._hash.hexdigest())

    def _absorb(self) -> None:
        self._pending.append("")  # the last packet's newline
        self._hash.update("\n".join(self._pending).encode())
        self._pending.clear()

    def hexdigest(self) -> str:
        if self._pending:
            self._absorb()
        return self._hash.hexdigest()


class ChainDigest:
    """Format 1's digest, kept to verify replays recorded with it: a chain,
    ``h = SHA-256(h_previous || packet)`` from 32 zero bytes, one hash per packet."""

    __slots__ = ("every", "count", "checkpoints", "_h")

    def __init__(self, every: int = CHECKPOINT_EVERY) -> None:
        self.every = every
        self.count = 0
        self.checkpoints: list[str] = []
        self._h = bytes(32)

    def add(self, packet: str) -> None:
        self._h = _sha256(self._h + packet.encode()).digest()
        self.count += 1
        if not self.count % self.every:
            self.checkpoints.append(self._h.hex())

    def hexdigest(self) -> str:
        return self._h.hex()


#: The digest each recording format uses.
DIGESTS: dict[int, type[SnapshotDigest] | type[ChainDigest]] = {2: SnapshotDigest, 1: ChainDigest}


class Recorder:
    """One match's recording; see the module docstring."""

    __slots__ = (
        "rules", "seed", "tick_rate", "snapshot_every", "repeats_ignored", "encode_action",
        "inputs", "points", "pauses", "end", "digest",
        "runs", "_last_tick", "_run_delta", "_run_count",
    )

    def __init__(self, game: Game, *, seed: int, tick_rate: int, snapshot_every: int) -> None:
        self.rules: dict[str, Any] = game.rules()
        self.seed = seed
        self.tick_rate = tick_rate
        self.snapshot_every = snapshot_every
        self.repeats_ignored = bool(getattr(game, "repeats_ignored", False))
        self.encode_action = game.encode_action
        self.inputs: list[tuple[int, str, int, Any]] = []  # (tick, side, seq, action)
        self.points: list[dict[str, Any]] = []
        self.pauses: list[dict[str, Any]] = []
        self.end: dict[str, Any] | None = None
        self.digest = SnapshotDigest()
        self.runs: list[list[int]] = []  # snapshot ticks: [tick delta, how many in a row]
        self._last_tick = 0
        self._run_delta = 0
        self._run_count = 0

    # --- while playing (the room calls these) ------------------------------------

    def input(self, tick: int, side: str, seq: int, action: Any) -> None:
        """The room applies `action` of `side` (its ``seq``) before the step from `tick`."""
        self.inputs.append((tick, side, seq, action))

    def snapshot(self, tick: int, payload: dict[str, Any]) -> str:
        """The room broadcasts `payload` (a ``state``) at game tick `tick`: returns the
        encoded packet, for the broadcast to send as is."""
        encoded = snapshot_packet(payload)
        self.digest.add(encoded)
        delta = tick - self._last_tick
        self._last_tick = tick
        if delta == self._run_delta and self._run_count:
            self._run_count += 1
        else:
            if self._run_count:
                self.runs.append([self._run_delta, self._run_count])
            self._run_delta, self._run_count = delta, 1
        return encoded

    def point(self, tick: int, side: str | None, score: dict[str, int]) -> None:
        self.points.append({"tick": tick, "side": side, "score": dict(score)})

    def paused(self, tick: int, missing: list[str]) -> None:
        """Play stopped at `tick` for want of `missing` (a pause still open, e.g. a
        countdown cut short, just gains the names)."""
        if self.pauses and self.pauses[-1]["resumed_tick"] is None:
            names = self.pauses[-1]["missing"]
            names.extend(name for name in missing if name not in names)
            return
        self.pauses.append({"tick": tick, "missing": list(missing), "resumed_tick": None})

    def resumed(self, tick: int) -> None:
        if self.pauses and self.pauses[-1]["resumed_tick"] is None:
            self.pauses[-1]["resumed_tick"] = tick

    def ended(self, tick: int, *, status: str, reason: str, winner: str | None, score: dict[str, int]) -> None:
        self.end = {"tick": tick, "status": status, "reason": reason, "winner": winner, "score": dict(score)}

    # --- at the end ----------------------------------------------------------------

    def snapshot_ticks(self) -> list[list[int]]:
        """The run-length coded ticks of the snapshots: ``[[delta, count], ...]``, each
        run `count` snapshots `delta` ticks after the previous one (the first after 0)."""
        runs = [list(run) for run in self.runs]
        if self._run_count:
            runs.append([self._run_delta, self._run_count])
        return runs

    def recording(self) -> dict[str, Any]:
        """The replay as `arena.matches.replays` stores it and the API shows it
        (without the match id and players, which the database has)."""
        inputs: list[dict[str, Any]] = []
        repeats: list[dict[str, Any]] = []
        last: dict[str, dict[str, Any]] = {}
        for tick, side, seq, action in self.inputs:
            fields = self.encode_action(action)
            if self.repeats_ignored and last.get(side) == fields:
                repeats.append({"tick": tick, "side": side, "seq": seq})
                continue
            last[side] = fields
            inputs.append({"tick": tick, "side": side, **fields, "seq": seq})
        return {
            "format": FORMAT,
            "rules": self.rules,
            "seed": self.seed,
            "tick_rate": self.tick_rate,
            "snapshot_every": self.snapshot_every,
            "inputs": inputs,
            "repeats": repeats,
            "pauses": [dict(pause) for pause in self.pauses],
            "points": list(self.points),
            "end": self.end,
            "digest": {
                "every": CHECKPOINT_EVERY,
                "final": self.digest.hexdigest(),  # first: it hashes what is still pending
                "checkpoints": list(self.digest.checkpoints),
                "snapshots": self.digest.count,
                "ticks": self.snapshot_ticks(),
            },
        }
