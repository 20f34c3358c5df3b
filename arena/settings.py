"""Django settings for Arena.

Every setting a deployment may change comes from an environment variable whose
default works on a laptop with nothing installed but Python: SQLite, in-memory
channel layer, game servers on 127.0.0.1.
"""
from __future__ import annotations

import os
from pathlib import Path

import dj_database_url

from arena.security.secret_key import DEVELOPMENT_SECRET_KEY

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("ARENA_VAR_DIR", BASE_DIR / "var"))


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


# Signs sessions and game tokens. The development default is public: with DEBUG off
# it is a system check error and game servers refuse to start (arena.security).
SECRET_KEY = os.environ.get("SECRET_KEY") or DEVELOPMENT_SECRET_KEY
# Previous keys, still accepted for signatures during a rotation (comma-separated).
SECRET_KEY_FALLBACKS = env_list("SECRET_KEY_FALLBACKS", "")
DEBUG = env_bool("DEBUG", True)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,[::1],testserver")

# Game servers (arena.gameserver sets this before Django starts) serve Socket.IO
# with aiohttp. Only the web server needs Daphne, whose import installs a Twisted
# reactor: ~0.5 s of CPU and a few MiB in every game server.
GAME_SERVER_PROCESS = env_bool("ARENA_GAME_SERVER", False)

INSTALLED_APPS = [
    *([] if GAME_SERVER_PROCESS else ["daphne"]),  # its `runserver` serves ASGI
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "channels",
    "arena.security",
    "arena.matches",
    "arena.lobby",
    "arena.notifications",
    "arena.web",
    "arena.webhooks",
    "arena.fleet",
    "arena.demo",  # demo users and `manage.py demo`: this site only
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "arena.urls"
WSGI_APPLICATION = "arena.wsgi.application"
ASGI_APPLICATION = "arena.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------
# SQLite by default. Several processes (Django, every game server) write to it, so
# WAL lets readers run beside the writer, the busy timeout makes writers queue
# instead of failing, and IMMEDIATE transactions take the write lock up front so a
# read-then-write transaction never dies with "database is locked" half-way.
DATABASE_URL = env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'arena.sqlite3'}")
# Seconds a process keeps its connection between requests. 0 (close after each
# request) is right under Daphne, which runs every request on a new thread; a
# gunicorn sync worker serves one request at a time on one thread and keeps its
# connection (arena/gunicorn_conf.py sets 60), which saves a connect per request.
DATABASE_CONN_MAX_AGE = env_int("DATABASE_CONN_MAX_AGE", 0)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL, conn_max_age=DATABASE_CONN_MAX_AGE, conn_health_checks=DATABASE_CONN_MAX_AGE > 0
    )
}
if os.environ.get("ARENA_DB_NAME"):
    # Set by a launcher for its game servers: the database the launcher really uses.
    DATABASES["default"]["NAME"] = os.environ["ARENA_DB_NAME"]
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL;PRAGMA synchronous=NORMAL",
    }
    # Game servers are other processes: the test database must be a file they can
    # open (not SQLite's in-memory default), one per test run.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-arena-{os.getpid()}.sqlite3")}
else:
    # One test database per test run, so that two runs never share one.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# What sign-up accepts. The throttle bounds online guessing (AUTH_THROTTLE_*), but
# at ~10 a minute a list of common passwords is still worth trying: refuse those.
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": env_int("AUTH_PASSWORD_MIN_LENGTH", 8)},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [
    ("vendor/socket.io-client", BASE_DIR / "node_modules" / "socket.io-client" / "dist"),
]

LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login/"
CSRF_COOKIE_HTTPONLY = False  # the lobby's JS reads it to send X-CSRFToken

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "arena.matches.http_errors.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Arena API",
    "DESCRIPTION": "Launch dedicated Pong game servers and read their results.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# --- Notifications ---------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py >= 8 reads with a 5 s timeout by default, which would cut
            # channels-redis' 5 s blocking receive and drop every idle socket.
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_timeout": env_float("REDIS_SOCKET_TIMEOUT", 10.0)}]
            },
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# How match events reach the notification sockets: "layer" (publish straight to a
# shared channel layer), "outbox" (a row per event, relayed by each ASGI process to
# its in-memory layer), "auto" (layer with Redis, outbox without), or "none".
NOTIFICATIONS_BACKEND = env_str("NOTIFICATIONS_BACKEND", "auto")
NOTIFICATIONS_PUBLISH_TIMEOUT = env_float("NOTIFICATIONS_PUBLISH_TIMEOUT", 1.0)
NOTIFICATIONS_RELAY_INTERVAL = env_float("NOTIFICATIONS_RELAY_INTERVAL", 0.25)
NOTIFICATIONS_OUTBOX_GRACE = env_float("NOTIFICATIONS_OUTBOX_GRACE", 5.0)
NOTIFICATIONS_OUTBOX_RETENTION = env_float("NOTIFICATIONS_OUTBOX_RETENTION", 600.0)
NOTIFICATIONS_REPLAY_RECENT = env_float("NOTIFICATIONS_REPLAY_RECENT", 60.0)
NOTIFICATIONS_MAX_WATCHED = env_int("NOTIFICATIONS_MAX_WATCHED", 20)

# --- Security ------------------------------------------------------------------------
# Laptop defaults: plain HTTP. A deployment behind TLS turns these on (README,
# "Running it for real"); `manage.py check --deploy` then has nothing to say.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
# The request.META key of a header the TLS-terminating proxy always sets to "https"
# (e.g. HTTP_X_FORWARDED_PROTO), overwriting any value a client sent. Opt-in.
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER", "")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https") if _proxy_ssl_header else None
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", False)
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "")
SILENCED_SYSTEM_CHECKS = env_list("SILENCED_SYSTEM_CHECKS", "")

# Sign-in and sign-up throttling (arena/security/throttle.py): failures allowed per
# client address and per account name in each window of this many seconds.
AUTH_THROTTLE_FAILURES = env_int("AUTH_THROTTLE_FAILURES", 10)
AUTH_THROTTLE_WINDOW = env_int("AUTH_THROTTLE_WINDOW", 60)
# The request.META key of a header holding the client's address, set by a reverse
# proxy on every request (e.g. HTTP_X_REAL_IP). Empty: REMOTE_ADDR, never a header.
TRUSTED_PROXY_HEADER = env_str("TRUSTED_PROXY_HEADER", "")
# The proxies whose TRUSTED_PROXY_HEADER is believed (addresses or networks): a
# request from anywhere else (one that bypassed the proxy) counts by REMOTE_ADDR.
TRUSTED_PROXY_ADDRESSES = env_list("TRUSTED_PROXY_ADDRESSES", "127.0.0.1,::1")
# The throttle's counts: in Redis, shared by every web process, when REDIS_URL is
# set; else in each process's memory. Short timeouts: sign-in never hangs on it.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "arena",
            "OPTIONS": {"socket_connect_timeout": 1.0, "socket_timeout": 1.0},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "arena"}}

# --- Webhook (arena.webhooks): a signed POST per match event; unset, none is sent.
ARENA_WEBHOOK_URL = env_str("ARENA_WEBHOOK_URL", "")
ARENA_WEBHOOK_SECRET = env_str("ARENA_WEBHOOK_SECRET", "")

# --- Game servers ----------------------------------------------------------------
GAME_SERVER_MIN_PORT = env_int("GAME_SERVER_MIN_PORT", 25000)
GAME_SERVER_MAX_PORT = env_int("GAME_SERVER_MAX_PORT", 25999)
GAME_SERVER_HOST = env_str("GAME_SERVER_HOST", "127.0.0.1")  # what clients are told
GAME_SERVER_BIND = env_str("GAME_SERVER_BIND", "127.0.0.1")  # the interface game servers listen on
GAME_SERVER_LAUNCH_TIMEOUT = env_float("GAME_SERVER_LAUNCH_TIMEOUT", 10.0)
GAME_SERVER_LAUNCHER = env_str("GAME_SERVER_LAUNCHER", "warm")
# Game servers the warm launcher's zygote keeps forked and warmed up, waiting for a match.
GAME_ZYGOTE_SPARES = env_int("GAME_ZYGOTE_SPARES", 2)
# PUT /api/matches: the most matches one request may create, and how many of them
# are written and launched at once (threads of the web process, a database connection each).
GAME_BATCH_MAX_MATCHES = env_int("GAME_BATCH_MAX_MATCHES", 100)
GAME_LAUNCH_CONCURRENCY = env_int("GAME_LAUNCH_CONCURRENCY", 16)
# Matches one game-server process serves (warm launcher): 1 = a process per match
# (a crash takes one match down); N > 1 = up to N matches share a process, its event
# loop, timer and database connection (denser; a crash of the process takes N down).
GAME_MATCHES_PER_PROCESS = env_int("GAME_MATCHES_PER_PROCESS", 1)
# The game the rooms run: the import path of a module with create(*, seed, points_to_win).
GAME_RULES = env_str("GAME_RULES", "arena.pong.game")
# Control sockets of shared game-server processes (the per-match stop path).
GAME_SERVER_RUN_DIR = Path(env_str("GAME_SERVER_RUN_DIR", str(VAR_DIR / "run" / "gameserver")))
GAME_SERVER_LOG_DIR = Path(env_str("GAME_SERVER_LOG_DIR", str(VAR_DIR / "log" / "gameserver")))
GAME_PLAYER_CONNECT_TIMEOUT = env_float("GAME_PLAYER_CONNECT_TIMEOUT", 60.0)
GAME_COUNTDOWN = env_float("GAME_COUNTDOWN", 3.0)
GAME_TICK_RATE = env_int("GAME_TICK_RATE", 60)
GAME_SNAPSHOT_RATE = env_int("GAME_SNAPSHOT_RATE", 30)
# Broadcast by writing each event once to idle WebSockets (arena/gameserver/broadcast.py);
# 0 falls back to python-socketio's emit().
GAME_DIRECT_BROADCAST = env_bool("GAME_DIRECT_BROADCAST", True)
# Record every match for its replay (GET /api/match/<id>/replay); off only to measure the cost.
GAME_RECORD_REPLAYS = env_bool("GAME_RECORD_REPLAYS", True)
# Seconds the re-simulated frames of a replay (GET /api/match/<id>/replay/frames) stay
# in the default cache; 0: re-simulated on every request.
ARENA_REPLAY_FRAMES_CACHE = env_int("ARENA_REPLAY_FRAMES_CACHE", 600)
GAME_TOKEN_MAX_AGE = env_int("GAME_TOKEN_MAX_AGE", 1800)
GAME_RECONNECT_GRACE = env_float("GAME_RECONNECT_GRACE", 15.0)
GAME_MAX_SPECTATORS = env_int("GAME_MAX_SPECTATORS", 1000)
GAME_MAX_DURATION = env_float("GAME_MAX_DURATION", 900.0)
GAME_HEARTBEAT_INTERVAL = env_float("GAME_HEARTBEAT_INTERVAL", 3.0)
GAME_HEARTBEAT_TIMEOUT = env_float("GAME_HEARTBEAT_TIMEOUT", 15.0)
GAME_RESULT_RETRY_FOR = env_float("GAME_RESULT_RETRY_FOR", 30.0)
GAME_SPOOL_DIR = Path(env_str("GAME_SPOOL_DIR", str(VAR_DIR / "spool")))
# Pages allowed to open Socket.IO connections to game servers ("*" allows any).
GAME_CORS_ORIGINS = env_list("GAME_CORS_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")
GAME_BOT_USERNAME = env_str("GAME_BOT_USERNAME", "bot")
# Control messages to a game server (arena/matches/control.py): how long the
# sender waits for an answer, and how long a signed control token is valid.
GAME_CONTROL_TIMEOUT = env_float("GAME_CONTROL_TIMEOUT", 1.0)
GAME_CONTROL_TOKEN_MAX_AGE = env_int("GAME_CONTROL_TOKEN_MAX_AGE", 60)

# --- Fleet (arena.fleet): game hosts fed through Celery -------------------------
# The broker that carries launches to the game hosts (Redis or RabbitMQ, by URL),
# and where their answers come back (default: Redis answers through the same
# Redis; RabbitMQ through Celery's `rpc://` reply queues).
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = env_str(
    "CELERY_RESULT_BACKEND", CELERY_BROKER_URL if CELERY_BROKER_URL.startswith(("redis", "rediss")) else "rpc://"
)
# This process's game-host name: set by `manage.py gamehost` for the agent and
# the game servers it launches (their writes then apply only while the match is
# still assigned to this host). Empty elsewhere.
GAME_HOST_NAME = env_str("GAME_HOST_NAME", "")
# Matches a game host accepts at once. Default: 50 per CPU. docs/benchmarks.md
# measures 13-13.4 ms of CPU per second per two-player match, and 100 matches on
# 2 CPUs holding every latency criterion (150 did not): 50 a CPU.
GAME_HOST_CAPACITY = env_int("GAME_HOST_CAPACITY", 50 * (os.cpu_count() or 1))
# A game host whose heartbeat is older than this is lost: `manage.py supervise`
# fails its live matches (`host_lost`) and placement skips it.
GAME_HOST_TIMEOUT = env_float("GAME_HOST_TIMEOUT", 10.0)
GAME_HOST_HEARTBEAT_INTERVAL = env_float("GAME_HOST_HEARTBEAT_INTERVAL", 2.0)
# How long the fleet launcher waits for one host's answer before marking it
# suspect and trying the next (the whole launch stays within GAME_SERVER_LAUNCH_TIMEOUT).
GAME_HOST_ANSWER_TIMEOUT = env_float("GAME_HOST_ANSWER_TIMEOUT", 3.0)
# The local strategy a game host launches with (`warm` or `subprocess`).
GAME_HOST_LAUNCHER = env_str("GAME_HOST_LAUNCHER", "warm")
# Checks `manage.py supervise` runs besides its own (import paths of functions
# returning the match ids they failed): the fleet's host-loss check.
SUPERVISOR_CHECKS = env_list("SUPERVISOR_CHECKS", "arena.fleet.supervisor.fail_lost_hosts")

# --- Metrics (arena.metrics): Prometheus on /metrics, and per host ---------------
# Off (0): nothing is counted, /metrics answers 404 and no exporter starts.
ARENA_METRICS = env_bool("ARENA_METRICS", True)
# prometheus_client's multiprocess directory, shared by every Arena process of the
# machine (web processes, game servers, supervise, gamehost): one scrape sees them all.
ARENA_METRICS_DIR = Path(env_str("ARENA_METRICS_DIR", str(VAR_DIR / "run" / "metrics")))
# Who may read /metrics: client addresses or networks (loopback by default), or a
# request carrying `Authorization: Bearer <ARENA_METRICS_TOKEN>` (empty: no token).
ARENA_METRICS_ALLOWED = env_list("ARENA_METRICS_ALLOWED", "127.0.0.0/8,::1")
ARENA_METRICS_TOKEN = env_str("ARENA_METRICS_TOKEN", "")
# Seconds between two writes of a game-server process's figures (also one a second
# after it starts serving, and one when a match ends).
ARENA_METRICS_FLUSH_SECONDS = env_float("ARENA_METRICS_FLUSH_SECONDS", 5.0)
# `manage.py gamehost` serves its machine's metrics on this port (0: not at all),
# on this interface.
GAME_HOST_METRICS_PORT = env_int("GAME_HOST_METRICS_PORT", 9464)
GAME_HOST_METRICS_BIND = env_str("GAME_HOST_METRICS_BIND", "127.0.0.1")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "loggers": {
        "arena": {"handlers": ["console"], "level": env_str("ARENA_LOG_LEVEL", "INFO")},
    },
}
