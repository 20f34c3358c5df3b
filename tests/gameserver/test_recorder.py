"""The replay recorder and its stored form, on matches simulated through the pure rules.

The room's own recordings are checked bit for bit against real game servers in
the integration suite (`tests.conftest.assert_replay_reproduces`); here: the
encoder (round trip, repeats, size), and that a replay that differs is caught.
"""
from __future__ import annotations

import copy

import pytest

from arena.gameserver.recorder import CHECKPOINT_EVERY, Recorder
from arena.matches import replays
from arena.pong import RULES_VERSION
from bench.replay import simulate  # a match played as the room plays it, through the pure rules
from tests.games import presses

TICK_RATE = 60


def test_a_recording_round_trips_through_its_stored_form_and_replays():
    recording = simulate(seconds=60, repeat=0.05, late_every=7, pause_at=500).recording()
    stored = replays.encode(recording)
    assert replays.decode(stored) == recording
    assert recording["rules"] == {"name": "pong", "version": RULES_VERSION, "config": recording["rules"]["config"]}
    assert recording["rules"]["config"]["points_to_win"] == 5
    assert [p["tick"] for p in recording["pauses"]] == [p["resumed_tick"] for p in recording["pauses"]]
    assert recording["digest"]["snapshots"] > CHECKPOINT_EVERY and recording["digest"]["checkpoints"]
    assert len(recording["digest"]["ticks"]) > 3, "late wake-ups break the snapshot runs"
    check = replays.verify(replays.decode(stored))
    assert check.ok, check.problems
    assert check.snapshots == recording["digest"]["snapshots"]
    assert check.score == recording["end"]["score"]


def test_repeated_moves_are_left_out_of_the_inputs_but_keep_their_acks():
    recorder = simulate(seconds=30, change=0.05, repeat=0.2)
    recording = recorder.recording()
    assert recording["repeats"], "the simulation repeats moves"
    assert len(recording["inputs"]) + len(recording["repeats"]) == len(recorder.inputs)
    for side in ("left", "right"):
        moves = [i["move"] for i in recording["inputs"] if i["side"] == side]
        assert all(a != b for a, b in zip(moves, moves[1:])), "a kept input repeats the previous move"
    # the repeats still count: their seq is in the snapshots' acks
    check = replays.verify(recording)
    assert check.ok, check.problems
    without = copy.deepcopy(recording)
    without["repeats"] = []
    assert not replays.verify(without).ok


def test_a_game_whose_repeats_count_keeps_every_input():
    recorder = Recorder(presses.create(seed=1, points_to_win=3), seed=1, tick_rate=TICK_RATE, snapshot_every=2)
    for tick, seq in ((5, 1), (9, 2)):
        recorder.input(tick, "left", seq, 1)
    recording = recorder.recording()
    assert [(i["tick"], i["move"]) for i in recording["inputs"]] == [(5, 1), (9, 1)] and not recording["repeats"]


def test_a_five_minute_match_fits_the_budget():
    """A bot changing its move about six times a second on each side, for five minutes."""
    recorder = simulate(seconds=300, points_to_win=1000, change=0.1, repeat=0.02)
    stored = replays.encode(recorder.recording())
    assert recorder.recording()["end"]["tick"] == 300 * TICK_RATE
    assert len(recorder.inputs) > 3000
    assert len(stored) <= 64 * 1024, len(stored)


def test_a_replay_that_differs_is_caught():
    recording = simulate(seconds=40, seed=3).recording()
    assert replays.verify(recording).ok
    moved = copy.deepcopy(recording)
    first = moved["inputs"][len(moved["inputs"]) // 2]
    first["move"] = [m for m in (-1, 0, 1) if m != first["move"]][0]
    check = replays.verify(moved)
    assert not check.ok and any("differ" in problem for problem in check.problems)
    reseeded = copy.deepcopy(recording)
    reseeded["seed"] += 1
    assert not replays.verify(reseeded).ok
    tampered = copy.deepcopy(recording)
    tampered["digest"]["checkpoints"][0] = "0" * 64
    assert not replays.verify(tampered).ok


def test_other_rules_are_refused_never_played_wrongly():
    recording = simulate(seconds=5).recording()
    newer = copy.deepcopy(recording)
    newer["rules"]["version"] = RULES_VERSION + 1
    with pytest.raises(replays.ReplayRulesMismatch) as refused:
        replays.restore(newer)
    assert str(refused.value) == f"recorded with pong rules v{RULES_VERSION + 1}; this server runs v{RULES_VERSION}"
    with pytest.raises(replays.ReplayRulesMismatch):
        replays.restore(recording, rules_path="tests.games.presses")


def test_unreadable_data_is_a_bad_replay():
    with pytest.raises(replays.BadReplay):
        replays.decode(b"not zlib")


def test_the_snapshot_digest_does_not_depend_on_how_the_packets_are_batched():
    import hashlib

    from arena.gameserver.recorder import HASH_BATCH, SnapshotDigest

    packets = [f'2["state",{{"tick":{i}}}]' for i in range(3 * CHECKPOINT_EVERY + HASH_BATCH // 2)]
    digest = SnapshotDigest()
    one_by_one = hashlib.sha256()
    expected_checkpoints = []
    for count, packet in enumerate(packets, 1):
        digest.add(packet)
        one_by_one.update(packet.encode() + b"\n")
        if not count % CHECKPOINT_EVERY:
            expected_checkpoints.append(one_by_one.hexdigest())
    assert digest.checkpoints == expected_checkpoints and len(expected_checkpoints) == 3
    assert digest.hexdigest() == one_by_one.hexdigest() and digest.count == len(packets)
    # a checkpoint interval that batches do not divide still reads at the right snapshot
    odd = SnapshotDigest(every=HASH_BATCH + 3)
    for packet in packets[:HASH_BATCH + 3]:
        odd.add(packet)
    assert odd.checkpoints == [hashlib.sha256("".join(p + "\n" for p in packets[:HASH_BATCH + 3]).encode()).hexdigest()]


def test_a_replay_recorded_in_format_1_still_verifies():
    """Format 1 chained one hash per snapshot; its replays stay checkable."""
    from arena.gameserver.recorder import ChainDigest

    recording = simulate(seconds=20, seed=5).recording()
    frames: list = []
    assert replays.verify(recording, keep=frames).ok
    chain = ChainDigest()
    for payload in frames:
        chain.add(replays.snapshot_packet(payload))
    old = copy.deepcopy(recording)
    old["format"] = 1
    old["digest"].update(final=chain.hexdigest(), checkpoints=list(chain.checkpoints))
    assert replays.decode(replays.encode(old))["format"] == 1
    assert replays.verify(replays.decode(replays.encode(old))).ok
    assert not replays.verify(recording | {"format": 1}).ok, "a format-2 digest is not a format-1 one"
