"""What a process does once to become a zygote (`arena.gameserver.zygote`): import
and warm everything a match needs, close its database connections, freeze its
objects and fill its allocator's holes, so that every child it forks shares those
pages instead of copying them.

Kept apart from the zygote's loop (which forks, hands matches over and reaps):
this module runs once, before the first request, and is what `bench.cow`
inspects page by page.
"""
from __future__ import annotations

import gc
import logging
import os
import sys

logger = logging.getLogger("arena.gameserver.zygote")


def warm_up() -> None:
    """Do once, here, what every child would otherwise do first.

    Django, python-socketio and aiohttp fill caches lazily (compiled queries,
    field choices, ABC subclass caches, the engine.io aiohttp driver...). Done in
    the zygote, that work is shared by every child instead of being repeated, and
    copied into each child's private memory, at every launch.
    """
    warm_database()
    warm_session()


def warm_database() -> None:
    """Read-only: the match lookup a child's status changes make
    (`selectors.match_get`), of any match there is. (A child gets its match in
    the fork request: it never runs `load_match`.)"""
    import uuid

    from django.db import connections

    from arena.matches import selectors
    from arena.matches.errors import NotFound
    from arena.matches.models import Match

    try:
        selectors.match_get(Match.objects.order_by().values_list("pk", flat=True).first() or uuid.UUID(int=0))
    except NotFound:  # no match yet: the main query was still built and run
        pass
    except Exception:  # a database that does not answer yet: the children will do it
        logger.warning("zygote warm-up could not read the database", exc_info=True)
    finally:
        connections.close_all()


def warm_session() -> None:
    """Build and throw away what a game server builds before its port line: a
    session, its Socket.IO server on an aiohttp application, an encoded state.
    No database, no socket."""
    import asyncio
    import uuid

    from aiohttp import web

    from arena.gameserver.contract import MatchInfo, Seat
    from arena.gameserver.host import Host
    from arena.gameserver.room import Room
    from arena.gameserver.store import MatchStore

    nobody = str(uuid.UUID(int=0))
    info = MatchInfo(id=nobody, points_to_win=1, seats=(Seat(0, "left", "left"), Seat(-1, "right", "right")))

    async def build() -> None:
        host = Host.from_django()
        room = Room.create(info, MatchStore(nobody), host.settings, host.rules, host.ticker, None)
        room.sio.packet_class(2, data=["state", room.snapshot()]).encode()
        app = web.Application()
        room.sio.attach(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await runner.cleanup()

    asyncio.run(build())


_ballast: list = []


def fill_allocator_holes() -> None:
    """Fill the free blocks and pools of CPython's small-object allocator.

    A child's new small objects would otherwise go to the free slots the zygote's
    start-up left in its memory pools, scattered over pages shared with the
    zygote: each such allocation copies a whole page (copy-on-write). With every
    slot taken by objects nobody ever touches, the child's objects go to fresh
    pools, packed together, and the shared pages stay shared. CPython-specific:
    reads `sys._debugmallocstats()`; does nothing if its format is not known.
    """
    import re
    import tempfile

    if not hasattr(sys, "_debugmallocstats"):
        return
    with tempfile.TemporaryFile() as out:
        saved = os.dup(2)
        try:
            sys.stderr.flush()
            os.dup2(out.fileno(), 2)
            sys._debugmallocstats()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        out.seek(0)
        text = out.read().decode("ascii", "replace")
    classes = [(int(size), int(avail)) for size, avail in re.findall(r"^\s+\d+\s+(\d+)\s+\d+\s+\d+\s+(\d+)$", text, re.M)]
    unused = re.search(r"^(\d+) unused pools \* (\d+) bytes", text, re.M)
    for size, avail in classes:
        _ballast.extend(_object_of_size(size) for _ in range(avail))
    if unused:
        pools, pool_size = int(unused.group(1)), int(unused.group(2))
        per_pool = pool_size // 512
        _ballast.extend(_object_of_size(512) for _ in range(pools * per_pool))


def _object_of_size(size: int) -> object:
    """A new, untracked object taking one block of `size` bytes."""
    if size <= 16:
        return object()
    if size <= 32:
        return float(size) + 0.5  # a new float object, 24 bytes
    return bytes(size - 33)  # a bytes object's header is 33 bytes


def become_zygote(inspect=None) -> None:
    """Turn this process into a zygote: everything imported and warmed, no database
    connection, every object frozen and the allocator's holes filled.

    `inspect` (for `bench.cow`) runs before the holes are filled, so that what it
    allocates and frees leaves none."""
    # Keep the collector away while start-up objects are created, so they are
    # packed densely and never touched again (copy-on-write stays shared).
    gc.disable()
    from arena.gameserver.main import prepare

    prepare()
    warm_up()
    from django.db import connections

    connections.close_all()
    gc.collect()
    if inspect is not None:
        inspect()
    fill_allocator_holes()
    gc.freeze()

