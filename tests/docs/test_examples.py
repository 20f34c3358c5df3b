"""The client examples of docs/protocol.md ("Client walk-through") run against a real match.

docs/examples/player.py (python-socketio) and docs/examples/player.mjs
(socket.io-client) are run as separate programs, as a client writer would run
them; launch.sh is run against a real Django server. The walk-through quotes the
examples, and the quotes are checked against the files.
"""
from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher

from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import running_site
from tests.integration.test_game import HOST, game_token, launch

ROOT = Path(settings.BASE_DIR)
EXAMPLES = ROOT / "docs" / "examples"
PROTOCOL = ROOT / "docs" / "protocol.md"
BOUND = 60.0  # seconds for a whole match, launch to exit
PYTHON = sys.executable  # the venv's python: it has python-socketio

def node() -> str:
    """The node binary, once socket.io-client is installed; a clear failure otherwise."""
    binary = shutil.which("node")
    if binary is None:
        pytest.fail("`node` is not on PATH: the JavaScript example needs Node.js 20+ (see README, Quick start)")
    if not (ROOT / "node_modules" / "socket.io-client" / "package.json").is_file():
        pytest.fail(
            "node_modules/socket.io-client is missing: run `npm install` at the repository root "
            "(`make test` does it) before running tests/docs"
        )
    return binary


def python_player(*args: str) -> list[str]:
    return [PYTHON, str(EXAMPLES / "player.py"), *args, "--timeout", str(BOUND)]


def node_player(*args: str) -> list[str]:
    return [node(), str(EXAMPLES / "player.mjs"), *args, "--timeout", str(BOUND)]


class Program:
    """A running example program whose output is read as it comes."""

    def __init__(self, command: list[str]) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ARENA_")}
        self.proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            start_new_session=True,
        )
        self.out: list[str] = []
        self.err: list[str] = []
        self.readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for reader in self.readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line)

    def wait_for_line(self, prefix: str, deadline: float) -> bool:
        while time.monotonic() < deadline and self.proc.poll() is None:
            if any(line.startswith(prefix) for line in self.out):
                return True
            time.sleep(0.05)
        return any(line.startswith(prefix) for line in self.out)

    def finish(self, deadline: float) -> tuple[int | None, str, str, bool]:
        """(exit status, stdout, stderr, timed out); killed at `deadline`."""
        try:
            self.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            timed_out = True
        for reader in self.readers:
            reader.join(5)
        return self.proc.returncode, "".join(self.out), "".join(self.err), timed_out


def run_all(
    commands: dict[str, list[str]], deadline: float, connected_first: tuple[str, ...] = ()
) -> dict[str, tuple[int, str, str]]:
    """Run every program at once, those in `connected_first` until they print their role
    before the others start; wait for all until `deadline`."""
    programs = {name: Program(commands[name]) for name in connected_first}
    for name, program in programs.items():
        assert program.wait_for_line("role: ", deadline), f"{name} did not connect: {program.finish(deadline)}"
    programs.update({name: Program(command) for name, command in commands.items() if name not in programs})
    finished = {name: program.finish(deadline) for name, program in programs.items()}
    results = {name: (rc, out, err) for name, (rc, out, err, _) in finished.items()}
    timed_out = [name for name, (*_, late) in finished.items() if late]
    assert not timed_out, f"{timed_out} still running after {BOUND} s: {report(results)}"
    return results


def report(results: dict[str, tuple[int, str, str]]) -> str:
    return "\n".join(f"--- {name}: exit {rc}\n{out}{err}" for name, (rc, out, err) in results.items())


def game_over_of(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("game_over ")]
    assert len(lines) == 1, f"expected one game_over line in:\n{output}"
    return json.loads(lines[0].removeprefix("game_over "))


def check_match(results: dict[str, tuple[int, str, str]], roles: dict[str, str], match_id: str) -> dict:
    """Every program exited 0 with its role and the same game_over, which the DB recorded."""
    for name, (rc, out, err) in results.items():
        assert rc == 0 and err == "", report(results)
        assert f"role: {roles[name]}\n" in out, report(results)
    overs = [game_over_of(out) for _, out, _ in results.values()]
    assert all(over == overs[0] for over in overs), report(results)
    over = overs[0]
    assert over["reason"] == "points" and over["winner"] in {"alice", "bob"}, over
    assert sorted(over["score"].values()) == [0, 1], over
    match = Match.objects.select_related("winner").get(pk=match_id)
    assert match.status == MatchStatus.FINISHED and match.finish_reason == "points"
    assert match.winner.username == over["winner"]
    assert {p.user.username: p.score for p in match.players.all()} == {
        "alice": over["score"]["left"],
        "bob": over["score"]["right"],
    }
    return over


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_python_and_node_examples_play_a_match(ops_api, users, game_settings):
    node()  # fail early and clearly without node_modules
    game_settings(GAME_PLAYER_CONNECT_TIMEOUT=str(BOUND))  # a loaded machine starts programs slowly
    deadline = time.monotonic() + BOUND
    created = launch(ops_api, points_to_win=1)
    match_id, port = created["id"], str(created["port"])
    address = ["--host", HOST, "--port", port]
    results = run_all(
        {
            "player.py as alice": python_player(*address, "--token", game_token(users["alice"], match_id)),
            "player.mjs as bob": node_player(*address, "--token", game_token(users["bob"], match_id)),
        },
        deadline,
    )
    check_match(results, {"player.py as alice": "player left", "player.mjs as bob": "player right"}, match_id)
    assert time.monotonic() < deadline


# --- launch.sh and the --api mode, against a real Django server ----------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


@pytest.fixture
def django_url(users, game_settings):
    """A real Django (runserver) on the test database, where the users can log in."""
    game_settings(GAME_PLAYER_CONNECT_TIMEOUT=str(BOUND))  # for the game servers it launches
    # The tests hash passwords with MD5 (conftest), which that Django does not accept.
    for user in users.values():
        user.password = PBKDF2PasswordHasher().encode(user.username, PBKDF2PasswordHasher().salt(), iterations=1000)
        user.save(update_fields=["password"])
    with running_site() as url:
        yield url


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("logs_in", ["player.py", "player.mjs"])
def test_launch_script_api_mode_and_a_spectator(users, django_url, logs_in):
    """launch.sh makes the match and the tokens; one example logs in by itself; one watches."""
    node()
    launched = subprocess.run(
        ["sh", str(EXAMPLES / "launch.sh"), "ops:ops", "alice:alice", "bob:bob"],
        cwd=ROOT, env={**os.environ, "ARENA_API": django_url, "POINTS": "1"},
        capture_output=True, text=True, timeout=30,
    )
    assert launched.returncode == 0, launched.stderr
    lines = launched.stdout.splitlines()
    assert len(lines) == 3, launched.stdout
    _, match_id, host, port = lines[0].split()
    tokens = {}
    for line, (username, side) in zip(lines[1:], [("alice", "left"), ("bob", "right")]):
        name, seen_side, token = line.split()
        assert (name, seen_side) == (username, side)
        tokens[username] = token
    assert lines[0] == f"match {match_id} {HOST} {port}"
    match = Match.objects.get(pk=match_id)
    assert match.status == MatchStatus.WAITING and match.points_to_win == 1

    deadline = time.monotonic() + BOUND
    address = ["--host", host, "--port", port]
    # a bad token is never refused, it makes a spectator: a program that meant to play says so
    bad = tokens["alice"][:-1] + ("x" if tokens["alice"][-1] != "x" else "y")
    bad_token = {
        "bad token (player.py)": python_player(*address, "--token", bad),
        "bad token (player.mjs)": node_player(*address, "--token", bad),
    }
    api = ["--api", django_url, "--match", match_id]
    if logs_in == "player.py":
        commands = {
            "spectator (player.py)": python_player(*address),
            "alice (player.py --api)": python_player(*api, "--username", "alice", "--password", "alice"),
            "bob (player.mjs)": node_player(*address, "--token", tokens["bob"]),
        }
    else:
        commands = {
            "spectator (player.mjs)": node_player(*address),
            "alice (player.py)": python_player(*address, "--token", tokens["alice"]),
            "bob (player.mjs --api)": node_player(*api, "--username", "bob", "--password", "bob"),
        }
    spectator_name = next(iter(commands))
    results = run_all({**commands, **bad_token}, deadline, connected_first=(spectator_name,))
    for name in bad_token:
        rc, out, err = results.pop(name)
        assert rc == 1 and "role: spectator" in out and "does not make a player" in err, (name, out, err)
    roles = dict(zip(commands, ["spectator", "player left", "player right"]))
    check_match(results, roles, match_id)
    assert "score: " in results[spectator_name][1]  # a spectator sees everything but sends nothing


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_launch_script_reports_api_errors(users, django_url):
    """A wrong password: launch.sh says which call failed and with which code, and stops."""
    done = subprocess.run(
        ["sh", str(EXAMPLES / "launch.sh"), "ops:wrong", "alice:alice", "bob:bob"],
        cwd=ROOT, env={**os.environ, "ARENA_API": django_url}, capture_output=True, text=True, timeout=30,
    )
    assert done.returncode == 1 and done.stdout == ""
    assert "POST /api/auth/token: 401" in done.stderr and "invalid_credentials" in done.stderr


# --- the programs on their own, without a match -------------------------------------------


def test_examples_refuse_bad_usage_and_dead_servers():
    port = str(free_port())  # nothing listens there
    for command in (python_player(), node_player()):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=20,
                              env={k: v for k, v in os.environ.items() if not k.startswith("ARENA_")})
        assert done.returncode == 2, done
    for command in (python_player("--host", HOST, "--port", port), node_player("--host", HOST, "--port", port)):
        started = time.monotonic()
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)
        assert done.returncode == 1 and "could not connect" in done.stderr, done
        assert time.monotonic() - started < 20


def test_python_example_needs_only_socketio_and_the_standard_library():
    tree = ast.parse((EXAMPLES / "player.py").read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"socketio"}


def test_javascript_example_needs_only_socketio_client():
    source = (EXAMPLES / "player.mjs").read_text()
    modules = set(re.findall(r'^import .* from "([^"]+)";$', source, re.M))
    assert {m for m in modules if not m.startswith("node:")} == {"socket.io-client"}


# --- the walk-through and the files agree ---------------------------------------------------


def walkthrough() -> str:
    text = PROTOCOL.read_text()
    start = text.index("\n## Client walk-through\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


QUOTE_RE = re.compile(r"<!-- quoted from (docs/examples/[\w.]+) -->\n```\w*\n(.*?)\n```", re.S)


def is_excerpt(quote: str, text: str) -> bool:
    """`quote` is a run of consecutive lines of `text`, both dedented the same way."""
    wanted = textwrap.dedent(quote).splitlines()
    lines = text.splitlines()
    return any(
        textwrap.dedent("\n".join(lines[i : i + len(wanted)])).splitlines() == wanted
        for i in range(len(lines) - len(wanted) + 1)
    )


def test_walkthrough_quotes_the_examples_verbatim():
    section = walkthrough()
    quotes = QUOTE_RE.findall(section)
    quoted_files = {path for path, _ in quotes}
    assert quoted_files == {"docs/examples/player.py", "docs/examples/player.mjs", "docs/examples/launch.sh"}
    for path, quote in quotes:
        assert is_excerpt(quote, (ROOT / path).read_text()), f"the walk-through quotes {path}, but it no longer says:\n{quote}"
    for path in ("examples/player.py", "examples/player.mjs", "examples/launch.sh"):
        assert f"]({path})" in section, f"the walk-through does not link {path}"


def test_walkthrough_answers_the_four_questions():
    headings = re.findall(r"^### (.+)$", walkthrough(), re.M)
    for topic in ("connect via socket.io", "authenticate as a player", "send input updates", "receive game updates"):
        assert any(topic in heading.lower() for heading in headings), (topic, headings)


def test_walkthrough_sits_between_the_game_server_and_what_follows():
    text = PROTOCOL.read_text()
    game_server, walk = text.index("\n## Game server (Socket.IO)\n"), text.index("\n## Client walk-through\n")
    assert game_server < walk
    assert "\n## " not in text[game_server + 1 : walk]  # right after the Game server section
