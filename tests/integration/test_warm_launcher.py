"""The warm launcher: a zygote forks the game servers. Real processes, real ports."""
from __future__ import annotations

import os
import signal
import socket
import threading
import time
import uuid

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from arena.client import GameClient
from arena.gameserver import wire
from arena.gameserver.store import MatchNotLaunchable, load_match
from arena.matches import services
from arena.matches.launcher import get_launcher
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from tests.conftest import pid_alive, port_is_free, run
from tests.integration.test_game import HOST, game_token, launch, wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def warm(game_settings):
    game_settings(GAME_SERVER_LAUNCHER="warm")
    launcher = get_launcher()
    assert type(launcher).__name__ == "WarmLauncher"
    return launcher


def launching_match(*players: User) -> Match:
    """A match written straight to the database, for tests that call the launcher themselves."""
    match = Match.objects.create(points_to_win=1)
    MatchPlayer.objects.bulk_create(
        MatchPlayer(match=match, user=user, side=services.side_of_seat(seat), seat=seat)
        for seat, user in enumerate(players)
    )
    return match


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command: state, ppid, pgrp, session, ..."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(") ", 1)[1].split()


def session_of(pid: int) -> int:
    return int(stat_fields(pid)[3])


def parent_of(pid: int) -> int:
    return int(stat_fields(pid)[1])


def children_of(pid: int, *, zombies: bool) -> list[psutil.Process]:
    """Children of `pid` that are zombies, or that still run."""
    try:
        children = psutil.Process(pid).children()
    except psutil.NoSuchProcess:
        return []
    found = []
    for child in children:
        try:
            if (child.status() == psutil.STATUS_ZOMBIE) == zombies:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def live_children(pid: int) -> list[psutil.Process]:
    return children_of(pid, zombies=False)


def stderr_of(pid: int) -> str:
    try:
        return os.readlink(f"/proc/{pid}/fd/2")
    except OSError:
        return ""


def games_of(zygote: int) -> set[int]:
    """The zygote's children serving a match (a spare's stderr is the zygote's log)."""
    return {p.pid for p in live_children(zygote) if not stderr_of(p.pid).endswith("zygote.log")}


def spares_of(zygote: int) -> set[int]:
    return {p.pid for p in live_children(zygote) if stderr_of(p.pid).endswith("zygote.log")}


def zombie_children(pid: int) -> list[psutil.Process]:
    return children_of(pid, zombies=True)


def test_a_forked_game_server_plays_a_match_to_the_end(warm, ops_api, users):
    created = launch(ops_api, points_to_win=1)
    match_id, port = created["id"], created["port"]
    match = Match.objects.get(pk=match_id)
    zygote = warm.zygote_pid()
    assert zygote and pid_alive(zygote)

    # a process of its own: forked by the zygote, in a session of its own
    assert match.pid != zygote and pid_alive(match.pid)
    assert parent_of(match.pid) == zygote
    assert session_of(match.pid) == match.pid
    assert session_of(match.pid) not in (session_of(zygote), os.getsid(0))
    # stdout was the launcher's pipe and is /dev/null right after the port line
    # (the launcher may read that line a moment before the child switches); stderr is the match log
    assert wait_until(lambda: os.readlink(f"/proc/{match.pid}/fd/1") == "/dev/null", timeout=5)
    assert os.readlink(f"/proc/{match.pid}/fd/2").endswith(f"{match_id}.log")
    assert os.readlink(f"/proc/{match.pid}/fd/0") == "/dev/null"

    tokens = {name: game_token(users[name], match_id) for name in ("alice", "bob")}

    async def scenario():
        alice = GameClient(HOST, port, tokens["alice"])
        bob = GameClient(HOST, port, tokens["bob"])
        await alice.connect()
        await bob.connect()
        assert (alice.role, bob.role) == ("player", "player")
        start = await alice.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=10)
        # both paddles leave the middle: the first serve scores
        seq = await alice.send_input(1)
        await bob.send_input(-1)
        moved = await bob.wait_for(wire.STATE, lambda s: s["acks"]["left"] == seq, timeout=5)
        assert moved["paddles"]["left"] >= start["paddles"]["left"]
        over = await alice.wait_for(wire.GAME_OVER, timeout=20)
        assert await bob.wait_for(wire.GAME_OVER, timeout=5) == over
        await alice.wait_for("disconnect", timeout=5)
        return over

    over = run(scenario())
    assert over["reason"] == "points" and over["winner"] in {"alice", "bob"}
    match.refresh_from_db()
    assert match.status == MatchStatus.FINISHED and match.winner.username == over["winner"]
    # the child exited, the zygote reaped it (no zombie), the port is free again
    assert wait_until(lambda: not os.path.exists(f"/proc/{match.pid}"), timeout=10)
    assert wait_until(lambda: port_is_free(port), timeout=5)
    assert pid_alive(zygote) and not zombie_children(zygote)


def unix_sockets(pid: int) -> set[str]:
    """The Unix-domain sockets a process holds, as "socket:[inode]" links."""
    with open(f"/proc/{pid}/net/unix") as f:
        inodes = {line.split()[6] for line in f.readlines()[1:] if len(line.split()) > 6}
    links = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
    return {link for link in links if link.startswith("socket:[") and link[8:-1] in inodes}


def test_the_child_has_none_of_the_zygotes_descriptors(warm, ops_api, users):
    match = Match.objects.get(pk=launch(ops_api)["id"])
    zygote = warm.zygote_pid()
    theirs = {os.readlink(f"/proc/{zygote}/fd/{fd}") for fd in os.listdir(f"/proc/{zygote}/fd")}
    unix_or_pipes = {link for link in theirs if link.startswith(("socket:", "pipe:"))}
    mine = {os.readlink(f"/proc/{match.pid}/fd/{fd}") for fd in os.listdir(f"/proc/{match.pid}/fd")}
    assert not (mine & unix_or_pipes)
    # no control or reply socket of the zygote's either: the only Unix sockets are its
    # event loop's own pair and its own control socket (the per-match stop path)
    assert len(unix_sockets(match.pid)) <= 3


def test_a_killed_zygote_is_restarted_and_its_games_live_on(warm, ops_api, users):
    first = launch(ops_api, ("alice", "bob"))
    old = warm.zygote_pid()
    game = Match.objects.get(pk=first["id"]).pid
    os.kill(old, signal.SIGKILL)
    assert wait_until(lambda: not pid_alive(old), timeout=5)

    second = launch(ops_api, ("carol", "dave"))
    new = warm.zygote_pid()
    assert new and new != old
    assert parent_of(Match.objects.get(pk=second["id"]).pid) == new
    # the game forked by the dead zygote still serves its match
    assert pid_alive(game) and not port_is_free(first["port"])

    async def connect_both():
        for port in (first["port"], second["port"]):
            client = GameClient(HOST, port)
            assert (await client.connect())["role"] == "spectator"
            await client.close()

    run(connect_both())


def test_concurrent_launches_get_distinct_ports_and_children_are_reaped(warm, ops_api, users):
    launch(ops_api)  # the zygote is up; now ten launches at once
    zygote = warm.zygote_pid()
    players = [User.objects.create_user(f"player{i}", password="x") for i in range(20)]
    ids = [launching_match(players[2 * n], players[2 * n + 1]).id for n in range(10)]
    errors = []

    def launch_one(match_id):
        try:
            services.match_launch(load_match(str(match_id)))
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=launch_one, args=(match_id,)) for match_id in ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors
    matches = list(Match.objects.filter(pk__in=ids))
    assert all(m.status == MatchStatus.WAITING for m in matches)
    assert len({m.port for m in matches}) == 10
    assert len({m.pid for m in matches}) == 10
    assert warm.zygote_pid() == zygote
    assert all(parent_of(m.pid) == zygote for m in matches)

    # stopped games are reaped by the zygote: no zombies
    for m in matches:
        os.kill(m.pid, signal.SIGTERM)  # a graceful stop: the match is cancelled
    assert wait_until(lambda: not any(os.path.exists(f"/proc/{m.pid}") for m in matches), timeout=15)
    assert not zombie_children(zygote)
    assert all(m.status == MatchStatus.CANCELLED for m in Match.objects.filter(pk__in=ids))


def test_no_free_port_answers_503_and_fails_the_match(warm, ops_api, users, game_settings):
    launch(ops_api, ("carol", "dave"))
    before = warm.zygote_pid()
    with socket.socket() as blocker:
        blocker.bind((HOST, 0))
        blocker.listen()
        port = blocker.getsockname()[1]
        game_settings(GAME_SERVER_MIN_PORT=port, GAME_SERVER_MAX_PORT=port)
        response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "no_free_port"
    match = Match.objects.exclude(players__user__username="carol").get()
    assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("no_free_port")
    # other settings for the game servers: another zygote, started with them
    assert warm.zygote_pid() != before


def test_a_launch_timeout_kills_the_child(warm, ops_api, users, monkeypatch):
    launch(ops_api, ("carol", "dave"))
    zygote = warm.zygote_pid()
    running = games_of(zygote)
    assert len(running) == 1
    # this process's own deadline only: the game servers' settings are unchanged
    monkeypatch.setattr(settings, "GAME_SERVER_LAUNCH_TIMEOUT", 0)  # a spare answers within 2 ms
    response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "launch_timeout"
    assert Match.objects.get(players__user__username="alice").status == MatchStatus.FAILED
    assert warm.zygote_pid() == zygote
    assert wait_until(lambda: games_of(zygote) == running, timeout=10)
    assert wait_until(lambda: not zombie_children(zygote), timeout=5)


def test_a_warm_launch_reads_nothing_from_the_database(warm, ops_api, users):
    launch(ops_api, players=("carol", "dave"))  # the zygote runs
    info = load_match(str(launching_match(users["alice"], users["bob"]).id))
    with CaptureQueriesContext(connection) as queries:
        result = warm.launch(info)  # the caller's MatchInfo travels to the child
    assert len(queries) == 0, [q["sql"] for q in queries]
    assert parent_of(result.pid) == warm.zygote_pid()
    os.kill(result.pid, signal.SIGTERM)
    # Let it write its cancellation and exit before the test database is flushed.
    assert wait_until(lambda: not pid_alive(result.pid), timeout=10)


def test_load_match_refuses_what_cannot_be_launched(users):
    with pytest.raises(MatchNotLaunchable, match="not found"):
        load_match(str(uuid.uuid4()))
    with pytest.raises(MatchNotLaunchable, match="not found"):
        load_match("not-a-uuid")
    match = Match.objects.create(points_to_win=1, status=MatchStatus.FINISHED)
    MatchPlayer.objects.create(match=match, user=users["alice"], side="left", seat=0)
    with pytest.raises(MatchNotLaunchable, match="finished"):
        load_match(str(match.id))


def test_a_retired_zygote_finishes_its_games_then_exits(game_settings, ops_api, users):
    from arena.matches.launcher.warm import WarmLauncher

    game_settings(GAME_SERVER_LAUNCHER="warm")
    own = WarmLauncher()  # not the shared one: this test retires it
    result = own.launch(load_match(str(launching_match(users["alice"], users["bob"]).id)))
    zygote = own.zygote_pid()
    own.shutdown()  # as when the Django process exits: the zygote's control socket closes
    assert wait_until(lambda: not spares_of(zygote), timeout=10), "spares must exit with their zygote's launcher"
    time.sleep(0.3)
    assert pid_alive(zygote) and pid_alive(result.pid), "the game must outlive its launcher"
    os.kill(result.pid, signal.SIGTERM)
    assert wait_until(lambda: not pid_alive(zygote), timeout=10), "the zygote did not exit after its last game"
    assert not os.path.exists(f"/proc/{result.pid}")


WELL_FORMED = b'{"match": {"id": "x", "points_to_win": 1, "seats": [[1, "alice", "left"], [2, "bob", "right"]]}}'


@pytest.mark.parametrize("message, descriptors", [
    (b"not json", 3), (b"[]", 3), (b'{"match": "x"}', 3), (b'{"match": {"id": "x", "seats": 5}}', 3),
    (WELL_FORMED, 1),  # the descriptors are missing
])
def test_a_malformed_request_is_dropped_and_the_zygote_serves_on(warm, ops_api, users, message, descriptors):
    launch(ops_api, players=("carol", "dave"))  # the zygote runs
    zygote = warm._zygote
    read_fd, write_fd = os.pipe()
    mine, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    socket.send_fds(zygote.control, [message], [write_fd, read_fd, theirs.fileno()][:descriptors])
    for fd in (read_fd, write_fd):
        os.close(fd)
    theirs.close()
    mine.settimeout(5)
    assert mine.recv(4096) == b"", "a dropped request gets no answer: its reply socket is closed"
    mine.close()
    assert launch(ops_api)["status"] == "waiting"
    assert warm.zygote_pid() == zygote.pid


def test_a_ready_spare_serves_the_next_launch_and_is_replaced(warm, ops_api, users):
    launch(ops_api, players=("carol", "dave"))  # the zygote runs
    zygote = warm.zygote_pid()
    assert settings.GAME_ZYGOTE_SPARES == 2

    def clean(pid: int) -> bool:  # before any match: own session, nothing on stdin/stdout
        try:
            return session_of(pid) == pid and os.readlink(f"/proc/{pid}/fd/0") == os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"
        except (OSError, psutil.Error):
            return False

    # A spare is listed as soon as it is forked and cleans itself up a moment later.
    assert wait_until(lambda: len(spares_of(zygote)) == 2 and all(map(clean, spares_of(zygote))), timeout=10)
    spares = spares_of(zygote)
    created = launch(ops_api)
    match = Match.objects.get(pk=created["id"])
    assert match.pid in spares, "the launch should have used a spare, not a fork"
    assert stderr_of(match.pid).endswith(f"{match.id}.log")
    assert wait_until(lambda: os.readlink(f"/proc/{match.pid}/fd/1") == "/dev/null", timeout=5)
    # the zygote forks a new spare once it is idle
    assert wait_until(lambda: len(spares_of(zygote)) == 2 and match.pid not in spares_of(zygote), timeout=10)

    token = game_token(users["alice"], match.id)

    async def play():
        alice = GameClient(HOST, created["port"], token)
        try:
            await alice.connect()
            assert alice.role == "player"
            return await alice.wait_for(wire.WELCOME, timeout=10)
        finally:
            await alice.close()

    welcome = run(play())
    assert welcome["match"]["id"] == str(match.id)


def test_a_spare_that_dies_is_replaced(warm, ops_api, users):
    launch(ops_api, players=("carol", "dave"))
    zygote = warm.zygote_pid()
    assert wait_until(lambda: len(spares_of(zygote)) == 2, timeout=10)
    victim = min(spares_of(zygote))
    os.kill(victim, signal.SIGKILL)
    assert wait_until(lambda: len(spares_of(zygote)) == 2 and victim not in spares_of(zygote), timeout=10)
    # Reaped, too. Not at the same instant: a killed process's socket closes (the
    # zygote replaces the spare) a moment before it is a zombie (SIGCHLD, reaped).
    assert wait_until(lambda: not zombie_children(zygote), timeout=5)
    assert launch(ops_api)["status"] == "waiting"
    assert warm.zygote_pid() == zygote


def test_without_spares_each_game_is_forked_on_request(warm, game_settings, ops_api, users):
    game_settings(GAME_ZYGOTE_SPARES=0)
    launch(ops_api, players=("carol", "dave"))
    zygote = warm.zygote_pid()
    time.sleep(0.5)
    assert not spares_of(zygote)
    before = {p.pid for p in live_children(zygote)}
    match = Match.objects.get(pk=launch(ops_api)["id"])
    assert parent_of(match.pid) == zygote and match.pid not in before


def test_a_spare_that_cannot_start_its_match_says_why(warm, game_settings, ops_api, users):
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        port = probe.getsockname()[1]
    game_settings(GAME_SERVER_MIN_PORT=port, GAME_SERVER_MAX_PORT=port)
    assert launch(ops_api, players=("carol", "dave"))["port"] == port  # the one port is taken now
    zygote = warm.zygote_pid()
    assert wait_until(lambda: len(spares_of(zygote)) == 2, timeout=10)
    spares = spares_of(zygote)
    response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "no_free_port"  # the spare's exit code, relayed by the zygote
    assert Match.objects.get(players__user__username="alice").status == MatchStatus.FAILED
    # it was a spare that tried, and it is gone (reaped); the other one still waits
    assert wait_until(lambda: len(spares & {p.pid for p in live_children(zygote)}) == 1, timeout=10)
    assert wait_until(lambda: not zombie_children(zygote), timeout=5)
