"""Replays in the database and over HTTP: written with the result (directly or from
the spool, once), read back by whoever may read the match, refused when the rules
changed. Recordings come from the pure rules here (`tests/gameserver/test_recorder.py`);
the suite's real matches are replayed in tests/integration (assert_replay_reproduces)."""
from __future__ import annotations

import base64
import gzip
import json
import uuid

import pytest

from arena.matches import events, replays, selectors, services
from arena.matches.models import Match, MatchPlayer, MatchReplay
from arena.matches.spool import spool_import, spool_write
from arena.matches.states import MatchStatus
from arena.pong import RULES_VERSION
from tests.conftest import client_for
from bench.replay import simulate
from tests.integration.test_match_api import assert_error

pytestmark = pytest.mark.django_db(transaction=True)


def playing_match(users, players: tuple[str, str] = ("alice", "bob")) -> Match:
    match = Match.objects.create(status=MatchStatus.PLAYING, points_to_win=2, created_by=users["ops"])
    for seat, name in enumerate(players):
        MatchPlayer.objects.create(match=match, user=users[name], side=("left", "right")[seat], seat=seat)
    return match


def recorded(points_to_win: int = 2, seed: int = 11) -> tuple[dict, bytes]:
    recording = simulate(seconds=120, seed=seed, points_to_win=points_to_win, repeat=0.05).recording()
    return recording, replays.encode(recording)


def finished_match(users) -> tuple[Match, dict]:
    match = playing_match(users)
    recording, blob = recorded()
    end = recording["end"]
    assert services.match_finish(match.pk, score=end["score"], winner_side=end["winner"], replay=blob)
    return match, recording


def test_a_finished_match_serves_its_replay_and_its_frames(users):
    match, recording = finished_match(users)
    carol = client_for(users["carol"])  # not a player: may read the match, so its replay too

    # the match says it has a replay: alone, in the lobby's list, and in the
    # match.finished webhook event (built with the replay written)
    assert carol.get(f"/api/match/{match.pk}").json()["recorded"] is True
    assert events.event_payload(events.FINISHED, selectors.match_get(match.pk))["match"]["recorded"] is True
    assert [m["recorded"] for m in carol.get("/api/lobby").json()["recent"] if m["id"] == str(match.pk)] == [True]

    response = carol.get(f"/api/match/{match.pk}/replay")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["format"] == replays.FORMAT and body["match"] == str(match.pk)
    assert body["rules"] == {"name": "pong", "version": RULES_VERSION, "config": recording["rules"]["config"]}
    assert body["seed"] == 11 and body["tick_rate"] == 60 and body["snapshot_every"] == 2
    assert body["players"] == [{"side": "left", "username": "alice"}, {"side": "right", "username": "bob"}]
    assert body["inputs"] == recording["inputs"] and body["repeats"] == recording["repeats"]
    assert set(body["inputs"][0]) == {"tick", "side", "move", "seq"}
    assert [i["tick"] for i in body["inputs"]] == sorted(i["tick"] for i in body["inputs"])
    assert body["points"] and body["points"][-1]["score"] == body["end"]["score"]
    assert body["end"] == {**recording["end"], "status": "finished", "reason": "points"}
    assert set(body["digest"]) >= {"every", "checkpoints", "final", "snapshots"}

    frames = carol.get(f"/api/match/{match.pk}/replay/frames")
    assert frames.status_code == 200, frames.content
    shown = frames.json()
    assert shown["match"] == str(match.pk) and shown["tick_rate"] == 60 and shown["frame_every"] == 2
    assert shown["field"]["width"] == 1000 and shown["players"] == body["players"]
    assert len(shown["frames"]) == body["digest"]["snapshots"] and shown["verified"] is True
    assert set(shown["frames"][0]) == {"tick", "ball", "paddles", "score", "acks"}
    assert shown["frames"][-1]["score"] == body["end"]["score"] and shown["frames"][-1]["tick"] == body["end"]["tick"]
    assert shown["points"] == body["points"] and shown["pauses"] == body["pauses"] and shown["end"] == body["end"]
    # compressed for a client that accepts it, the same JSON inside
    packed = carol.get(f"/api/match/{match.pk}/replay/frames", HTTP_ACCEPT_ENCODING="gzip")
    assert packed["Content-Encoding"] == "gzip" and len(packed.content) < len(frames.content) / 3
    assert json.loads(gzip.decompress(packed.content)) == shown


def test_no_replay_for_live_unknown_or_unplayed_matches(users):
    api = client_for(users["carol"])
    live = playing_match(users)
    for path in ("replay", "replay/frames"):
        assert "still playing" in assert_error(api.get(f"/api/match/{live.pk}/{path}"), 404, "not_found")["detail"]
        assert_error(api.get(f"/api/match/{uuid.uuid4()}/{path}"), 404, "not_found")
        assert_error(api.get(f"/api/match/nope/{path}"), 404, "not_found")
        assert_error(client_for(None).get(f"/api/match/{live.pk}/{path}"), 401, "not_authenticated")
    assert api.get(f"/api/match/{live.pk}").json()["recorded"] is False
    # cancelled before play (a no-show): nothing to replay
    assert services.match_cancel(live.pk, reason="no_show: bob")
    assert "no replay" in assert_error(api.get(f"/api/match/{live.pk}/replay"), 404, "not_found")["detail"]
    assert api.get(f"/api/match/{live.pk}").json()["recorded"] is False
    # played to its end with recording off: finished, and says it has no replay
    unrecorded = playing_match(users, players=("carol", "dave"))
    assert services.match_finish(unrecorded.pk, score={"left": 2, "right": 0}, winner_side="left")
    shown = api.get(f"/api/match/{unrecorded.pk}").json()
    assert shown["status"] == "finished" and shown["recorded"] is False
    assert [m["recorded"] for m in api.get("/api/lobby").json()["recent"] if m["id"] == str(unrecorded.pk)] == [False]
    assert_error(api.get(f"/api/match/{unrecorded.pk}/replay"), 404, "not_found")


def test_other_rules_give_409_and_the_raw_replay_stays_downloadable(users):
    match, recording = finished_match(users)
    row = MatchReplay.objects.get(match=match)
    newer = replays.decode(row.data)
    newer["rules"]["version"] = RULES_VERSION + 1
    row.data = replays.encode(newer)
    row.save()
    api = client_for(users["alice"])
    body = assert_error(api.get(f"/api/match/{match.pk}/replay/frames"), 409, "replay_rules_mismatch")
    assert body["detail"] == f"recorded with pong rules v{RULES_VERSION + 1}; this server runs v{RULES_VERSION}"
    raw = api.get(f"/api/match/{match.pk}/replay")
    assert raw.status_code == 200 and raw.json()["rules"]["version"] == RULES_VERSION + 1


def test_a_damaged_replay_is_a_500_that_says_so(users):
    match, _ = finished_match(users)
    MatchReplay.objects.filter(match=match).update(data=b"not a replay")
    api = client_for(users["alice"])
    for path in ("replay", "replay/frames"):
        assert "unreadable replay" in assert_error(api.get(f"/api/match/{match.pk}/{path}"), 500, "replay_unreadable")["detail"]


def test_the_replay_is_written_with_the_result_once_and_never_for_a_refused_one(users):
    match, recording = finished_match(users)
    _, other = recorded(seed=12)
    end = recording["end"]
    # a second result (a retry, a race) is refused, and its replay with it
    assert not services.match_finish(match.pk, score=end["score"], winner_side=end["winner"], replay=other)
    assert not services.match_cancel(match.pk, reason="shutdown", replay=other)
    assert replays.decode(MatchReplay.objects.get(match=match).data) == recording
    # a match cancelled after play (a tie at the time limit, abandoned) keeps its replay
    tied = playing_match(users)
    assert services.match_cancel(tied.pk, reason="time_limit", replay=other)
    assert MatchReplay.objects.filter(match=tied).count() == 1


def test_a_spooled_result_brings_its_replay_exactly_once(users, settings, tmp_path):
    settings.GAME_SPOOL_DIR = str(tmp_path)
    match = playing_match(users)
    recording, blob = recorded()
    end = recording["end"]
    fields = dict(score=end["score"], winner_side=end["winner"], reason="points",
                  finished_at="2026-01-01T00:00:00+00:00", replay=base64.b64encode(blob).decode())
    path = spool_write(str(match.pk), "finish", **fields)
    record = json.loads(path.read_text())
    assert spool_import() == [str(match.pk)]
    match.refresh_from_db()
    assert match.status == MatchStatus.FINISHED
    assert replays.decode(MatchReplay.objects.get(match=match).data) == recording
    path.write_text(json.dumps(record))  # imported again: nothing changes
    assert spool_import() == [str(match.pk)]
    assert MatchReplay.objects.filter(match=match).count() == 1
    # the result of a match that ended meanwhile is refused, and writes no replay
    other = playing_match(users)
    assert services.match_cancel(other.pk, reason="cancelled by ops")
    spool_write(str(other.pk), "cancel", reason="abandoned", score=None,
                finished_at="2026-01-01T00:00:00+00:00", replay=base64.b64encode(blob).decode())
    spool_import()
    assert not MatchReplay.objects.filter(match=other).exists()


def test_replay_check_says_match_or_mismatch(users):
    from django.core.management import call_command
    from django.core.management.base import CommandError
    from io import StringIO

    match, _ = finished_match(users)
    out = StringIO()
    call_command("replay_check", str(match.pk), stdout=out)
    assert f"{match.pk}: match: " in out.getvalue()
    row = MatchReplay.objects.get(match=match)
    changed = replays.decode(row.data)
    changed["seed"] += 1
    row.data = replays.encode(changed)
    row.save()
    out = StringIO()
    with pytest.raises(CommandError, match="1 of 1 replay"):
        call_command("replay_check", str(match.pk), stdout=out)
    assert "MISMATCH" in out.getvalue()
    with pytest.raises(CommandError, match="no replay|No match"):
        call_command("replay_check", str(uuid.uuid4()))


def test_the_frames_are_simulated_once_then_served_from_the_cache(users, settings):
    from django.core.cache import cache

    pong = {"name": "pong", "version": RULES_VERSION}
    match, recording = finished_match(users)
    api = client_for(users["carol"])
    url = f"/api/match/{match.pk}/replay/frames"
    first = api.get(url).json()
    key = replays.frames_cache_key(replays.replay_get(match.pk), pong)
    assert cache.get(key) is not None, "the frames were cached"
    # what the cache holds is what the next requests serve (no re-simulation), as
    # it is for gzip and decompressed for the others
    marker = {**first, "frames": [{"tick": -1}]}
    packed = gzip.compress(json.dumps(marker).encode())
    replays._frames_cache_set(key, replays.FramesBody(packed, replays._tag(packed)))
    assert api.get(url).json()["frames"] == [{"tick": -1}]
    zipped = api.get(url, HTTP_ACCEPT_ENCODING="gzip, deflate")
    assert zipped["Content-Encoding"] == "gzip" and zipped.content == packed
    # a damaged entry (bytes that do not match their tag) is a miss: simulated again
    cache.set(key, (replays._tag(packed), packed[:-9] + b"x" * 9))
    assert api.get(url).json() == first
    cache.set(key, b"garbage")
    assert api.get(url).json() == first
    # the replay itself is read every time: a deleted match is a 404 at once
    replays._frames_cache_set(key, replays.FramesBody(packed, replays._tag(packed)))
    Match.objects.filter(pk=match.pk).delete()
    assert_error(api.get(url), 404, "not_found")

    settings.ARENA_REPLAY_FRAMES_CACHE = 0  # off: simulated on every request, nothing stored
    other, _ = finished_match(users)
    assert api.get(f"/api/match/{other.pk}/replay/frames").status_code == 200
    assert cache.get(replays.frames_cache_key(replays.replay_get(other.pk), pong)) is None


def test_a_viewer_that_has_the_frames_gets_a_304(users):
    match, _ = finished_match(users)
    api = client_for(users["carol"])
    url = f"/api/match/{match.pk}/replay/frames"
    first = api.get(url)
    etag = first["ETag"]
    assert etag.startswith('W/"') and "Accept-Encoding" in first["Vary"]
    # the same document in either encoding: the same (weak) tag
    assert api.get(url, HTTP_ACCEPT_ENCODING="gzip")["ETag"] == etag
    again = api.get(url, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again.content == b""
    assert api.get(url, HTTP_IF_NONE_MATCH='W/"something-else"').status_code == 200
    # only a reader of the match: not signed in is still a 401, whatever its tag
    assert_error(client_for(None).get(url, HTTP_IF_NONE_MATCH=etag), 401, "not_authenticated")
