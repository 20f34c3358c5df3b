"""Launches that go wrong: each answers 503, stores the match as failed, and
leaves no process behind."""
from __future__ import annotations

import socket
import sys
import threading
import time
import uuid

import psutil
import pytest
from django.db import connection

from arena.matches.launcher import process
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import pid_alive

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture(autouse=True)
def _plain_subprocess_launcher(game_settings):
    """These faults are produced with the plain subprocess launcher (the warm
    launcher's own failure tests are in test_warm_launcher.py)."""
    game_settings(GAME_SERVER_LAUNCHER="subprocess")


def fake_child(monkeypatch, code: str) -> list[int]:
    """Make the subprocess launcher start `python -c code` instead of a game server.

    Returns the list the launched pids are appended to.
    """
    pids: list[int] = []
    real_popen = process.subprocess.Popen

    def popen(*args, **kwargs):
        proc = real_popen([sys.executable, "-c", code], **{k: v for k, v in kwargs.items()})
        pids.append(proc.pid)
        return proc

    monkeypatch.setattr(process.subprocess, "Popen", popen)
    return pids


def put(ops_api, players=("alice", "bob")):
    return ops_api.put("/api/match", {"players": list(players)}, format="json")


def test_no_free_port(ops_api, users, game_settings):
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        game_settings(GAME_SERVER_MIN_PORT=port, GAME_SERVER_MAX_PORT=port)
        started = time.monotonic()
        response = put(ops_api)
        elapsed = time.monotonic() - started
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "no_free_port"
    assert elapsed < 10
    match = Match.objects.get()
    assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("no_free_port")
    assert match.port is None and match.pid is None
    assert all(not p.live for p in match.players.all()), "players must be free again"


def test_child_that_crashes(ops_api, users, monkeypatch):
    pids = fake_child(monkeypatch, "import sys; sys.stderr.write('boom\\n'); sys.exit(7)")
    response = put(ops_api)
    assert response.status_code == 503
    assert response.json()["error"] == "launch_failed"
    assert "exit code 7" in response.json()["detail"]
    match = Match.objects.get()
    assert match.status == MatchStatus.FAILED and "exit code 7" in match.finish_reason
    assert not pid_alive(pids[0])


def test_child_that_never_prints_a_port_is_killed(ops_api, users, monkeypatch, game_settings):
    game_settings(GAME_SERVER_LAUNCH_TIMEOUT="1")
    pids = fake_child(monkeypatch, "import time; time.sleep(60)")
    started = time.monotonic()
    response = put(ops_api)
    assert time.monotonic() - started < 5
    assert response.status_code == 503 and response.json()["error"] == "launch_timeout"
    assert Match.objects.get().status == MatchStatus.FAILED
    assert not pid_alive(pids[0]), "the child must be killed"


def test_launch_does_not_stall_other_requests(live_server, users, monkeypatch, game_settings):
    """While one request waits for its port, the site answers others."""
    import json
    import urllib.request

    from arena.client import ApiError, ArenaApi

    game_settings(GAME_SERVER_LAUNCH_TIMEOUT="3")
    fake_child(monkeypatch, "import time; time.sleep(60)")
    ops = ArenaApi(live_server.url)
    ops.login("ops", "ops")
    outcome = {}

    def slow_launch():
        try:
            ops.create_match(["alice", "bob"])
        except ApiError as error:
            outcome["status"] = error.status

    thread = threading.Thread(target=slow_launch)
    thread.start()
    time.sleep(0.5)
    started = time.monotonic()
    request = urllib.request.Request(
        live_server.url + "/api/auth/token",
        data=json.dumps({"username": "carol", "password": "carol"}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200
    assert time.monotonic() - started < 2.0  # a stalled site would answer only after the 3 s launch timeout
    assert thread.is_alive(), "the launch should still be waiting"
    thread.join(10)
    assert outcome["status"] == 503


def test_concurrent_retries_of_one_id_launch_once(ops_api, users):
    from tests.conftest import client_for

    match_id = str(uuid.uuid4())
    results = []

    def attempt():
        client = client_for(users["ops"])
        try:
            response = client.put("/api/match", {"players": ["alice", "bob"], "id": match_id}, format="json")
            results.append((response.status_code, response.json()))
        finally:
            connection.close()  # this thread's own connection

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    codes = sorted(code for code, _ in results)
    assert codes == [200] * 19 + [201], results
    assert len({body["port"] for _, body in results}) == 1
    assert Match.objects.count() == 1
    servers = [p for p in psutil.process_iter(["cmdline"]) if match_id in (p.info["cmdline"] or [])]
    assert len(servers) == 1, "exactly one game server for the match"
