"""Metrics and logs of a real match: /metrics of the web side and of the host
exporter move as the match goes, failures are counted by reason, access is
loopback or token only, and every match ends with one JSON line in its log."""
from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from arena.matches.supervisor import supervise_once
from arena.metrics import exporter, multiprocess
from tests.conftest import db_call, game_server_done, pid_alive, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

LOOPBACK = "127.0.0.1"


def parse(text: str) -> dict[str, float]:
    """Samples by `name{label="value",...}` (labels sorted)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


def scrape(**extra) -> dict[str, float]:
    response = Client().get("/metrics", REMOTE_ADDR=LOOPBACK, **extra)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return parse(response.content.decode())


def moved(before: dict[str, float], after: dict[str, float], name: str) -> float:
    return after.get(name, 0.0) - before.get(name, 0.0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_played_match_moves_the_figures_of_web_and_host(ops_api, users, hosting_mode):
    server = exporter.serve(LOOPBACK, 0)  # what `manage.py gamehost` serves
    assert server is not None
    host_url = f"http://{LOOPBACK}:{server.server_address[1]}/metrics"
    try:
        before = scrape()
        created = launch(ops_api, points_to_win=1)
        match_id, port = created["id"], created["port"]
        launched = scrape()
        strategy = settings.GAME_SERVER_LAUNCHER
        assert moved(before, launched, f'arena_launches_total{{outcome="ok",strategy="{strategy}"}}') == 1
        assert moved(before, launched, f'arena_launch_seconds_count{{strategy="{strategy}"}}') == 1
        assert launched['arena_matches_live{status="waiting"}'] >= 1
        tokens = [game_token(users[name], match_id) for name in ("alice", "bob")]

        async def scenario() -> dict[str, float]:
            alice, bob = GameClient(HOST, port, tokens[0]), GameClient(HOST, port, tokens[1])
            carol = GameClient(HOST, port)  # a spectator
            for client in (carol, alice, bob):
                await client.connect()
            await carol.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=10)
            await alice.send_input(1)
            # the game server's figures reach the machine's /metrics within its flush interval
            during = {}
            for _ in range(40):
                during = await db_call(scrape)
                if during.get("arena_gameserver_spectators", 0) >= 1 and moved(before, during, "arena_gameserver_ticks_total") > 0:
                    break
                await asyncio.sleep(0.1)
            await alice.send_input(0)
            await carol.wait_for(wire.GAME_OVER, timeout=20)
            for client in (alice, bob, carol):
                await client.close()
            return during

        during = run(scenario())
        assert during.get("arena_gameserver_spectators", 0) >= 1, during
        assert during.get("arena_gameserver_players", 0) >= 2
        assert during.get('arena_matches_live{status="playing"}', 0) >= 1
        assert moved(before, during, "arena_gameserver_ticks_total") > 0

        match = Match.objects.get(pk=match_id)
        assert match.status == MatchStatus.FINISHED
        assert wait_until(lambda: game_server_done(match.pid, port), timeout=10)

        def settled() -> dict[str, float]:  # a shared process flushes when a match leaves it
            figures = scrape()
            done = figures.get("arena_gameserver_spectators", 0) == 0 and moved(
                before, figures, "arena_gameserver_ticks_total") >= 100
            return figures if done else {}

        assert wait_until(lambda: bool(settled()), timeout=5)
        after = scrape()
        # what the exited process counted still counts; its gauges are gone
        assert moved(before, after, "arena_gameserver_ticks_total") >= 100  # ~2.5 s at 60 Hz
        assert moved(before, after, "arena_gameserver_tick_seconds_count") > 0
        assert moved(before, after, "arena_gameserver_broadcast_seconds_count") > 0
        assert moved(before, after, "arena_gameserver_sent_bytes_total") > 10_000
        assert moved(before, after, "arena_gameserver_inputs_total") >= 2
        assert moved(before, after, 'arena_gameserver_matches_ended_total{status="finished"}') == 1
        assert after.get("arena_gameserver_spectators", 0) == 0
        assert after.get('arena_matches_live{status="playing"}', 0) == 0
        if settings.GAME_MATCHES_PER_PROCESS == 1:
            assert not list(multiprocess.directory().glob(f"*_{match.pid}.db")), "files of an exited process are folded"

        # the host's exporter sums the same files (no database figures there)
        with urllib.request.urlopen(host_url, timeout=5) as response:
            host = parse(response.read().decode())
        assert host["arena_gameserver_ticks_total"] >= after["arena_gameserver_ticks_total"]
        assert not any(name.startswith("arena_matches_live") for name in host)
    finally:
        server.shutdown()
        server.server_close()

    # one JSON line at the end of the match, in its log; every line names the match
    log = (settings.GAME_SERVER_LOG_DIR / f"{match_id}.log").read_text().splitlines()
    ours = [line for line in log if line.startswith(f"match={match_id} ")]
    assert ours and all(line.startswith(f"match={match_id} ") for line in log if " arena." in line)
    summaries = [json.loads(line[line.index("{"):]) for line in ours if '"event": "match_end"' in line]
    assert len(summaries) == 1
    summary = summaries[0]
    assert summary["match"] == match_id and summary["status"] == "finished" and summary["reason"] == "points"
    assert sorted(summary["score"].values()) == [0, 1]
    assert summary["max_players"] == 2 and summary["max_spectators"] == 1
    assert summary["ticks"] >= 100 and summary["bytes_sent"] > 10_000 and summary["inputs"] >= 2
    assert summary["duration_seconds"] >= summary["play_seconds"] > 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_failures_are_counted_by_reason(ops_api, users, game_settings):
    game_settings(GAME_HEARTBEAT_INTERVAL="0.3", GAME_HEARTBEAT_TIMEOUT="1.0")
    before = scrape()
    # a launch that finds no free port
    with socket.socket() as blocker:
        blocker.bind((LOOPBACK, 0))
        blocker.listen()
        busy = blocker.getsockname()[1]
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(settings, "GAME_SERVER_MIN_PORT", busy)
            patch.setattr(settings, "GAME_SERVER_MAX_PORT", busy)
            patch.setenv("GAME_SERVER_MIN_PORT", str(busy))
            patch.setenv("GAME_SERVER_MAX_PORT", str(busy))
            response = ops_api.put("/api/match", {"players": ["carol", "dave"]}, format="json")
    assert response.status_code == 503 and response.json()["error"] == "no_free_port"
    # a game server killed, failed by the supervisor
    created = launch(ops_api)
    match = Match.objects.get(pk=created["id"])
    os.killpg(match.pid, signal.SIGKILL) if settings.GAME_MATCHES_PER_PROCESS == 1 else os.kill(match.pid, signal.SIGKILL)
    assert wait_until(lambda: bool(supervise_once()) or Match.objects.get(pk=match.pk).status == "failed", timeout=8)
    after = scrape()
    strategy = settings.GAME_SERVER_LAUNCHER
    assert moved(before, after, f'arena_launches_total{{outcome="no_free_port",strategy="{strategy}"}}') == 1
    assert moved(before, after, 'arena_matches_failed_total{reason="no_free_port"}') == 1
    assert moved(before, after, 'arena_matches_failed_total{reason="server_lost"}') == 1
    assert not pid_alive(match.pid)


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_records_spectators_for_the_matches_table(ops_api, users, game_settings):
    """The game server alone knows its spectators: its heartbeat writes the count,
    and `manage.py matches` shows it."""
    game_settings(GAME_HEARTBEAT_INTERVAL="0.3")
    created = launch(ops_api)
    match_id, port = created["id"], created["port"]

    def listed() -> str:
        out = io.StringIO()
        call_command("matches", stdout=out)
        line = next(line for line in out.getvalue().splitlines() if line.startswith(match_id))
        return line.split()[-1]

    async def watch(count: int) -> list[str]:
        spectators = [GameClient(HOST, port) for _ in range(count)]
        for client in spectators:
            assert (await client.connect())["role"] == "spectator"
        seen = [await db_call(lambda: wait_until(lambda: listed() == str(count), timeout=5) and listed())]
        for client in spectators:
            await client.close()
        seen.append(await db_call(lambda: wait_until(lambda: listed() == "0", timeout=5) and listed()))
        return seen

    try:
        assert run(watch(2)) == ["2", "0"]
    finally:
        ops_api.delete(f"/api/match/{match_id}")


def test_metrics_are_for_loopback_or_a_token(db, settings):
    assert Client().get("/metrics", REMOTE_ADDR="::1").status_code == 200
    refused = Client().get("/metrics", REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 403 and refused.json()["error"] == "forbidden"
    # behind an undeclared proxy on this machine, the forwarded address decides
    assert Client().get("/metrics", REMOTE_ADDR=LOOPBACK, HTTP_X_FORWARDED_FOR="203.0.113.7").status_code == 403
    # a declared proxy: the client's address is the header's
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_REAL_IP"
    assert Client().get("/metrics", REMOTE_ADDR=LOOPBACK, HTTP_X_REAL_IP="203.0.113.7").status_code == 403
    assert Client().get("/metrics", REMOTE_ADDR=LOOPBACK, HTTP_X_REAL_IP=LOOPBACK).status_code == 200
    # other networks, or a bearer token
    settings.ARENA_METRICS_ALLOWED = ["203.0.113.0/24"]
    assert Client().get("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 200
    assert Client().get("/metrics", REMOTE_ADDR=LOOPBACK).status_code == 403
    settings.ARENA_METRICS_TOKEN = "s3cret-token"
    assert Client().get("/metrics", REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    wrong = Client().get("/metrics", REMOTE_ADDR="198.51.100.1", HTTP_AUTHORIZATION="Bearer nope")
    assert wrong.status_code == 403
    assert Client().post("/metrics", REMOTE_ADDR="203.0.113.7").status_code == 405
    # the host exporter applies the same rules to its peer
    server = exporter.serve(LOOPBACK, 0)
    url = f"http://{LOOPBACK}:{server.server_address[1]}/metrics"
    try:
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(url, timeout=5)
        assert error.value.code == 403 and json.loads(error.value.read())["error"] == "forbidden"
        request = urllib.request.Request(url, headers={"Authorization": "Bearer s3cret-token"})
        with urllib.request.urlopen(request, timeout=5) as response:
            # what is in it depends on what ran before; that it is the exposition is not
            assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
            parse(response.read().decode())
    finally:
        server.shutdown()
        server.server_close()
    # metrics off: nothing served
    settings.ARENA_METRICS = False
    off = Client().get("/metrics", REMOTE_ADDR=LOOPBACK)
    assert off.status_code == 404 and off.json()["error"] == "not_found"


def test_matches_command_lists_live_matches(users):
    out = io.StringIO()
    call_command("matches", stdout=out)
    assert out.getvalue().strip() == "No live matches."
    match = Match.objects.create(status=MatchStatus.PLAYING, host="203.0.113.9", port=25001, pid=1)
    for seat, (name, side, score) in enumerate((("alice", "left", 2), ("bob", "right", 1))):
        MatchPlayer.objects.create(match=match, user=users[name], side=side, seat=seat, score=score)
    Match.objects.create(status=MatchStatus.FINISHED)  # not live: not listed
    out = io.StringIO()
    call_command("matches", stdout=out)
    header, *rows = out.getvalue().strip().splitlines()
    assert header.split() == ["ID", "PLAYERS", "STATUS", "SCORE", "HOST", "PORT", "AGE", "SPECTATORS"]
    assert len(rows) == 1
    cells = rows[0].split()
    assert cells[:6] == [str(match.id), "alice,bob", "playing", "2-1", "203.0.113.9", "25001"]
    assert cells[6].endswith("s") and cells[7] == "0"
    # columns line up under their headers
    assert rows[0].index("playing") == header.index("STATUS")


def test_files_of_exited_processes_keep_counting_and_a_reboot_retires_the_rest(tmp_path):
    """A process counts and exits: its figures move to the archive, once; after a
    reboot even a file whose pid is alive again belongs to a process that is gone."""
    import subprocess
    import sys

    from prometheus_client.mmap_dict import MmapedDict
    from prometheus_client.multiprocess import MultiProcessCollector

    script = ("from prometheus_client import Counter, Gauge; Counter('t', 'h').inc(3); "
              "Gauge('g', 'h', multiprocess_mode='livesum').set(7)")
    for _ in range(2):
        subprocess.run([sys.executable, "-c", script], env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
                       check=True)
    multiprocess.fold_dead(tmp_path)
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_archive.db"]
    totals = {s.name: s.value for m in MultiProcessCollector.merge([str(tmp_path / "counter_archive.db")]) for s in m.samples}
    assert totals == {"t_total": 6.0}
    multiprocess.fold_dead(tmp_path)  # folding again adds nothing
    values = {k: v for k, v, _, _ in MmapedDict.read_all_values_from_file(str(tmp_path / "counter_archive.db"))}
    assert list(values.values()) == [6.0]
    # a live pid's file stays, unless the directory was written in another boot
    mine = MmapedDict(str(tmp_path / f"counter_{os.getpid()}.db"))
    mine.write_value(next(iter(values)), 1.0, 0.0)
    mine.close()
    multiprocess.fold_dead(tmp_path)
    assert (tmp_path / f"counter_{os.getpid()}.db").exists()
    (tmp_path / multiprocess.BOOT_FILE).write_text("another boot\n")
    multiprocess.fold_dead(tmp_path)
    assert not (tmp_path / f"counter_{os.getpid()}.db").exists()
    values = {k: v for k, v, _, _ in MmapedDict.read_all_values_from_file(str(tmp_path / "counter_archive.db"))}
    assert list(values.values()) == [7.0]
