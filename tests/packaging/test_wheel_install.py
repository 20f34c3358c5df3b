"""Arena as a user installs it: from its wheel, into a project of their own.

Builds the wheel, installs it into a fresh virtual environment, generates a
project with `django-admin startproject`, gives it a custom user model (email
login, UUID primary key) and its own token scheme, then follows
docs/integration.md by running the blocks it marks `<!-- snippet: name -->` (so
the page cannot drift from what works), launches a match through `PUT
/api/match`, receives `match_ready` through a signal receiver and through the
signed webhook, plays the match with `arena.client` and finds the result in the
project's database.

Runs once, in the SQLite pass: it builds its own project with its own SQLite
database, so the suite's backend changes nothing in what it checks, and it costs
about a minute (most of it installing the wheel's dependencies, from pip's cache
after the first time).
"""
from __future__ import annotations

import asyncio
import contextlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import venv
from pathlib import Path

import psutil
import pytest
from django.conf import settings

from arena.client import ApiError, ArenaApi, GameClient
from arena.gameserver import wire

ROOT = Path(settings.BASE_DIR)
DOC = ROOT / "docs" / "integration.md"
BOUND = 240.0  # seconds for any one step on a loaded machine: a bound, not a target

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3",
        reason="runs once, in the SQLite pass (the project it builds has its own database)",
    ),
]


def snippets() -> dict[str, str]:
    """The fenced blocks of docs/integration.md that follow a `<!-- snippet: name -->` line."""
    found = dict(re.findall(r"<!-- snippet: (\w+) -->\n```\w*\n(.*?)```", DOC.read_text(), flags=re.S))
    assert {"install", "settings", "auth", "urls", "migrate", "receiver", "verify", "run"} <= set(found)
    return found


def commands(block: str) -> list[list[str]]:
    return [line.split() for line in block.splitlines() if line.strip()]


ACCOUNTS_MODELS = '''
import uuid

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models


class UserManager(BaseUserManager):
    def create_user(self, email, password=None, **extra):
        user = self.model(email=self.normalize_email(email), **extra)
        user.set_password(password)
        user.save()
        return user

    def create_superuser(self, email, password=None, **extra):
        return self.create_user(email, password, is_staff=True, is_superuser=True, **extra)


class User(AbstractBaseUser, PermissionsMixin):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField(unique=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    objects = UserManager()


class ApiKey(models.Model):
    key = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(User, on_delete=models.CASCADE)
'''

ACCOUNTS_AUTH = '''
from rest_framework import authentication, exceptions

from accounts.models import ApiKey


class BearerKeyAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer <key>`: the project's own token scheme."""

    def authenticate(self, request):
        scheme, _, key = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
        if scheme != "Bearer":
            return None
        found = ApiKey.objects.select_related("user").filter(key=key, user__is_active=True).first()
        if found is None:
            raise exceptions.AuthenticationFailed("Unknown key.")
        return found.user, found

    def authenticate_header(self, request):
        return "Bearer"
'''

ACCOUNTS_APPS = '''
from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts import receivers  # noqa: F401
'''

# The project's "push channel": one JSON line per message in a file the test reads.
ACCOUNTS_PUSH = '''
import json
import os


def push_to_user(user_id, message):
    with open(os.environ["PUSH_LOG"], "a") as log:
        log.write(json.dumps({"user_id": user_id, **message}) + "\\n")
'''

SETUP_USERS = '''
from django.contrib.auth.models import Permission
from accounts.models import ApiKey, User

User.objects.create_user("alice@example.com", "alice")
User.objects.create_user("bob@example.com", "bob")
ops = User.objects.create_user("ops@example.com", "ops")
ops.user_permissions.add(Permission.objects.get(codename="add_match", content_type__app_label="matches"))
ApiKey.objects.create(key="ops-key", user=ops)
ApiKey.objects.create(key="alice-key", user=User.objects.get(email="alice@example.com"))
'''

READ_RESULT = '''
import json
from arena.matches.models import Match
m = Match.objects.select_related("winner").get(pk="MATCH_ID")
print(json.dumps({"status": m.status, "winner": m.winner.email if m.winner else None,
                  "winner_pk": str(m.winner.pk) if m.winner else None,
                  "scores": {p.user.email: p.score for p in m.players.select_related("user")}}))
'''


def clean_env() -> dict[str, str]:
    """This environment without what configures this checkout's own site."""
    return {
        k: v for k, v in os.environ.items()
        if not k.startswith(("GAME_", "DJANGO_", "DATABASE_", "REDIS_", "ARENA_", "NOTIFICATIONS_", "PYTHON"))
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, what: str, timeout: float = BOUND):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


class WebhookReceiver(http.server.ThreadingHTTPServer):
    """The project's webhook endpoint: checks each POST with the doc's verifier."""

    def __init__(self, secret: str, verify) -> None:
        self.secret, self.verify = secret, verify
        self.events: list[dict] = []
        self.refused = 0
        self.seen_ids: set[str] = set()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if not receiver.verify(receiver.secret, self.headers, body):
                    receiver.refused += 1
                    self.send_response(401)
                else:
                    event = json.loads(body)
                    assert event["id"] == self.headers["X-Arena-Event-Id"]
                    assert event["type"] == self.headers["X-Arena-Event"]
                    if event["id"] not in receiver.seen_ids:  # at least once: de-duplicate
                        receiver.seen_ids.add(event["id"])
                        receiver.events.append(event)
                    self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def event(self, type_: str) -> dict | None:
        return next((e for e in self.events if e["type"] == type_), None)


def run_checked(args, **kwargs) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@contextlib.contextmanager
def processes():
    """Started processes; at the end each is stopped with everything it started
    (the web server's zygote and game servers run in sessions of their own)."""
    started: list[subprocess.Popen] = []
    try:
        yield started
    finally:
        family = []
        for proc in started:
            with contextlib.suppress(psutil.Error):
                family += psutil.Process(proc.pid).children(recursive=True)
            proc.send_signal(signal.SIGTERM)
        for proc in started:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        for child in family:
            with contextlib.suppress(psutil.Error):
                child.kill()


def test_installed_wheel_in_a_fresh_project(tmp_path):
    blocks = snippets()

    # 1. Install: the doc says `pip install django-arena`; here, the wheel of this checkout.
    assert commands(blocks["install"]) == [["pip", "install", "django-arena"]]
    # Built from a copy of what a source distribution holds, so no build/ directory
    # is left in the checkout (nor can a stale one add files to the wheel).
    source = tmp_path / "source"
    shutil.copytree(ROOT / "arena", source / "arena", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    run_checked([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(tmp_path / "dist"), "-q"])
    (wheel,) = (tmp_path / "dist").glob("django_arena-*.whl")
    venv.create(tmp_path / "venv", with_pip=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    run_checked([python, "-m", "pip", "install", "-q", str(wheel)], cwd=tmp_path)
    installed = run_checked([python, "-c", "import arena; print(arena.__file__)"], cwd=tmp_path, env=clean_env())
    assert installed.startswith(str(tmp_path / "venv"))  # the wheel's arena, not this checkout's
    run_checked([python, "-c", "import importlib.resources as r; assert (r.files('arena.web') / 'templates/web/base.html').is_file()"],
                cwd=tmp_path, env=clean_env())

    # A project of its own, with its own user model and token scheme.
    site = tmp_path / "site"
    site.mkdir()
    run_checked([str(tmp_path / "venv" / "bin" / "django-admin"), "startproject", "hostsite", str(site)])
    accounts = site / "accounts"
    accounts.mkdir()
    for name, text in {"__init__.py": "", "models.py": ACCOUNTS_MODELS, "auth.py": ACCOUNTS_AUTH,
                       "apps.py": ACCOUNTS_APPS, "push.py": ACCOUNTS_PUSH,
                       "receivers.py": blocks["receiver"]}.items():
        (accounts / name).write_text(text)

    # 2-3. Settings and URLs: the doc's blocks, appended as a user would paste them.
    project_settings = site / "hostsite" / "settings.py"
    project_settings.write_text(
        project_settings.read_text()
        + '\nAUTH_USER_MODEL = "accounts.User"\nINSTALLED_APPS += ["accounts"]\n'
        + blocks["settings"] + blocks["auth"]
        + "\nGAME_COUNTDOWN = 0.3\nGAME_PLAYER_CONNECT_TIMEOUT = 60.0\nGAME_SERVER_LAUNCH_TIMEOUT = 30.0\n"
    )
    project_urls = site / "hostsite" / "urls.py"
    project_urls.write_text(project_urls.read_text() + "\n" + blocks["urls"])

    secret = "s3cret-" + os.urandom(8).hex()
    verify_namespace: dict = {}
    exec(blocks["verify"], verify_namespace)  # the doc's verifier, as the receiver runs it
    webhook = WebhookReceiver(secret, verify_namespace["verify_arena_webhook"])
    threading.Thread(target=webhook.serve_forever, daemon=True).start()
    low, high = os.environ.get("ARENA_TEST_PORTS", "26000-26999").split("-")
    push_log = tmp_path / "push.jsonl"
    env = clean_env() | {
        "GAME_SERVER_MIN_PORT": low,
        "GAME_SERVER_MAX_PORT": high,
        "ARENA_WEBHOOK_URL": f"http://127.0.0.1:{webhook.server_address[1]}/hooks/arena",
        "ARENA_WEBHOOK_SECRET": secret,
        "PUSH_LOG": str(push_log),
    }

    def manage(*args: str) -> str:
        return run_checked([python, "manage.py", *args], cwd=site, env=env)

    manage("check", "--fail-level", "WARNING")
    manage("makemigrations", "accounts")
    # 4. Migrate; no migration of the project's own tables comes from Arena.
    for command in commands(blocks["migrate"]):
        assert command[:2] == ["python", "manage.py"]
        manage(*command[2:])
    manage("makemigrations", "--check", "--dry-run")
    manage("shell", "-c", SETUP_USERS)

    # 8. Run: the web server and the supervisor, as the doc says.
    web_port = free_port()
    run_lines = commands(blocks["run"])
    assert [line[:3] for line in run_lines] == [["python", "manage.py", "runserver"], ["python", "manage.py", "supervise"]]
    with processes() as started:
        for line in run_lines:
            extra = [f"127.0.0.1:{web_port}", "--noreload"] if line[2] == "runserver" else []
            started.append(subprocess.Popen(
                [python, "manage.py", *line[2:], *extra], cwd=site, env=env,
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"{line[2]}.log", "ab"),
            ))

        def api(key: str) -> ArenaApi:
            return ArenaApi(f"http://127.0.0.1:{web_port}", key, scheme="Bearer")

        def answers() -> bool:
            try:
                api("ops-key").match("00000000-0000-0000-0000-000000000000")
            except ApiError as error:
                return error.status == 404
            except OSError:  # not listening yet
                return False
            return False

        wait_for(answers, "the web server")
        # The project's auth decides: an unknown key is refused, alice may not create matches.
        with pytest.raises(ApiError) as refused:
            api("nobody").create_match(["alice@example.com", "bob@example.com"])
        assert refused.value.status == 401
        with pytest.raises(ApiError) as refused:
            api("alice-key").create_match(["alice@example.com", "bob@example.com"])
        assert (refused.value.status, refused.value.body["error"]) == (403, "permission_denied")

        status, match = api("ops-key").request(
            "PUT", "/api/match", {"players": ["alice@example.com", "bob@example.com"], "points_to_win": 1}, timeout=BOUND
        )
        assert status == 201, match
        assert match["status"] == "waiting" and match["port"]
        assert [p["username"] for p in match["players"]] == ["alice@example.com", "bob@example.com"]

        # match_ready through the signal receiver (the doc's block, in the web process)...
        def pushed() -> list[dict]:
            return [json.loads(line) for line in push_log.read_text().splitlines()] if push_log.exists() else []

        ready = wait_for(lambda: len(pushed()) == 2 and pushed(), "the signal receiver's pushes")
        assert {m["match"] for m in ready} == {match["id"]} and {m["port"] for m in ready} == {match["port"]}
        # ...and through the signed webhook.
        hooked = wait_for(lambda: webhook.event("match.ready"), "the webhook's match.ready")
        assert webhook.refused == 0
        assert hooked["match"]["id"] == match["id"] and hooked["match"]["port"] == match["port"]
        players = {p["username"]: p for p in hooked["match"]["players"]}
        by_user = {m["user_id"]: m for m in ready}
        assert {p["user_id"] for p in players.values()} == set(by_user)  # UUID keys, as strings
        assert all(len(uid) == 36 for uid in by_user)

        # Play it with the Python client and the tokens the receiver pushed.
        alice_token = by_user[players["alice@example.com"]["user_id"]]["token"]
        bob_token = by_user[players["bob@example.com"]["user_id"]]["token"]

        async def play() -> dict:
            alice = GameClient(ready[0]["host"], ready[0]["port"], alice_token)
            bob = GameClient(ready[0]["host"], ready[0]["port"], bob_token)
            await asyncio.gather(alice.connect(timeout=60), bob.connect(timeout=60))
            assert {alice.role, bob.role} == {"player"}
            # Both paddles pressed against the top: the first serve scores.
            for _ in range(3):
                await alice.send_input(-1)
                await bob.send_input(-1)
            over = await alice.wait_for(wire.GAME_OVER, timeout=BOUND)
            await asyncio.gather(alice.close(), bob.close())
            return over

        over = asyncio.run(play())
        assert over["winner"] in players

        # The result is in the project's database, winner and all.
        result = wait_for(
            lambda: (r := json.loads(manage("shell", "-c", READ_RESULT.replace("MATCH_ID", match["id"])).splitlines()[-1]))["status"] == "finished" and r,
            "the result in the project's database",
        )
        assert result["winner"] == over["winner"]
        assert result["winner_pk"] == players[over["winner"]]["user_id"]
        assert result["scores"][over["winner"]] == 1
        # The game server's events reach the webhook too (from its thread, or the supervisor).
        finished = wait_for(lambda: webhook.event("match.finished"), "the webhook's match.finished")
        assert finished["match"]["winner"] == over["winner"]
        assert webhook.refused == 0
    webhook.shutdown()
