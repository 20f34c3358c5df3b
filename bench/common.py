"""What every benchmark shares: its own database and settings, a real Django
server, process clean-up, statistics and tables.

Everything a benchmark starts carries the environment variable `ARENA_BENCH_RUN`
with a value unique to the run; `cleanup()` kills every process that has it, so
no game server, zygote or web server outlives a benchmark, however it ended.
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
BENCH_DIR = BASE_DIR / "var" / "bench"
RESULTS_DIR = BENCH_DIR / "results"
RUN_ID = os.environ.get("ARENA_BENCH_RUN") or uuid.uuid4().hex
os.environ["ARENA_BENCH_RUN"] = RUN_ID
HOST = "127.0.0.1"

# Settings of the web server and of the game servers it launches.
BENCH_SETTINGS = {
    "DJANGO_SETTINGS_MODULE": "arena.settings",
    "DEBUG": "0",  # no query log growing in long-lived processes
    # DEBUG off needs a key of the site's own (the development one is refused); one per run
    "SECRET_KEY": os.environ.get("SECRET_KEY") or secrets.token_urlsafe(50),
    "ARENA_LOG_LEVEL": "INFO",  # game servers log their loop statistics at exit
    "GAME_SERVER_MIN_PORT": "27000",
    "GAME_SERVER_MAX_PORT": "27999",
    "GAME_SERVER_LAUNCH_TIMEOUT": "30",
    "GAME_PLAYER_CONNECT_TIMEOUT": "30",
    "GAME_COUNTDOWN": "0",
    "GAME_TICK_RATE": "60",  # the rates the targets are stated at
    "GAME_SNAPSHOT_RATE": "30",
    "GAME_SERVER_LOG_DIR": str(BENCH_DIR / "log"),
    "GAME_SERVER_RUN_DIR": str(BENCH_DIR / "run"),
    "PYTHONUNBUFFERED": "1",
}


def bench_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)  # the in-memory channel layer: nothing outside this machine
    env.update(BENCH_SETTINGS)
    env["DATABASE_URL"] = os.environ.get("BENCH_DATABASE_URL", f"sqlite:///{BENCH_DIR / 'bench.sqlite3'}")
    env["ARENA_BENCH_RUN"] = RUN_ID
    env.update({k: str(v) for k, v in overrides.items()})
    return env


def add_emit_option(parser) -> None:
    """`--emit`: game servers broadcast through python-socketio's emit(), to compare."""
    parser.add_argument("--emit", action="store_true",
                        help="broadcast with python-socketio's emit() (GAME_DIRECT_BROADCAST=0), for comparison")


def add_compare_env_option(parser) -> None:
    """`--compare-env NAME=VALUE[,NAME=VALUE]`: each step also with these settings, in the same run."""
    parser.add_argument(
        "--compare-env", action="append", default=[], metavar="NAME=VALUE[,NAME=VALUE]",
        help="run every step a second time with these environment variables (repeatable: one more "
             "variant each), e.g. --compare-env ARENA_METRICS=0; rows are labelled with the variant",
    )


def env_variants(args) -> list[tuple[str, dict[str, str]]]:
    """(label, settings) of each variant `--compare-env` asks for, the unchanged one first."""
    variants = [("as is", {})]
    for spec in args.compare_env:
        pairs = [item.split("=", 1) for item in spec.split(",") if item.strip()]
        if any(len(pair) != 2 for pair in pairs):
            raise SystemExit(f"--compare-env wants NAME=VALUE[,NAME=VALUE], not {spec!r}")
        variants.append((spec, {name.strip(): value.strip() for name, value in pairs}))
    return variants


def broadcast_settings(args) -> dict[str, str]:
    """The game servers' broadcast setting for a benchmark run with `add_emit_option`."""
    return {"GAME_DIRECT_BROADCAST": "0" if args.emit else "1"}


def python() -> str:
    venv = BASE_DIR / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# --- database ----------------------------------------------------------------------


def prepare_database(players: int) -> dict:
    """Migrate the bench database and make sure `players` players exist.

    Returns {"ops": token, "players": [[username, api token], ...]}. Matches left
    live by an interrupted run are cancelled, so every player is free.
    """
    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    env = bench_env()
    subprocess.run(
        [python(), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=BASE_DIR, env=env, check=True, timeout=120
    )
    out = subprocess.run(
        [python(), "-m", "bench.setup_db", str(players)],
        cwd=BASE_DIR, env=env, check=True, timeout=120, capture_output=True, text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def insert_match(usernames: list[str], points_to_win: int):
    """A `launching` match of these players, written straight to the database (Django
    set up), for benchmarks that launch or serve it themselves instead of through the API."""
    from django.contrib.auth.models import User

    from arena.matches.models import Match, MatchPlayer
    from arena.matches.services import side_of_seat

    users = {user.username: user for user in User.objects.filter(username__in=usernames)}
    match = Match.objects.create(points_to_win=points_to_win)
    MatchPlayer.objects.bulk_create(
        MatchPlayer(match=match, user=users[name], side=side_of_seat(seat), seat=seat)
        for seat, name in enumerate(usernames)
    )
    return match


# --- processes -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def run_processes() -> list[int]:
    """Pids of every process started by this run (its marker is in their environment)."""
    marker = f"ARENA_BENCH_RUN={RUN_ID}".encode()
    mine = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == mine:
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            pass
    return found


def cleanup(grace: float = 3.0, exclude: Iterable[int] = ()) -> int:
    """SIGTERM, then SIGKILL, every process of this run. Returns how many there were."""
    skip = set(exclude) | {os.getpid(), os.getppid()} | _own_helpers()
    pids = [p for p in run_processes() if p not in skip]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(_running(p) for p in pids):
        time.sleep(0.05)
    for pid in pids:
        if _running(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    return len(pids)


def _own_helpers() -> set[int]:
    """This process's multiprocessing helpers (the resource tracker), not ours to kill."""
    import sys as _sys

    tracker = getattr(_sys.modules.get("multiprocessing.resource_tracker"), "_resource_tracker", None)
    pid = getattr(tracker, "_pid", None)
    return {pid} if pid else set()


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def children_of(pid: int) -> list[int]:
    import psutil

    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class DjangoServer:
    """The web server on 127.0.0.1, as in production: `daphne arena.asgi:application`,
    or with `server="gunicorn"` the WSGI API served by gunicorn (`workers` workers,
    `arena/gunicorn_conf.py`)."""

    def __init__(self, name: str, server: str = "daphne", workers: int = 2, **settings: str) -> None:
        self.name = name
        self.server = server
        self.workers = workers
        self.port = free_port()
        self.env = bench_env(**settings)
        self.url = f"http://{HOST}:{self.port}"
        self.proc: subprocess.Popen | None = None

    def command(self) -> list[str]:
        if self.server == "gunicorn":
            return [python(), "-m", "gunicorn", "-c", "python:arena.gunicorn_conf", "-w", str(self.workers),
                    "-b", f"{HOST}:{self.port}", "arena.wsgi:application"]
        return [python(), "-m", "daphne", "-b", HOST, "-p", str(self.port), "arena.asgi:application"]

    def __enter__(self) -> DjangoServer:
        BENCH_DIR.mkdir(parents=True, exist_ok=True)
        log = open(BENCH_DIR / f"{self.server}-{self.name}.log", "ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=BASE_DIR, env=self.env, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"daphne exited with {self.proc.returncode}; see {log.name}")
            try:
                urllib.request.urlopen(self.url + "/api/match/00000000-0000-0000-0000-000000000000", timeout=2)
            except urllib.error.HTTPError:
                return self  # it answers (401)
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("daphne did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        self.stop()

    def stop(self) -> None:
        if self.proc is None:
            return
        tree = children_of(self.proc.pid)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
        for pid in tree:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        self.proc = None

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def web_pids(self) -> list[int]:
        """The processes that serve requests: daphne, or gunicorn's master and workers."""
        import psutil

        if self.server != "gunicorn":
            return [self.pid()]
        return [self.pid()] + [p.pid for p in psutil.Process(self.pid()).children()
                               if "arena.gameserver.zygote" not in " ".join(p.cmdline())]


# --- game-server processes ---------------------------------------------------------------


def game_servers(server_pid: int) -> list[int]:
    """Game-server processes under a web server (its children, or its zygote's),
    leaving out the zygote and its spares (which have no match yet)."""
    import psutil

    found = []
    for pid in children_of(server_pid):
        try:
            cmd = psutil.Process(pid).cmdline()
            if "arena.gameserver.zygote" in cmd and psutil.Process(pid).ppid() == server_pid:
                continue  # the zygote itself
            if os.readlink(f"/proc/{pid}/fd/2").endswith("zygote.log") and not shared_process(pid):
                continue  # a spare: its stderr becomes a match's log when it gets one
        except (psutil.NoSuchProcess, OSError):
            continue
        if any("arena.gameserver" in part for part in cmd):
            found.append(pid)
    return found


def shared_process(pid: int) -> bool:
    """A game-server process serving several matches (checked on a process whose
    stderr is the zygote's log: a spare has no control socket until it serves)."""
    return (Path(BENCH_SETTINGS["GAME_SERVER_RUN_DIR"]) / f"{pid}.sock").exists()


def loop_stats_from_logs(match_ids: Iterable[str]) -> dict[str, int]:
    """Sum the `loop LoopStats(...)` lines game servers log at exit."""
    import re

    pattern = re.compile(r"LoopStats\(steps=(\d+), late_batches=(\d+), dropped_steps=(\d+)\)")
    total = {"steps": 0, "late_batches": 0, "dropped_steps": 0, "reported": 0}
    for match_id in match_ids:
        try:
            text = (Path(BENCH_SETTINGS["GAME_SERVER_LOG_DIR"]) / f"{match_id}.log").read_text()
        except OSError:
            continue
        found = pattern.findall(text)
        if found:
            steps, late, dropped = map(int, found[-1])
            total["steps"] += steps
            total["late_batches"] += late
            total["dropped_steps"] += dropped
            total["reported"] += 1
    return total


# --- statistics and output ---------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); nan for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50) * 1000,
        "p99": percentile(values, 99) * 1000,
        "max": (max(values) if values else float("nan")) * 1000,
        "mean": (statistics.fmean(values) if values else float("nan")) * 1000,
    }


def table(headers: list[str], rows: list[list], title: str | None = None) -> str:
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = []
    if title:
        lines.append(f"\n{title}")
    lines.append("| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths)) + " |")
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in cells:
        lines.append("| " + " | ".join(c.rjust(w) for c, w in zip(row, widths)) + " |")
    return "\n".join(lines)


def _fmt(value) -> str:
    if isinstance(value, float):
        if value != value:
            return "-"
        return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
    return str(value)


def save_result(name: str, data: dict) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def report(name: str, data: dict, headers: list[str], rows: list[list], title: str) -> str:
    """Print a benchmark's table and save it with its raw data."""
    text = table(headers, rows, title=title)
    print(text)
    data["table"] = text
    save_result(name, data)
    return text


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": str(os.cpu_count()), "cpu": model, "python": sys.version.split()[0]}


@contextlib.contextmanager
def bench_run(name: str) -> Iterator[None]:
    """Run a benchmark; whatever happens, kill every process it started."""
    started = time.monotonic()
    try:
        yield
    finally:
        left = cleanup()
        print(f"\n[{name}: {time.monotonic() - started:.0f} s; cleaned up {left} process(es)]", flush=True)


def api(base_url: str, token: str, method: str, path: str, body: dict | None = None, timeout: float = 60):
    """(status, body) of one API call; errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base_url + path, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("Authorization", f"Token {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def schedstat(pid: int) -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of a process's main thread.

    From /proc/<pid>/schedstat, in nanoseconds: unlike the 10 ms ticks of
    /proc/<pid>/stat, precise enough for one launch. The waiting time measures how
    busy the machine was.
    """
    with open(f"/proc/{pid}/schedstat") as f:
        ran, waited, _ = f.read().split()
    return int(ran) / 1e9, int(waited) / 1e9
