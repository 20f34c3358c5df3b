"""The public development SECRET_KEY is refused outside development, everywhere a
process of the site starts; SECRET_KEY_FALLBACKS keeps old signatures valid
during a rotation (arena/security/secret_key.py)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.core import checks

from arena.client import GameClient
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from arena.matches.tokens import game_token_issue, game_token_user_id
from arena.security.checks import secret_key_check
from arena.security.secret_key import DEVELOPMENT_SECRET_KEY
from tests.conftest import run
from tests.integration.test_game import HOST, launch

MATCH = "11111111-1111-1111-1111-111111111111"
REAL_KEY = "k" + "0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJKLMNOP"
OLD_KEY = "old-" + "zyxwvutsrqponmlkjihgfedcba9876543210-ABCDEFGHIJKLMNOP"


def ids(messages) -> list[str]:
    return [m.id for m in messages]


def test_development_key_with_debug_off_is_a_check_error(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = DEVELOPMENT_SECRET_KEY
    errors = secret_key_check()
    assert ids(errors) == ["arena.E001"] and errors[0].level == checks.ERROR
    assert "SECRET_KEY environment variable" in errors[0].hint
    # Registered: every management command that runs checks sees it.
    assert "arena.E001" in ids(checks.run_checks(tags=[checks.Tags.security]))


def test_development_key_with_debug_on_is_fine(settings):
    settings.DEBUG = True
    settings.SECRET_KEY = DEVELOPMENT_SECRET_KEY
    assert secret_key_check() == []


def test_a_real_key_is_fine(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = REAL_KEY
    assert secret_key_check() == []


def test_development_key_among_fallbacks_is_a_check_error(settings):
    settings.DEBUG = False
    settings.SECRET_KEY = REAL_KEY
    settings.SECRET_KEY_FALLBACKS = [DEVELOPMENT_SECRET_KEY]
    assert ids(secret_key_check()) == ["arena.E002"]


def test_throttle_settings_are_checked(settings):
    from arena.security.checks import throttle_cache_check, throttle_settings_check

    settings.TRUSTED_PROXY_HEADER = "X-Real-IP"  # as the proxy spells it, not as Django does
    settings.AUTH_THROTTLE_FAILURES = 0
    settings.TRUSTED_PROXY_ADDRESSES = ["10.0.0.0/8", "proxy.example"]
    assert sorted(ids(throttle_settings_check())) == ["arena.E003", "arena.E004", "arena.E005"]
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_REAL_IP"
    settings.AUTH_THROTTLE_FAILURES = 10
    settings.TRUSTED_PROXY_ADDRESSES = ["10.0.0.0/8", "::1"]
    assert throttle_settings_check() == []
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert ids(throttle_cache_check()) == ["arena.W001"]  # each process would count on its own


def test_fallbacks_come_from_the_environment():
    env = {**os.environ, "SECRET_KEY_FALLBACKS": f"{OLD_KEY}, other-old-key"}
    out = subprocess.run(
        [sys.executable, "-c", "from django.conf import settings; print(settings.SECRET_KEY_FALLBACKS)"],
        env={**env, "DJANGO_SETTINGS_MODULE": "arena.settings"}, cwd=django_settings.BASE_DIR,
        capture_output=True, text=True, timeout=60,
    )
    assert out.stdout.strip() == str([OLD_KEY, "other-old-key"]), out.stderr


@pytest.mark.django_db  # a refused token is looked up as an API token
def test_game_token_signed_with_a_fallback_key(settings):
    settings.SECRET_KEY = OLD_KEY
    token = game_token_issue(user_id=7, match_id=MATCH)
    settings.SECRET_KEY = REAL_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert game_token_user_id(token, match_id=MATCH) == 7
    settings.SECRET_KEY_FALLBACKS = []
    assert game_token_user_id(token, match_id=MATCH) is None


@pytest.mark.django_db
def test_session_signed_with_a_fallback_key(settings):
    from django.test import Client

    user = get_user_model().objects.create_user("alice", password="pw-alice-1")
    settings.SECRET_KEY = OLD_KEY
    visits, stays_away = Client(), Client()
    for client in (visits, stays_away):
        client.force_login(user)
        assert client.get("/").status_code == 200
    settings.SECRET_KEY = REAL_KEY
    settings.SECRET_KEY_FALLBACKS = [OLD_KEY]
    assert visits.get("/").status_code == 200  # still signed in during the rotation (Django re-signs it)
    settings.SECRET_KEY_FALLBACKS = []
    assert visits.get("/").status_code == 200
    assert stays_away.get("/").status_code == 302  # signed with the old key only: signed out


def insecure_env(tmp_path, **extra: str) -> dict[str, str]:
    """This run's environment with DEBUG off and no SECRET_KEY."""
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "SECRET_KEY_FALLBACKS")}
    return env | {"DEBUG": "0", "ARENA_VAR_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "arena.settings"} | extra


@pytest.mark.slow
@pytest.mark.parametrize("command", [["migrate", "--noinput"], ["runserver", "--noreload", "127.0.0.1:0"],
                                     ["supervise", "--once"]])
def test_management_commands_refuse_the_development_key(tmp_path, command):
    done = subprocess.run([sys.executable, "manage.py", *command], env=insecure_env(tmp_path),
                          cwd=django_settings.BASE_DIR, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "arena.E001" in done.stderr + done.stdout and "Set the SECRET_KEY environment variable" in done.stderr + done.stdout


@pytest.mark.slow
@pytest.mark.parametrize("server", [
    ["-m", "daphne", "-b", "127.0.0.1", "-p", "0", "arena.asgi:application"],
    ["-m", "gunicorn", "-w", "1", "-b", "127.0.0.1:0", "arena.wsgi:application"],
])
def test_web_servers_refuse_the_development_key(tmp_path, server):
    """Daphne and gunicorn run no system checks: the applications refuse themselves.
    (A server that started would run until the timeout: the test fails then too.)"""
    done = subprocess.run([sys.executable, *server], env=insecure_env(tmp_path), cwd=django_settings.BASE_DIR,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "SECRET_KEY is not set" in done.stderr + done.stdout


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("launcher", ["subprocess", "warm"])
def test_game_server_refuses_the_development_key(ops_api, users, game_settings, monkeypatch, launcher):
    """Through a real launch: the match fails at once with the reason, nothing keeps running."""
    game_settings(GAME_SERVER_LAUNCHER=launcher)
    monkeypatch.setenv("DEBUG", "0")
    monkeypatch.delenv("SECRET_KEY")
    response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    assert response.status_code == 503, response.content
    body = response.json()
    assert body["error"] == "insecure_secret_key" and "Set the SECRET_KEY environment variable" in body["detail"]
    match = Match.objects.get()
    assert match.status == MatchStatus.FAILED and match.finish_reason.startswith("insecure_secret_key")
    assert match.pid is None
    assert all(not p.live for p in match.players.all())
    # The same launch with the key set works (the warm launcher starts a new zygote).
    monkeypatch.setenv("SECRET_KEY", django_settings.SECRET_KEY)
    assert launch(ops_api, players=("carol", "dave"))["status"] == "waiting"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_game_server_accepts_tokens_of_a_fallback_key(ops_api, users, monkeypatch):
    """Rotation on a real game server: it runs on a new key; tokens signed with the
    old one are accepted while the old key is a fallback, and not after."""
    old = django_settings.SECRET_KEY  # this process still signs with the old key
    monkeypatch.setenv("SECRET_KEY", REAL_KEY)
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", old)
    during = launch(ops_api, players=("alice", "bob"))
    monkeypatch.setenv("SECRET_KEY_FALLBACKS", "")
    after = launch(ops_api, players=("carol", "dave"))

    def role(match: dict, user, key: str) -> str:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(django_settings, "SECRET_KEY", key)
            token = game_token_issue(user_id=user.pk, match_id=match["id"])

        async def connect() -> str:
            client = GameClient(HOST, match["port"], token)
            await client.connect()
            try:
                return client.role
            finally:
                await client.close()

        return run(connect())

    assert role(during, users["alice"], old) == "player"
    assert role(during, users["bob"], REAL_KEY) == "player"
    assert role(after, users["carol"], old) == "spectator"
    assert role(after, users["dave"], REAL_KEY) == "player"
