"""Shared fixtures: users, API clients, and clean-up of game-server processes.

Integration tests run the real thing: the API launches real game-server processes
that open the same (test) database and listen on real ports of 127.0.0.1.
"""
from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import secrets
import socket
import subprocess
import sys
import time
import uuid

import psutil
import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

# The game servers' port range under test: ARENA_TEST_PORTS=26000-26999 by default;
# two suites run side by side (two checkouts) each take a range of their own.
TEST_MIN_PORT, TEST_MAX_PORT = (int(p) for p in os.environ.get("ARENA_TEST_PORTS", "26000-26999").split("-"))

# Settings the game-server children read from their environment, and this process
# from django.conf.settings: fast countdowns and a port range of their own.
TEST_GAME_ENV = {
    "GAME_SERVER_MIN_PORT": str(TEST_MIN_PORT),
    "GAME_SERVER_MAX_PORT": str(TEST_MAX_PORT),
    "GAME_COUNTDOWN": "0.3",
    "GAME_PLAYER_CONNECT_TIMEOUT": "20",
    "GAME_SERVER_LAUNCH_TIMEOUT": "30",  # a bound for loaded machines, not a speed target
    "ARENA_METRICS_FLUSH_SECONDS": "1",  # a match's figures show while it plays
}


def apply_game_settings(values: dict[str, str], monkeypatch: pytest.MonkeyPatch | None = None) -> None:
    """Set game settings for this process and the game servers it launches."""
    for name, value in values.items():
        current = getattr(settings, name)
        typed = type(current)(value) if not isinstance(current, list) else value.split(",")
        if monkeypatch:
            monkeypatch.setenv(name, value)
            monkeypatch.setattr(settings, name, typed)
        else:
            os.environ[name] = value
            setattr(settings, name, typed)


@pytest.fixture(scope="session", autouse=True)
def _game_settings():
    apply_game_settings(TEST_GAME_ENV)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed only
    os.environ.setdefault("ARENA_LOG_LEVEL", "INFO")  # game servers log their statistics at exit


# A key of this run's own, never the public development key: pytest-django runs the
# tests with DEBUG off, and with DEBUG off the ASGI/WSGI applications and the game
# servers refuse that key (arena/security/secret_key.py). Every process the tests
# start inherits it through the environment, so they all sign alike.
TEST_SECRET_KEY = os.environ.get("SECRET_KEY") or "arena-test-" + secrets.token_urlsafe(48)


@pytest.fixture(scope="session", autouse=True)
def _test_secret_key():
    os.environ["SECRET_KEY"] = TEST_SECRET_KEY
    settings.SECRET_KEY = TEST_SECRET_KEY


def forget_sign_in_failures() -> None:
    """Drop every count of the sign-in throttle: in this process's cache, or in
    Redis, where the counts of every process of the run live (only the throttle's
    keys: the channel layer shares that database)."""
    from django.core.cache import caches

    from arena.security.throttle import KEY_PREFIX

    config = settings.CACHES["default"]
    if config["BACKEND"].endswith("RedisCache"):
        import redis

        client = redis.Redis.from_url(config["LOCATION"])
        try:
            keys = list(client.scan_iter(match=f"*{KEY_PREFIX}:*", count=1000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()
    else:
        caches["default"].clear()


@pytest.fixture(autouse=True)
def _fresh_sign_in_throttle():
    """Each test starts with no failed sign-in counted (a fuzzing test's failures
    would otherwise throttle the next test's sign-ins from the same address)."""
    forget_sign_in_failures()
    yield


@pytest.fixture
def game_settings(monkeypatch):
    """Override game settings for one test: game_settings(GAME_COUNTDOWN="1")."""

    def apply(**values: str) -> None:
        apply_game_settings({k: str(v) for k, v in values.items()}, monkeypatch)

    return apply


#: The hosting modes the game-server tests run in: one process per match (the
#: default) and up to 8 matches per process.
HOSTING_MODES = (1, 8)


@pytest.fixture(params=HOSTING_MODES, ids=lambda n: f"per_process={n}")
def hosting_mode(request, game_settings) -> int:
    """Run the test once per hosting mode (GAME_MATCHES_PER_PROCESS)."""
    game_settings(GAME_MATCHES_PER_PROCESS=request.param)
    return request.param


@pytest.fixture
def users(db):
    """alice, bob, carol (password = name) and ops, who may create matches."""
    made = {name: User.objects.create_user(name, password=name) for name in ("alice", "bob", "carol", "dave")}
    ops = User.objects.create_user("ops", password="ops")
    ops.user_permissions.add(Permission.objects.get(codename="add_match", content_type__app_label="matches"))
    made["ops"] = ops
    return made


def client_for(user: User | None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


@pytest.fixture
def ops_api(users) -> APIClient:
    return client_for(users["ops"])


def game_servers_started_here() -> set[int]:
    """The game servers this process started, itself or through a zygote or web
    server of its own: descendants whose stderr is a match's log (`<match id>.log`).
    This also finds a server whose match row carries no pid."""
    log_dir = os.path.realpath(settings.GAME_SERVER_LOG_DIR)
    found = set()
    for child in psutil.Process().children(recursive=True):
        try:
            stderr = os.readlink(f"/proc/{child.pid}/fd/2")
        except OSError:
            continue
        folder, name = os.path.split(stderr)
        if folder == log_dir and name.endswith(".log") and is_uuid(name.removesuffix(".log")):
            found.add(child.pid)
    return found


def is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


@pytest.fixture(autouse=True)
def _no_stray_game_servers(request):
    """Kill any game server a test left running (after the test, before the DB flush:
    one still writing to the database could deadlock PostgreSQL's TRUNCATE)."""
    yield
    if "django_db_setup" not in request.fixturenames:
        return
    from arena.matches.launcher.base import kill_group, stop_game_server
    from arena.matches.models import Match

    pids = game_servers_started_here()
    rows = []
    with contextlib.suppress(Exception):  # a test may have broken the connection; the rest still counts
        rows = list(Match.objects.exclude(pid=None).values_list("pid", "id", "port"))  # e.g. outlived its zygote
    for pid in pids:
        kill_group(pid)
    ports = set()
    for pid, match_id, port in rows:
        if pid not in pids:
            # A process serving several matches loses this match alone (neighbours
            # of other tests' leftovers are theirs); a one-match process is killed.
            stop_game_server(pid, str(match_id))
            if port:
                ports.add(port)
        pids.add(pid)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline and (
        any(pid_alive(pid) and not shared_process(pid) for pid in pids) or not all(map(port_is_free, ports))
    ):
        time.sleep(0.02)


def game_server_done(pid: int, port: int) -> bool:
    """A match's server let go of it: its process exited (one match per process) or,
    in a process serving several, its port is free (the process serves on)."""
    if settings.GAME_MATCHES_PER_PROCESS > 1:
        return port_is_free(port)
    return not pid_alive(pid)


def shared_process(pid: int) -> bool:
    """True if `pid` is a game server serving several matches (it stays up)."""
    from arena.gameserver.control import socket_path

    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            zygote_child = b"arena.gameserver.zygote" in f.read()
        stderr = os.readlink(f"/proc/{pid}/fd/2")
    except OSError:
        return False
    # A shared process keeps the zygote's stderr; a one-match child's is its match log.
    return zygote_child and stderr.endswith("zygote.log") and socket_path(settings.GAME_SERVER_RUN_DIR, pid).exists()


def pytest_sessionstart(session):
    """Drop the test databases of earlier runs that were killed before cleaning up.

    Each run names its test database after its pid (see arena/settings.py); a
    database whose run is gone is garbage. One whose pid is alive is left alone.
    """
    config = settings.DATABASES["default"]
    test_name = str(config.get("TEST", {}).get("NAME") or "").removesuffix(".sqlite3")
    stem, _, pid = test_name.rpartition("-" if config["ENGINE"].endswith("sqlite3") else "_")
    if not pid.isdigit():
        return
    if config["ENGINE"].endswith("sqlite3"):
        for path in glob.glob(glob.escape(stem) + "-*.sqlite3*"):
            other = os.path.basename(path).removeprefix(os.path.basename(stem) + "-").split(".")[0]
            if other.isdigit() and not pid_alive(int(other)):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(path)
        return
    import psycopg

    params = {"host": config.get("HOST") or None, "port": config.get("PORT") or None, "user": config.get("USER"),
              "password": config.get("PASSWORD") or None, "dbname": "postgres"}
    try:
        with psycopg.connect(**params, autocommit=True, connect_timeout=5) as conn:
            names = [row[0] for row in conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s",
                                                    [stem.replace("_", r"\_") + r"\_%"])]
            for name in names:
                other = name.removeprefix(stem + "_")
                if other.isdigit() and not pid_alive(int(other)):
                    try:
                        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
                    except psycopg.Error as error:  # e.g. still in use by a stray process
                        print(f"left stale test database {name}: {error}", file=sys.stderr)
    except psycopg.Error as error:  # not ours to fix here: the run itself will say what is wrong
        print(f"could not look for stale test databases: {error}", file=sys.stderr)


def pytest_sessionfinish(session, exitstatus):
    """SQLite leaves -wal/-shm files behind when the test database is deleted."""
    test_name = settings.DATABASES["default"].get("TEST", {}).get("NAME")
    if test_name and settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        for suffix in ("-wal", "-shm"):
            try:
                os.remove(str(test_name) + suffix)
            except FileNotFoundError:
                pass


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """True while the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def run(coro):
    return asyncio.run(coro)


async def db_call(fn, *args, **kwargs):
    """Run an ORM call from async test code, closing the worker thread's connection."""
    from asgiref.sync import sync_to_async
    from django.db import connection

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    return await sync_to_async(call)()


@contextlib.contextmanager
def running_site(extra_env: dict[str, str] | None = None, port: int | None = None, log=subprocess.DEVNULL):
    """`manage.py runserver` (ASGI: pages, API, notification socket), as `make demo`
    runs it, in its own process on the test database; yields its base URL."""
    from arena.matches.launcher.base import child_environment

    if port is None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=settings.BASE_DIR, env=child_environment() | (extra_env or {}),
        stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT if log is not subprocess.DEVNULL else log,
    )
    try:
        deadline = time.monotonic() + 60  # a loaded machine can take that long
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "Django did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def assert_replay_reproduces(match_id: str, *clients) -> dict:
    """Replay a match a real game server played and check it bit for bit: every
    broadcast snapshot (the digest recorded live), the final score and
    winner, and, for each of `clients` (`arena.client.GameClient`s that watched
    it), that the snapshots it received are the replay's, in a row. Returns the replay."""
    from arena.gameserver import wire
    from arena.matches import replays, selectors

    replay = replays.replay_get(match_id)
    frames: list[dict] = []
    check = replays.verify(replay, keep=frames)
    assert check.ok, check.problems
    assert check.snapshots == replay["digest"]["snapshots"] > 0
    match = selectors.match_get(match_id)
    assert replay["end"]["status"] == match.status and replay["end"]["reason"] == match.finish_reason
    assert check.score == replay["end"]["score"]
    if any(replay["end"]["score"].values()):
        assert check.score == selectors.match_score(match)
    if match.winner_side:
        assert replay["end"]["winner"] == match.winner_side
    for client in clients:
        received = [payload for name, payload in client.history if name == wire.STATE]
        assert received, "the client saw no snapshot"
        start = next((i for i, frame in enumerate(frames) if frame == received[0]), None)
        assert start is not None, f"the first snapshot received ({received[0]}) is not in the replay"
        assert frames[start:start + len(received)] == received, "the snapshots received differ from the replay's"
    return replay
