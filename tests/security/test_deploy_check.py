"""`manage.py check --deploy --fail-level WARNING` passes with the environment the
README documents for a deployment, read from the README itself so the two cannot
drift apart; the same environment without SECRET_KEY fails with arena.E001."""
from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = pytest.mark.slow

README = Path(settings.BASE_DIR) / "README.md"


def documented_environment() -> dict[str, str]:
    """The `NAME=value` lines of the first `sh` block of "Running it for real";
    a `<placeholder>` value is filled in (SECRET_KEY: a fresh random key)."""
    text = README.read_text()
    section = text.split("## Running it for real", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "README: no sh block under 'Running it for real'"
    env = {}
    for line in block.group(1).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.removeprefix("export ").partition("=")
        assert sep and re.fullmatch(r"[A-Z_][A-Z0-9_]*", name), f"README env line: {line!r}"
        if value.startswith("<"):
            assert name == "SECRET_KEY", f"no value for the placeholder of {name}"
            value = secrets.token_urlsafe(50)
        env[name] = value
    return env


def check_deploy(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    """Exactly `env` (plus PATH and a scratch directory for var/), nothing of this run's."""
    full = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARENA_VAR_DIR": str(tmp_path), **env}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        env=full, cwd=settings.BASE_DIR, capture_output=True, text=True, timeout=120,
    )


def test_documented_environment_passes_check_deploy(tmp_path):
    env = documented_environment()
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "SECURE_SSL_REDIRECT",
                 "SECURE_HSTS_SECONDS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        assert name in env, f"the README's deployment environment does not set {name}"
    done = check_deploy(env, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "System check identified no issues" in done.stdout


def test_documented_environment_without_secret_key_fails(tmp_path):
    env = documented_environment()
    del env["SECRET_KEY"]
    done = check_deploy(env, tmp_path)
    assert done.returncode != 0
    assert "arena.E001" in done.stderr and "Set the SECRET_KEY environment variable" in done.stderr


def test_laptop_defaults_pass_check(tmp_path):
    """`make demo`'s settings (nothing set): DEBUG on, the development key, no HTTPS."""
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=settings.BASE_DIR, capture_output=True,
                          text=True, timeout=120,
                          env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "ARENA_VAR_DIR": str(tmp_path)})
    assert done.returncode == 0, done.stdout + done.stderr
