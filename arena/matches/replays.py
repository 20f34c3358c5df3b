"""Replays: how they are stored, read, and played again through the rules.

A game server records a match (`arena.gameserver.recorder`) and writes the
recording with the result (`services.match_finish` / `match_cancel`). This module
is the one place that knows the stored form (`encode` / `decode`), reads replays
for the API (`replay_get`, `replay_frames_body`) and re-runs one through the game's
code (`resimulate`, `verify`), for the API, the tests and ``manage.py
replay_check`` alike.

Stored form (``MatchReplay.data``, formats 1 and 2, which differ only in how
the snapshot digest is computed: `recorder.DIGESTS`): zlib-compressed JSON of the
recording with its inputs as one flat list of integers, four per applied input:
``tick - previous tick``, the side's index in ``sides``, ``seq - previous seq of
that side``, and the index of its action in ``actions`` (the distinct JSON fields
of the actions), or -1 for a repeat the rules ignore. A five-minute match of a bot
that changes its move several times a second takes about 10 KiB.

Re-simulation uses the same code as the room: the game from ``GAME_RULES``
(rebuilt from the recorded config and seed by the module's ``from_config``),
inputs applied before the step from their tick, ``1 / tick_rate`` per step, and
snapshots taken at the recorded ticks, encoded as `recorder.snapshot_packet` and
hashed by the recording format's digest, so a digest that matches proves every
broadcast snapshot was reproduced.
"""
from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from arena.conf import settings
from arena.gameserver.game import Game, load_restorer, load_rules
from arena.gameserver.recorder import DIGESTS, FORMAT, snapshot_packet
from arena.matches.errors import ArenaError, NotFound
from arena.matches.models import Match, MatchReplay

__all__ = [
    "FORMAT", "encode", "decode", "replay_get", "replay_frames_body", "resimulate", "verify",
    "ReplayRulesMismatch", "BadReplay",
]

logger = logging.getLogger("arena.matches")


class ReplayRulesMismatch(ArenaError):
    """The replay was recorded with rules this server does not run."""

    status_code = 409
    code = "replay_rules_mismatch"


class BadReplay(ArenaError, ValueError):
    """Stored data that is not a replay this code can read: damaged, or written by
    a format this code does not know. The server's fault, not the client's, so a
    500, but with a code that says what it is."""

    status_code = 500
    code = "replay_unreadable"


# --- the stored form -------------------------------------------------------------

_INPUT_KEYS = ("tick", "side", "seq")  # an input's other fields are its action's


def encode(recording: Mapping[str, Any]) -> bytes:
    """The stored bytes of a recording (`Recorder.recording`, or `decode`'s output
    without ``match`` and ``players``)."""
    sides: list[str] = []
    actions: list[dict[str, Any]] = []
    action_index: dict[Any, int] = {}
    entries = [(e["tick"], e, False) for e in recording["inputs"]] + [(e["tick"], e, True) for e in recording["repeats"]]
    entries.sort(key=lambda entry: entry[0])  # stable: within a tick, inputs keep their order
    flat: list[int] = []
    tick = 0
    seqs: dict[str, int] = {}
    side_index: dict[str, int] = {}
    for entry_tick, entry, repeat in entries:
        side = entry["side"]
        if side not in side_index:
            side_index[side] = len(sides)
            sides.append(side)
        if repeat:
            action = -1
        else:
            fields = {k: v for k, v in entry.items() if k not in _INPUT_KEYS}
            try:
                key: Any = tuple(sorted(fields.items()))
                hash(key)
            except TypeError:  # a field that is a list or an object
                key = json.dumps(fields, sort_keys=True)
            action = action_index.get(key)
            if action is None:
                action = action_index[key] = len(actions)
                actions.append(fields)
        seq = entry["seq"]
        flat += (entry_tick - tick, side_index[side], seq - seqs.get(side, 0), action)
        tick = entry_tick
        seqs[side] = seq
    stored = {key: value for key, value in recording.items() if key not in ("inputs", "repeats", "match", "players")}
    stored.update(sides=sides, actions=actions, inputs=flat)
    return zlib.compress(json.dumps(stored, separators=(",", ":")).encode(), 6)


def decode(data: bytes) -> dict[str, Any]:
    """The recording `encode` stored (``inputs`` and ``repeats`` in tick order);
    BadReplay if `data` is not one."""
    try:
        stored = json.loads(zlib.decompress(bytes(data)))
        if stored.get("format") not in DIGESTS:
            raise BadReplay(f"replay format {stored.get('format')!r} is not one of {sorted(DIGESTS)}")
        sides, actions, flat = stored.pop("sides"), stored.pop("actions"), stored.pop("inputs")
        inputs: list[dict[str, Any]] = []
        repeats: list[dict[str, Any]] = []
        tick = 0
        seqs: dict[str, int] = {}
        for i in range(0, len(flat), 4):
            dtick, side_index, dseq, action = flat[i:i + 4]
            side = sides[side_index]
            tick += dtick
            seq = seqs[side] = seqs.get(side, 0) + dseq
            if action < 0:
                repeats.append({"tick": tick, "side": side, "seq": seq})
            else:
                inputs.append({"tick": tick, "side": side, **actions[action], "seq": seq})
    except (zlib.error, ValueError, KeyError, TypeError, IndexError) as error:
        if isinstance(error, BadReplay):
            raise
        raise BadReplay(f"unreadable replay: {error.__class__.__name__}: {error}") from None
    stored["inputs"], stored["repeats"] = inputs, repeats
    return stored


def replay_create(match_id: UUID | str, recording_data: bytes) -> MatchReplay:
    """Store an encoded replay (the services call it inside the result's transaction)."""
    return MatchReplay.objects.create(match_id=match_id, format=FORMAT, data=recording_data)


# --- reading -----------------------------------------------------------------------


def replay_get(match_id: UUID | str) -> dict[str, Any]:
    """The replay of an ended match, as ``GET /api/match/<id>/replay`` shows it.

    NotFound for an unknown or live match, or one without a replay (it was never
    played, or recording was off)."""
    from arena.matches import selectors

    match = selectors.match_get(match_id)
    if match.is_live:
        raise NotFound(f"Match {match.pk} is still {match.status}: its replay exists once it has ended.")
    row = MatchReplay.objects.filter(match_id=match.pk).values_list("data", flat=True).first()
    if row is None:
        raise NotFound(f"Match {match.pk} has no replay (it was not played, or not recorded).")
    replay = decode(row)
    return {
        "format": replay.pop("format"),
        "match": str(match.pk),
        **replay,
        "players": players(match),
    }


def players(match: Match) -> list[dict[str, str]]:
    return [{"side": p.side, "username": p.user.get_username()} for p in match.players.all()]


@dataclass(frozen=True)
class FramesBody:
    """The frames document as the API sends it: gzip-compressed JSON, and a tag
    naming exactly those bytes (the response's ETag)."""

    gzipped: bytes
    tag: str


def replay_frames_body(match_id: UUID | str) -> FramesBody:
    """What a viewer draws, compressed and ready to send: the replay re-run through
    this server's rules, every snapshot as it was broadcast
    (``GET /api/match/<id>/replay/frames``; the document is in docs/protocol.md).

    ReplayRulesMismatch if the replay was recorded with other rules. The whole
    body (a quarter of a second of CPU to re-simulate five minutes of play, a
    tenth of a second more to render and compress) is kept in Django's default
    cache for ``ARENA_REPLAY_FRAMES_CACHE`` seconds (`frames_cache_key`), so a
    link shared widely costs it once and each request then costs the replay's
    read. The replay is read every time: a deleted match answers 404 at once."""
    replay = replay_get(match_id)
    game = restore(replay)
    key = frames_cache_key(replay, game.rules())
    body = _frames_cache_get(key)
    if body is None:
        frames: list[dict[str, Any]] = []
        check = verify(replay, game=game, keep=frames)
        document = {
            "match": replay["match"],
            "tick_rate": replay["tick_rate"],
            "frame_every": replay["snapshot_every"],
            "field": game.describe(),
            "players": replay["players"],
            "frames": frames,
            "points": replay["points"],
            "pauses": replay["pauses"],
            "end": replay["end"],
            "verified": check.ok,
        }
        gzipped = gzip.compress(json.dumps(document, separators=(",", ":")).encode(), compresslevel=6, mtime=0)
        body = FramesBody(gzipped, _tag(gzipped))
        _frames_cache_set(key, body)
    return body


def frames_cache_key(replay: Mapping[str, Any], rules: Mapping[str, Any]) -> str:
    """The match, its recording (format and final digest), its players' names and
    the rules it is re-run with: a replay recorded again, a player renamed, or
    rules of another version, are another entry."""
    players = hashlib.blake2b(json.dumps(replay["players"], sort_keys=True).encode(), digest_size=8).hexdigest()
    return (f"arena:replay-frames-body:{replay['match']}:{replay['format']}:{replay['digest']['final'][:16]}:"
            f"{players}:{rules['name']}:{rules['version']}")


def _tag(gzipped: bytes) -> str:
    return hashlib.blake2b(gzipped, digest_size=16).hexdigest()


def _frames_cache_get(key: str) -> FramesBody | None:
    """The cached body, or None; an entry whose bytes do not match their tag, or a
    cache that fails, is a miss (the frames are computed again), never an error."""
    if settings.ARENA_REPLAY_FRAMES_CACHE <= 0:
        return None
    from django.core.cache import cache

    try:
        entry = cache.get(key)
        if entry is None:
            return None
        tag, gzipped = entry
        if not isinstance(gzipped, bytes) or _tag(gzipped) != tag:
            raise ValueError("damaged entry")
        return FramesBody(gzipped, tag)
    except Exception:  # an unreachable cache or a damaged entry
        logger.warning("replay frames cache unreadable for %s", key, exc_info=True)
        return None


def _frames_cache_set(key: str, body: FramesBody) -> None:
    if settings.ARENA_REPLAY_FRAMES_CACHE <= 0:
        return
    from django.core.cache import cache

    try:
        cache.set(key, (body.tag, body.gzipped), timeout=settings.ARENA_REPLAY_FRAMES_CACHE)
    except Exception:
        logger.warning("replay frames not cached for %s", key, exc_info=True)


# --- playing it again --------------------------------------------------------------


def restore(replay: Mapping[str, Any], rules_path: str | None = None) -> Game:
    """A new game as the replay's match started, from the rules this server runs
    (`GAME_RULES`, or `rules_path`); ReplayRulesMismatch if they are not the
    recorded ones (another game, or another version)."""
    path = rules_path or settings.GAME_RULES
    recorded = replay["rules"]
    current = load_rules(path)(seed=0, points_to_win=1).rules()
    if (recorded.get("name"), recorded.get("version")) != (current["name"], current["version"]):
        ours = f"v{current['version']}" if recorded.get("name") == current["name"] else f"{current['name']} rules v{current['version']}"
        raise ReplayRulesMismatch(
            f"recorded with {recorded.get('name')} rules v{recorded.get('version')}; this server runs {ours}"
        )
    try:
        return load_restorer(path)(seed=replay["seed"], config=recorded["config"])
    except (TypeError, ValueError, KeyError) as error:
        raise BadReplay(f"the recorded rules config cannot be played: {error}") from None


def snapshot_ticks(runs: list[list[int]]) -> Iterator[int]:
    """The ticks of the recorded snapshots, from their run-length code."""
    tick = 0
    for delta, count in runs:
        for _ in range(count):
            tick += delta
            yield tick


def resimulate(replay: Mapping[str, Any], game: Game) -> Iterator[dict[str, Any]]:
    """Play `replay` on `game` (fresh, from `restore`): every snapshot the room
    broadcast, in order. The game is left in the match's final state."""
    dt = 1.0 / replay["tick_rate"]
    acks = {side: 0 for side in game.sides}
    by_tick: dict[int, list[tuple[str, int, Any]]] = {}
    for entry in replay["inputs"]:
        fields = {k: v for k, v in entry.items() if k not in _INPUT_KEYS}
        action = game.parse_input(fields)
        if action is None:
            raise BadReplay(f"input {entry} is not an action of {replay['rules']['name']}")
        by_tick.setdefault(entry["tick"], []).append((entry["side"], entry["seq"], action))
    for entry in replay["repeats"]:
        by_tick.setdefault(entry["tick"], []).append((entry["side"], entry["seq"], None))
    end_tick = replay["end"]["tick"] if replay.get("end") else None
    ticks = snapshot_ticks(replay["digest"]["ticks"])
    next_snapshot = next(ticks, None)
    if end_tick is None:
        end_tick = 0 if next_snapshot is None else max(snapshot_ticks(replay["digest"]["ticks"]))
    while True:
        tick = game.tick
        while next_snapshot == tick:
            yield game.snapshot(acks)
            next_snapshot = next(ticks, None)
        if tick >= end_tick:
            return
        for side, seq, action in by_tick.get(tick, ()):
            if action is not None:
                game.apply_input(side, action)
            acks[side] = seq
        game.step(dt)
        if game.tick == tick:  # the game stopped (over sooner than recorded): a replay that differs
            return


@dataclass
class Verification:
    """What `verify` found: ``ok`` when every snapshot, the final score and the end agree."""

    ok: bool = True
    snapshots: int = 0
    problems: list[str] = field(default_factory=list)
    score: dict[str, int] | None = None
    winner: str | None = None
    digest: str = ""

    def fail(self, problem: str) -> None:
        self.ok = False
        self.problems.append(problem)


def verify(replay: Mapping[str, Any], game: Game | None = None, keep: list | None = None) -> Verification:
    """Re-run `replay` and compare with what was recorded live: each digest
    checkpoint, the final digest and snapshot count, the final score and winner.
    Snapshots are appended to `keep` when given."""
    game = game or restore(replay)
    recorded = replay["digest"]
    result = Verification()
    digest = DIGESTS[replay.get("format", FORMAT)](every=recorded["every"])
    checkpoints = recorded["checkpoints"]
    every = recorded["every"]
    for payload in resimulate(replay, game):
        digest.add(snapshot_packet(payload))
        result.snapshots += 1
        if keep is not None:
            keep.append(payload)
    result.digest = digest.hexdigest()
    for index, (replayed, live) in enumerate(zip(digest.checkpoints, checkpoints)):
        if replayed != live:
            result.fail(f"snapshots {index * every + 1}-{(index + 1) * every} differ from the recording")
            break
    if result.snapshots != recorded["snapshots"]:
        result.fail(f"{result.snapshots} snapshots replayed, {recorded['snapshots']} recorded")
    if result.digest != recorded["final"]:
        result.fail("the final snapshot digest differs from the recording")
    result.score, result.winner = dict(game.score()), game.winner()
    end = replay.get("end") or {}
    if end and result.score != end.get("score"):
        result.fail(f"final score {result.score}, recorded {end.get('score')}")
    if end.get("reason") == "points" and result.winner != end.get("winner"):
        result.fail(f"winner {result.winner}, recorded {end.get('winner')}")
    return result
