"""Across processes: the launch is served by one web server process (daphne, or
gunicorn's WSGI workers), the sockets are held by a daphne process, and the game
server is a third that publishes the end.

With Redis (`REDIS_URL`) the events travel through Redis; with the in-memory
default they travel through the outbox table and each daphne's relay. Both runs
of the suite execute this test.
"""
from __future__ import annotations

import asyncio

import psutil
import pytest
from channels.db import database_sync_to_async
from websockets.exceptions import InvalidStatus

from arena.client import ArenaApi, GameClient
from arena.gameserver import wire
from arena.matches import selectors
from tests.integration.test_game import wait_until
from tests.notifications.conftest import WebsocketsSocket, layer_mode

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
HOST = "127.0.0.1"


@pytest.fixture
def two_servers(web_servers, users):
    return web_servers(2)


@pytest.fixture
def gunicorn_and_daphne(web_servers, users):
    return web_servers(1, "gunicorn")[0], web_servers(1)[0]


def worker_zygotes(master_pid: int) -> dict[int, int]:
    """{gunicorn worker pid: its zygote's pid}, for the workers forked so far."""
    found = {}
    for worker in psutil.Process(master_pid).children():
        try:
            for child in worker.children():
                if "arena.gameserver.zygote" in child.cmdline():
                    found[worker.pid] = child.pid
        except psutil.NoSuchProcess:
            pass
    return found


async def test_launch_in_one_process_sockets_in_another(two_servers, tokens, session_cookie):
    launcher, other = two_servers
    # alice (a script) and carol are on the other process; bob (a browser tab) on the launcher's
    alice = await WebsocketsSocket.open(f"{other.ws_url}?token={tokens['alice']}")
    carol = await WebsocketsSocket.open(f"{other.ws_url}?token={tokens['carol']}")
    bob = await WebsocketsSocket.open(
        launcher.ws_url,
        origin=f"http://127.0.0.1:{launcher.port}",
        additional_headers={"Cookie": session_cookie("bob")},
    )
    sockets = (alice, carol, bob)
    try:
        for sock, name in zip(sockets, ("alice", "carol", "bob")):
            assert (await sock.wait_for("hello"))["user"] == name

        api = ArenaApi(launcher.url, token=tokens["ops"])
        created = await asyncio.to_thread(api.create_match, ["alice", "bob"], 1)
        match_id = created["id"]
        ready = await alice.wait_for("match.ready", match_id, timeout=10)
        bob_ready = await bob.wait_for("match.ready", match_id, timeout=10)
        assert (ready["host"], ready["port"]) == (HOST, created["port"])
        assert ready["token"] != bob_ready["token"]

        await carol.send({"action": "watch", "match": match_id})
        assert "token" not in await carol.wait_for("match.ready", match_id)

        games = []
        for event, side in ((ready, "left"), (bob_ready, "right")):
            game = GameClient(event["host"], event["port"], event["token"])
            await game.connect()
            assert (game.role, game.side) == ("player", side)
            games.append(game)
        # the game server (a third process) records the start and the end
        over = await games[0].wait_for(wire.GAME_OVER, timeout=20)
        for sock in sockets:
            await sock.wait_for("match.started", match_id, timeout=10)
            finished = await sock.wait_for("match.finished", match_id, timeout=10)
            assert (finished["winner"], finished["score"], finished["reason"]) == (
                over["winner"], over["score"], "points"
            )
        # each event once per socket, on either process
        for sock in sockets:
            await sock.drain(0.6)
            # match.score races the final match.finished (which supersedes it): not counted
            kinds = [m["type"] for m in sock.about(match_id) if m["type"].startswith("match.") and m["type"] != "match.score"]
            assert kinds == ["match.ready", "match.started", "match.finished"], (layer_mode(), kinds)
        for game in games:
            await game.close()
    finally:
        for sock in sockets:
            await sock.close()


async def test_a_real_server_refuses_bad_tokens_and_foreign_origins(two_servers, tokens, session_cookie):
    server = two_servers[0]
    refused = await WebsocketsSocket.open(f"{server.ws_url}?token=wrong")
    assert await refused.drain(3) == [] and refused.close_code == 4401
    with pytest.raises(InvalidStatus) as denied:
        await WebsocketsSocket.open(
            server.ws_url, origin="http://evil.example", additional_headers={"Cookie": session_cookie("alice")}
        )
    assert denied.value.response.status_code == 403


async def test_the_api_served_by_gunicorn_launches_through_each_workers_zygote(gunicorn_and_daphne, tokens):
    api_server, sockets_server = gunicorn_and_daphne
    # each of the two workers started its zygote when it started (post_worker_init), before any request
    master = api_server.proc.pid  # it may still be forking its workers
    assert wait_until(lambda: len(worker_zygotes(master)) == len(psutil.Process(master).children()) == 2, timeout=20)
    zygotes = worker_zygotes(master)
    assert sorted(zygotes) == sorted(w.pid for w in psutil.Process(master).children())

    alice = await WebsocketsSocket.open(f"{sockets_server.ws_url}?token={tokens['alice']}")
    bob = await WebsocketsSocket.open(f"{sockets_server.ws_url}?token={tokens['bob']}")
    try:
        for sock, name in ((alice, "alice"), (bob, "bob")):
            assert (await sock.wait_for("hello"))["user"] == name
        api = ArenaApi(api_server.url, token=tokens["ops"])
        created = await asyncio.to_thread(api.create_match, ["alice", "bob"], 1)
        match_id = created["id"]
        assert created["status"] == "waiting"
        match = await database_sync_to_async(selectors.match_get)(match_id)
        assert psutil.Process(match.pid).ppid() in zygotes.values()  # forked by a worker's zygote

        games = []
        for sock, side in ((alice, "left"), (bob, "right")):
            ready = await sock.wait_for("match.ready", match_id, timeout=10)
            assert (ready["host"], ready["port"]) == (HOST, created["port"])
            game = GameClient(ready["host"], ready["port"], ready["token"])
            await game.connect()
            assert (game.role, game.side) == ("player", side)
            games.append(game)
        over = await games[0].wait_for(wire.GAME_OVER, timeout=20)
        finished = await alice.wait_for("match.finished", match_id, timeout=10)
        assert (finished["winner"], finished["score"]) == (over["winner"], over["score"])
        saved = await database_sync_to_async(selectors.match_get)(match_id)
        assert (saved.status, saved.winner.username, selectors.match_score(saved)) == (
            "finished", over["winner"], over["score"]
        )
        for game in games:
            await game.close()
    finally:
        for sock in (alice, bob):
            await sock.close()
