"""How a match event gets from the process that changed the match to the processes
that hold the players' sockets.

Producers are the Django process that launches a match (`match.ready`) and the
game-server process, which records the rest of the life cycle through the same
services. Consumers are the ASGI processes serving `/ws/notifications/`. Between
them sits one small interface, `Notifier`, chosen by the setting
`NOTIFICATIONS_BACKEND`, the way python-socketio puts a client manager in front of
its message queue:

* ``layer`` -- the producer sends straight to the channel layer (after the
  transaction commits). Right when the layer is shared by every process (Redis):
  each event is sent once, by the process that caused it, and Redis fans it out to
  whichever process holds each socket; several Django processes never deliver
  twice.

* ``outbox`` -- the producer writes an `OutboxEvent` row **in the same transaction**
  as the status change, and a relay task in each ASGI process polls the table
  (every `NOTIFICATIONS_RELAY_INTERVAL` seconds, only while that process holds at
  least one socket) and delivers new rows to its own, in-memory, layer. Right
  when the layer is process-local (the laptop default): a game server cannot
  reach Django's in-memory layer, but it can reach the database, and an event
  exists if and only if its change was committed. Every ASGI process relays every
  row to its own sockets only, so there are no duplicates either.

* ``auto`` (default) -- ``layer`` when the default channel layer is shared (not
  `InMemoryChannelLayer`), else ``outbox``.

Whatever the backend, publishing is best effort: `publish()` never raises and is
bounded in time (`NOTIFICATIONS_PUBLISH_TIMEOUT`). A client that missed an event
gets the current state of its match when it (re)connects (see the consumer).
"""
from __future__ import annotations

import asyncio
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import partial
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from arena.conf import settings as arena_settings
from arena.gameserver.contract import user_key
from arena.notifications.events import Notification

logger = logging.getLogger("arena.notifications")

IN_MEMORY_LAYER = "channels.layers.InMemoryChannelLayer"
BACKENDS = ("auto", "layer", "outbox", "none")

def setting(name: str) -> Any:
    """A notification setting, with its default (`arena.conf.DEFAULTS`)."""
    return getattr(arena_settings, name)


def layer_is_shared(alias: str = "default") -> bool:
    backend = getattr(settings, "CHANNEL_LAYERS", {}).get(alias, {}).get("BACKEND", "")
    return bool(backend) and backend != IN_MEMORY_LAYER


def backend_name() -> str:
    """The backend in force: `auto` resolved to `layer` or `outbox`."""
    name = str(setting("NOTIFICATIONS_BACKEND")).strip().lower()
    if name == "auto":
        if not getattr(settings, "CHANNEL_LAYERS", None):
            return "none"
        return "layer" if layer_is_shared() else "outbox"
    return name


class Notifier:
    """Sends match events towards the sockets. The one interface producers and
    consumers see; pick an implementation with `get_notifier()`.

    `publish` runs in the producer, synchronously, possibly inside the
    transaction that made the change: it must never raise and never block for
    long. `attach`/`detach` run in an ASGI process when a socket opens/closes, so a
    backend that must pull events (the outbox) works only while somebody listens.
    """

    name = "none"

    def publish(self, notification: Notification) -> None:
        logger.debug("dropped %s %s (no notification backend)", notification.type, notification.match_id)

    async def attach(self) -> None:
        pass

    async def detach(self) -> None:
        pass


class LayerNotifier(Notifier):
    """Direct sends to a shared channel layer (Redis), once the change is committed.

    Sending after commit means no client is told about a change that was rolled
    back, and a client that reacts to an event by reading the API sees the change.
    """

    name = "layer"

    def publish(self, notification: Notification) -> None:
        transaction.on_commit(partial(self._send, notification), robust=True)

    def _send(self, notification: Notification) -> None:
        started = time.monotonic()
        try:
            async_to_sync(self._send_async)(notification)
        except Exception as error:  # noqa: BLE001 - best effort, see module docstring
            logger.warning(
                "could not publish %s for match %s: %s: %s (after %.2f s)",
                notification.type, notification.match_id, error.__class__.__name__, error,
                time.monotonic() - started,
            )

    @staticmethod
    async def _send_async(notification: Notification) -> None:
        layer = get_channel_layer()
        sends = [layer.group_send(group, message) for group, message in notification.layer_messages()]
        await asyncio.wait_for(asyncio.gather(*sends), timeout=float(setting("NOTIFICATIONS_PUBLISH_TIMEOUT")))


class OutboxNotifier(Notifier):
    """A row per event in the producer's transaction; relays deliver it.

    The insert runs in a savepoint: if it fails (say, the table is missing), the
    status change it belongs to still commits, only the event is lost.
    """

    name = "outbox"

    def publish(self, notification: Notification) -> None:
        from arena.notifications.models import OutboxEvent

        try:
            with transaction.atomic():
                OutboxEvent.objects.create(
                    match_id=notification.match_id,
                    type=notification.type,
                    payload=notification.event,
                    user_ids=list(notification.user_ids),
                    created_at=timezone.now(),
                )
        except Exception as error:  # noqa: BLE001 - best effort
            logger.warning("could not queue %s for match %s: %s", notification.type, notification.match_id, error)

    async def attach(self) -> None:
        await relay_for_this_loop().attach()

    async def detach(self) -> None:
        relay = _relays.get(asyncio.get_running_loop())
        if relay is not None:
            await relay.detach()


_notifiers: dict[str, Notifier] = {}
_CLASSES = {"layer": LayerNotifier, "outbox": OutboxNotifier, "none": Notifier}


def get_notifier() -> Notifier:
    """The notifier chosen by `NOTIFICATIONS_BACKEND` (read on every call, so a test
    may change the setting)."""
    name = backend_name()
    if name not in _notifiers:
        if name not in _CLASSES:
            logger.warning("unknown NOTIFICATIONS_BACKEND %r: notifications are off", name)
        _notifiers[name] = _CLASSES.get(name, Notifier)()
    return _notifiers[name]


# --- the outbox relay -------------------------------------------------------------------


class OutboxRelay:
    """Delivers new outbox rows to this process's channel layer, in id order.

    One per event loop (an ASGI server has one), running only while at least one
    socket is attached. Its database work runs on a thread of its own, which keeps
    one connection for the life of the relay instead of opening one per poll.

    Late commits: ids are allocated at insert but become visible at commit, so on
    PostgreSQL a row may appear below an id already delivered. The relay therefore
    re-reads the last `NOTIFICATIONS_OUTBOX_GRACE` seconds of rows on every poll and
    delivers the ids it has not seen; its floor only moves past rows older than
    that. (SQLite serialises writers, so there ids always commit in order.)
    """

    BATCH = 500
    CLEAN_EVERY = 60.0

    def __init__(self) -> None:
        self.interval = float(setting("NOTIFICATIONS_RELAY_INTERVAL"))
        self.grace = timedelta(seconds=float(setting("NOTIFICATIONS_OUTBOX_GRACE")))
        self.retention = timedelta(seconds=float(setting("NOTIFICATIONS_OUTBOX_RETENTION")))
        self.sockets = 0
        self.floor = 0
        self.seen: set[int] = set()
        self.delivered = 0
        self.task: asyncio.Task | None = None
        self.executor: ThreadPoolExecutor | None = None
        self.lock = asyncio.Lock()
        self.next_clean = 0.0

    @property
    def running(self) -> bool:
        return self.task is not None and not self.task.done()

    async def attach(self) -> None:
        async with self.lock:
            self.sockets += 1
            if not self.running:
                await self._start()

    async def detach(self) -> None:
        async with self.lock:
            self.sockets = max(0, self.sockets - 1)
            if self.sockets == 0:
                await self._stop()

    async def stop(self) -> None:
        """Stop now, whoever is attached (server or test shutdown)."""
        async with self.lock:
            self.sockets = 0
            await self._stop()

    async def _start(self) -> None:
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arena-outbox-relay")
        try:
            # Everything already committed is in the state a new socket is sent on
            # connect: start after it.
            self.floor, self.seen = await self._db(self._initial_cursor)
        except Exception as error:  # noqa: BLE001 - the relay retries from 0
            logger.warning("outbox relay could not read its starting point: %s", error)
            self.floor, self.seen = 0, set()
        self.task = asyncio.create_task(self._run(), name="arena-outbox-relay")

    async def _stop(self) -> None:
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        executor, self.executor = self.executor, None
        if executor is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(executor, connections.close_all)
            finally:
                executor.shutdown(wait=False)

    async def _db(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def _run(self) -> None:
        layer = get_channel_layer()
        while True:
            try:
                rows = await self._db(self._poll)
                for row in rows:
                    for group, message in row.layer_messages():
                        await layer.group_send(group, message)
                    self.delivered += 1
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - keep relaying
                logger.warning("outbox relay: %s", error)
                await self._db(connections.close_all)  # reconnect on the next poll
            await asyncio.sleep(self.interval)

    # The methods below run on the relay's thread.

    def _initial_cursor(self) -> tuple[int, set[int]]:
        from arena.notifications.models import OutboxEvent

        horizon = timezone.now() - self.grace
        floor = OutboxEvent.objects.filter(created_at__lt=horizon).order_by("-id").values_list("id", flat=True).first()
        floor = floor or 0
        seen = set(OutboxEvent.objects.filter(id__gt=floor).values_list("id", flat=True))
        return floor, seen

    def _poll(self) -> list[Notification]:
        from arena.notifications.models import OutboxEvent

        now = timezone.now()
        if time.monotonic() >= self.next_clean:
            self.next_clean = time.monotonic() + self.CLEAN_EVERY
            OutboxEvent.objects.filter(created_at__lt=now - self.retention).delete()
        rows = list(
            OutboxEvent.objects.filter(id__gt=self.floor)
            .order_by("id")
            .values_list("id", "match_id", "payload", "user_ids", "created_at")[: self.BATCH]
        )
        fresh = [
            Notification(match_id=str(match_id), event=payload, user_ids=tuple(user_key(u) for u in user_ids))
            for row_id, match_id, payload, user_ids, _ in rows
            if row_id not in self.seen
        ]
        self.seen.update(row[0] for row in rows)
        settled = [row[0] for row in rows if row[4] < now - self.grace]
        if settled:
            self.floor = max(self.floor, max(settled))
            self.seen = {row_id for row_id in self.seen if row_id > self.floor}
        return fresh


_relays: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, OutboxRelay] = weakref.WeakKeyDictionary()


def relay_for_this_loop() -> OutboxRelay:
    loop = asyncio.get_running_loop()
    relay = _relays.get(loop)
    if relay is None:
        relay = _relays[loop] = OutboxRelay()
    return relay


async def stop_relays() -> None:
    """Stop the relay of the running loop, if any (for shutdown and tests)."""
    relay = _relays.get(asyncio.get_running_loop())
    if relay is not None:
        await relay.stop()
