"""Who may play: forged, expired and swapped tokens all land as spectators; game
servers listen only where they are told and speak only to allowed origins."""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request

import psutil
import pytest
from django.core import signing

from arena.client import GameClient
from arena.matches.models import Match
from arena.matches.tokens import game_token_issue, game_token_user_id
from tests.conftest import run
from tests.integration.test_game import HOST, launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_token_rules(users):
    alice = users["alice"].pk
    match_a, match_b = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
    token = game_token_issue(user_id=alice, match_id=match_a)
    assert game_token_user_id(token, match_id=match_a) == alice
    assert game_token_user_id(token, match_id=match_b) is None  # swapped to another match
    forged = signing.dumps({"u": alice, "m": match_a}, key="not-the-secret", salt="arena.matches.game-token")
    assert game_token_user_id(forged, match_id=match_a) is None
    tampered = token.replace(token.split(":")[0], signing.b64_encode(b'{"u":1,"m":"x"}').decode())
    assert game_token_user_id(tampered, match_id=match_a) is None
    for junk in (None, "", 42, ["x"], "x" * 10_000):
        assert game_token_user_id(junk, match_id=match_a) is None


def test_token_lifetime(users, settings):
    """A token is good for GAME_TOKEN_MAX_AGE seconds after the second it was issued in."""
    settings.GAME_TOKEN_MAX_AGE = 600
    alice, match = users["alice"].pk, "11111111-1111-1111-1111-111111111111"
    now = time.time()
    young = game_token_issue(user_id=alice, match_id=match, issued_at=now - 590)
    old = game_token_issue(user_id=alice, match_id=match, issued_at=now - 610)
    assert game_token_user_id(young, match_id=match) == alice
    assert game_token_user_id(old, match_id=match) is None
    # The stamp is what is signed: rewriting it to make an old token young breaks the signature.
    payload, _, rest = old.partition(":")
    _, _, signature = rest.partition(":")
    stamp = signing.b62_encode(int(now))
    assert game_token_user_id(f"{payload}:{stamp}:{signature}", match_id=match) is None


def test_bad_tokens_make_spectators(ops_api, users, game_settings):
    game_settings(GAME_TOKEN_MAX_AGE="600")
    created = launch(ops_api)
    # Signed an hour ago: expired for the game server, with no race against the clock.
    expired = game_token_issue(user_id=users["alice"].pk, match_id=created["id"], issued_at=time.time() - 3600)
    other_match = game_token_issue(user_id=users["alice"].pk, match_id="33333333-3333-3333-3333-333333333333")
    forged = signing.dumps({"u": users["alice"].pk, "m": created["id"]}, key="guess", salt="arena.matches.game-token")
    carols = game_token_issue(user_id=users["carol"].pk, match_id=created["id"])  # valid, but not a player

    async def scenario():
        roles = []
        for token in (expired, other_match, forged, carols, "garbage"):
            client = GameClient(HOST, created["port"], token)
            await client.connect()
            roles.append(client.role)
            await client.close()
        fresh = GameClient(HOST, created["port"], game_token_issue(user_id=users["alice"].pk, match_id=created["id"]))
        await fresh.connect()
        roles.append(fresh.role)
        await fresh.close()
        return roles

    assert run(scenario()) == ["spectator"] * 5 + ["player"]


def test_game_server_listens_only_on_its_bind_address(ops_api, users, game_settings):
    game_settings(GAME_SERVER_BIND="127.0.0.2", GAME_SERVER_HOST="127.0.0.2")
    created = launch(ops_api)
    assert created["host"] == "127.0.0.2"
    socket.create_connection(("127.0.0.2", created["port"]), timeout=2).close()
    pid = Match.objects.get(pk=created["id"]).pid
    listening = [c.laddr for c in psutil.Process(pid).net_connections("tcp") if c.status == psutil.CONN_LISTEN]
    assert [(a.ip, a.port) for a in listening] == [("127.0.0.2", created["port"])]


def test_cross_origin_requests_only_from_allowed_origins(ops_api, users, game_settings):
    game_settings(GAME_CORS_ORIGINS="http://arena.example")
    created = launch(ops_api)
    url = f"http://{HOST}:{created['port']}/socket.io/?EIO=4&transport=polling"

    def handshake(origin: str) -> int:
        request = urllib.request.Request(url, headers={"Origin": origin})
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status
        except urllib.error.HTTPError as error:
            return error.code

    assert handshake("http://arena.example") == 200
    assert handshake("http://evil.example") == 400
