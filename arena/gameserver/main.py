"""The game-server process: bind a port, announce it, serve one match, exit.

(The one-match mode, ``GAME_MATCHES_PER_PROCESS=1``; `arena.gameserver.shared`
is a process serving several.)

`prepare()` does the expensive imports and Django set-up; `serve()` runs one
match. A plain launch calls both; the warm launcher's zygote calls `prepare()`
once and `serve()` in each forked child.
"""
from __future__ import annotations

import asyncio
import gc
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING

from arena.gameserver.contract import EXIT_BAD_MATCH, EXIT_NO_FREE_PORT, EXIT_OK, error_line, port_line

if TYPE_CHECKING:
    from arena.gameserver.contract import MatchInfo

logger = logging.getLogger("arena.gameserver")


def prepare() -> None:
    """Raises `arena.security.secret_key.InsecureSettings` (before importing the
    rest) if the settings must not serve a match: a game server checks game tokens,
    and with a public SECRET_KEY anyone could forge one."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    os.environ["ARENA_GAME_SERVER"] = "1"  # the settings leave out what only the web server needs
    import django

    django.setup()
    from arena.security.secret_key import refuse_to_start

    refuse_to_start()
    from arena.gameserver.host import tag_logs_with_match

    tag_logs_with_match()
    # Everything imported from here on is what a match needs; importing it now
    # lets a zygote share it with every child.
    import aiohttp.web  # noqa: F401
    import engineio.async_drivers.aiohttp  # noqa: F401  (python-socketio imports it lazily)
    import socketio  # noqa: F401

    from arena.conf import settings
    from arena.gameserver import host, ports  # noqa: F401
    from arena.gameserver.game import load_rules

    load_rules(settings.GAME_RULES)  # the game's code too


def serve(match_id: str, info: MatchInfo | None = None) -> int:
    """Serve one match; the process exit code.

    The warm launcher hands over the match it already read (`info`), so a forked
    child reaches its port without touching the database; a plain launch reads it.
    """
    from arena.conf import settings
    from django.db import connections

    from arena.gameserver.ports import NoFreePort, bind_first_free
    from arena.gameserver.store import MatchNotLaunchable, load_match

    if info is None:
        try:
            info = load_match(match_id)
        except MatchNotLaunchable as error:
            announce(error_line("launch_failed", str(error)))
            return EXIT_BAD_MATCH
        finally:
            connections.close_all()
    try:
        sock = bind_first_free(settings.GAME_SERVER_BIND, settings.GAME_SERVER_MIN_PORT, settings.GAME_SERVER_MAX_PORT)
    except NoFreePort as error:
        announce(error_line("no_free_port", str(error)))
        return EXIT_NO_FREE_PORT
    # Long-lived start-up objects will never be garbage: keep the collector off them.
    gc.collect()
    gc.freeze()
    asyncio.run(_serve(info, sock))  # its database connection is closed by its own thread
    return EXIT_OK


async def _serve(info, sock) -> None:
    """One match in this process: a `Host` with one room (see `arena.gameserver.shared`
    for a process that serves several)."""
    from arena.gameserver.host import CURRENT_MATCH, Host
    from arena.gameserver.store import adopt_connection

    from arena.conf import settings

    from arena.gameserver.control import ControlSocket

    CURRENT_MATCH.set(info.id)  # the process's one match: every line of it is that match's
    await adopt_connection()
    host = Host.from_django()
    # The same per-match stop path as a shared process's (a stop with a reason).
    control = ControlSocket(settings.GAME_SERVER_RUN_DIR, host.stop)
    try:
        port = await host.start(info, sock)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, host.shutdown, "shutdown")
        announce(port_line(port))
        logger.info("listening on port %s", port)
        await host.wait_idle()
    finally:
        control.close()
        await host.close()


def announce(line: str) -> None:
    """Write the one line the launcher waits for, then stop using stdout.

    The launcher stops reading after this line; pointing stdout at /dev/null means
    nothing later can block on (or break) the pipe.
    """
    sys.stdout.write(line)
    sys.stdout.flush()
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
