"""The fleet across processes: web processes (Daphne) launching through Celery to
game-host agents; a player notified through another web process; a broker outage
answered at once with a clear 503, and launches working again once it is back."""
from __future__ import annotations

import asyncio
import os
import selectors
import socket
import threading
import time
import urllib.parse

import pytest
from rest_framework.authtoken.models import Token

from arena.client import ApiError, ArenaApi, GameClient
from arena.gameserver import wire
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from tests.fleet.conftest import BROKER_URL, wait_for
from tests.notifications.conftest import WebServer, WebsocketsSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def tokens(users) -> dict[str, str]:
    return {name: Token.objects.get_or_create(user=user)[0].key for name, user in users.items()}


@pytest.fixture
def web(fleet, monkeypatch, tmp_path):
    """web(n, broker_url) -> n Daphne processes launching through the fleet."""
    started: list[WebServer] = []

    def start(count: int, broker_url: str = BROKER_URL) -> list[WebServer]:
        monkeypatch.setenv("GAME_SERVER_LAUNCHER", "fleet")
        monkeypatch.setenv("CELERY_BROKER_URL", broker_url)
        monkeypatch.delenv("CELERY_RESULT_BACKEND", raising=False)  # derived from the broker's URL
        monkeypatch.setenv("GAME_HOST_ANSWER_TIMEOUT", "10")
        servers = [WebServer(tmp_path / f"web-{len(started) + i}.log") for i in range(count)]
        started.extend(servers)
        for server in servers:
            server.wait_ready(60)
        return servers

    yield start
    for server in started:
        server.stop()


async def test_a_launch_through_one_web_process_notifies_a_player_on_another(fleet, web, tokens):
    a, b = fleet.start(("a", 1), ("b", 1))
    launcher, other = web(2)
    alice = await WebsocketsSocket.open(f"{other.ws_url}?token={tokens['alice']}")
    bob = await WebsocketsSocket.open(f"{other.ws_url}?token={tokens['bob']}")
    try:
        assert (await alice.wait_for("hello"))["user"] == "alice"
        await bob.wait_for("hello")
        api = ArenaApi(launcher.url, token=tokens["ops"])
        created = await asyncio.to_thread(api.create_match, ["alice", "bob"], 1)
        ready = await alice.wait_for("match.ready", created["id"], timeout=15)
        bob_ready = await bob.wait_for("match.ready", created["id"], timeout=15)
        assert (ready["host"], ready["port"]) == (created["host"], created["port"])
        assert created["host"] in (a.address, b.address)
        games = [GameClient(e["host"], e["port"], e["token"]) for e in (ready, bob_ready)]
        for game in games:
            await game.connect()
        from tests.integration.test_resilience import dodge

        await asyncio.gather(*(dodge(g) for g in games))
        finished = await alice.wait_for("match.finished", created["id"], timeout=15)
        assert finished["winner"] == games[0].game_over["winner"]
        for game in games:
            await game.close()
    finally:
        await alice.close()
        await bob.close()


class TcpProxy:
    """127.0.0.1:<port> -> the broker, that can be cut (every connection reset,
    new ones refused) and restored: a broker outage without touching the broker."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.thread: threading.Thread | None = None
        self.running = threading.Event()

    def start(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port), reuse_port=False)
        self.listener.setblocking(False)
        self.running.set()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.running.clear()
        if self.thread:
            self.thread.join(5)

    def _run(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self.listener, selectors.EVENT_READ)
        peers: dict[socket.socket, socket.socket] = {}
        try:
            while self.running.is_set():
                for key, _ in sel.select(0.05):
                    sock = key.fileobj
                    if sock is self.listener:
                        try:
                            client, _ = self.listener.accept()
                            upstream = socket.create_connection(self.target, timeout=2)
                        except OSError:
                            continue
                        for s in (client, upstream):
                            s.setblocking(False)
                        peers[client], peers[upstream] = upstream, client
                        sel.register(client, selectors.EVENT_READ)
                        sel.register(upstream, selectors.EVENT_READ)
                        continue
                    try:
                        data = sock.recv(65536)
                    except (BlockingIOError, InterruptedError):
                        continue
                    except OSError:
                        data = b""
                    peer = peers.get(sock)
                    if not data or peer is None:
                        for s in (sock, peer):
                            if s is not None and s in peers:
                                sel.unregister(s)
                                peers.pop(s, None)
                                s.close()
                        continue
                    try:
                        peer.setblocking(True)
                        peer.sendall(data)
                        peer.setblocking(False)
                    except OSError:
                        pass
        finally:
            for s in list(peers):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                s.close()
            sel.close()
            self.listener.close()


def test_a_broker_outage_is_a_fast_clear_503_and_launches_resume_after_it(fleet, web, tokens, users):
    broker = urllib.parse.urlsplit(BROKER_URL)
    if broker.scheme not in ("redis", "rediss"):
        pytest.skip("the outage is simulated with a TCP proxy in front of Redis")
    proxy = TcpProxy((broker.hostname or "127.0.0.1", broker.port or 6379))
    proxy.start()
    url = urllib.parse.urlunsplit((broker.scheme, f"127.0.0.1:{proxy.port}", broker.path, "", ""))
    try:
        (a,) = fleet.start(("a", 4), env={"CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url})
        (site,) = web(1, broker_url=url)
        api = ArenaApi(site.url, token=tokens["ops"])
        assert api.create_match(["alice", "bob"])["status"] == "waiting"

        proxy.stop()  # the broker is gone for everyone
        started = time.monotonic()
        with pytest.raises(ApiError) as refused:
            api.request("PUT", "/api/match", {"players": ["carol", "dave"]}, timeout=60)
        took = time.monotonic() - started
        assert refused.value.status == 503 and refused.value.body["error"] == "broker_unavailable", refused.value.body
        assert took < 10, f"the 503 took {took:.1f} s"  # a bound: it must not wait for any launch timeout
        failed = Match.objects.get(players__user__username="carol")
        assert failed.status == MatchStatus.FAILED and failed.finish_reason.startswith("broker_unavailable")
        assert not MatchPlayer.objects.filter(user__username__in=["carol", "dave"], live=True).exists()

        proxy.start()  # back: the agent reconnects, launches work again

        def launches() -> dict | None:
            try:
                return api.request("PUT", "/api/match", {"players": ["carol", "dave"]}, timeout=60)[1]
            except ApiError as error:
                assert error.status == 503, error.body
                return None

        again = wait_for(launches, 90, interval=1, message="launches did not resume")
        assert again["status"] == "waiting" and again["host"] == a.address
        print(f"broker outage: 503 in {took * 1000:.0f} ms")
    finally:
        proxy.stop()


AMQP_URL = os.environ.get("ARENA_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")


def test_rabbitmq_works_by_url_alone(fleet, web, tokens):
    parts = urllib.parse.urlsplit(AMQP_URL)
    try:
        socket.create_connection((parts.hostname, parts.port or 5672), timeout=2).close()
    except OSError:
        if os.environ.get("CI") == "true":
            pytest.fail(f"RabbitMQ does not answer at {AMQP_URL}, but CI has it")
        pytest.skip(f"RabbitMQ does not answer at {AMQP_URL}")
    (a,) = fleet.start(("a", 2), env={"CELERY_BROKER_URL": AMQP_URL})
    assert "transport:   amqp://" in a.log_text() and "results:     rpc://" in a.log_text()
    (site,) = web(1, broker_url=AMQP_URL)
    api = ArenaApi(site.url, token=tokens["ops"])
    created = api.create_match(["alice", "bob"], 1)
    assert created["status"] == "waiting" and created["host"] == a.address
    assert Match.objects.get(pk=created["id"]).host_name == a.name
    tokens_ = [ArenaApi(site.url, token=tokens[name]).game_token(created["id"]) for name in ("alice", "bob")]

    async def play():
        from tests.fleet.test_fleet import play_to_the_end

        return await play_to_the_end(created["host"], created["port"], tokens_)

    overs = asyncio.run(play())
    assert all(o["reason"] == "points" for o in overs)
