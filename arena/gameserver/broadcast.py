"""Send one event to every connected client, encoded once.

python-socketio's ``emit`` to everyone creates a task per recipient that puts the
packet on that connection's Engine.IO queue, whose writer task then wakes up to
send it: about 110 µs of CPU per recipient and message, which caps one match at
~300 spectators. Here the packet is encoded once and, for each WebSocket whose
writer is idle, written straight to the socket (about 25 µs); any other client
(long-polling, upgrading, a writer with packets in hand, a slow reader with a
backlog) gets it on its Engine.IO queue, behind what is already there. So every
client receives every event in the order it was broadcast, whichever path it
took. ``python -m bench.emit`` measures the three paths.

This relies on python-engineio internals (the socket's ``queue``, ``upgraded``
and ``upgrading``; the aiohttp WebSocket wrapper), so ``pyproject.toml`` pins
python-engineio to the minor versions it was checked against and
``tests/integration/test_broadcast.py`` fails if the direct path stops being
taken. If the internals are not there, ``install`` says so and every broadcast
falls back to ``emit``, as it does with ``GAME_DIRECT_BROADCAST=0``.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any

import socketio
from engineio import packet as eio_packet

logger = logging.getLogger("arena.gameserver")

#: Above this many unsent bytes a client is reading slowly: its packets wait on its
#: Engine.IO queue, so one slow reader never makes the broadcast loop wait.
BACKLOG_BYTES = 16 * 1024

_WS_ATTRIBUTE = "arena_websocket"


class Broadcaster:
    """``await broadcaster(event, data)`` sends to every client of the default namespace."""

    def __init__(self, sio: socketio.AsyncServer, direct: bool = True) -> None:
        self.sio = sio
        self.direct = 0  # sends written straight to a WebSocket
        self.queued = 0  # sends put on an Engine.IO queue
        self.enabled = direct and install(sio)  # False: every broadcast is an emit()
        # One broadcast at a time: a send may yield (a large frame is compressed in
        # a thread), and the next broadcast must not overtake it on any socket.
        self._lock = asyncio.Lock()

    async def __call__(self, event: str, data: Any = None, encoded: str | None = None) -> None:
        """`encoded`: the packet `encode_event(event, data)` already made, if any."""
        if not self.enabled:
            await self.sio.emit(event, data)
            return
        if encoded is None:
            try:
                encoded = encode_event(event, data)
            except TypeError:  # binary attachments (or not JSON at all): the ordinary path
                await self.sio.emit(event, data)
                return
        queued = eio_packet.Packet(eio_packet.MESSAGE, encoded)
        frame = queued.encode()
        sockets = self.sio.eio.sockets
        async with self._lock:
            for _, eio_sid in list(self.sio.manager.get_participants("/", None)):
                socket = sockets.get(eio_sid)
                if socket is None or socket.closed:
                    continue
                ws = _idle_websocket(socket)
                if ws is None:
                    socket.queue.put_nowait(queued)
                    self.queued += 1
                    continue
                try:
                    await ws.send(frame)
                except Exception:  # the connection is going away; its reader task will tell
                    continue
                self.direct += 1


def encode_event(event: str, data: Any = None) -> str:
    """The Socket.IO EVENT packet (text) that ``emit(event, data)`` sends; TypeError
    if `data` is not plain JSON. Also what a replay's snapshot digest covers."""
    # The arguments as emit() sends them: None is no argument, a tuple is several.
    args = [] if data is None else list(data) if isinstance(data, tuple) else [data]
    # binary=False skips python-socketio's recursive search for bytes (7.5 of
    # the 12.8 µs a state packet took to encode); bytes make json fail instead.
    return socketio.packet.Packet(socketio.packet.EVENT, data=[event, *args], binary=False).encode()


def install(sio: socketio.AsyncServer) -> bool:
    """Make each Engine.IO socket remember its WebSocket, so a broadcast can reach it.

    Returns False (and the broadcaster uses ``emit``) if this python-engineio
    does not have the parts relied on.
    """
    engine = sio.eio
    base = getattr(engine, "_async", {}).get("websocket")
    if base is None or not hasattr(base, "send") or not hasattr(asyncio.Queue(), "_getters"):
        logger.warning("python-engineio internals changed: broadcasting with emit()")
        return False
    if getattr(base, "_arena_recording", False):
        return True

    class RecordingWebSocket(base):  # type: ignore[misc, valid-type]
        _arena_recording = True

        async def __call__(self, environ: dict) -> Any:
            # Engine.IO hands the socket's bound handler to the WebSocket it creates.
            setattr(self.handler.__self__, _WS_ATTRIBUTE, self)
            return await super().__call__(environ)

    engine._async = dict(engine._async, websocket=RecordingWebSocket)
    return True


def _idle_websocket(socket: Any) -> Any | None:
    """The socket's WebSocket if a frame written now cannot overtake anything, else None.

    The writer task takes packets off the queue (in a task of its own, so one can
    be in its hands while the queue looks empty) and sends them; only while it is
    parked on an empty queue is nothing in flight.
    """
    ws = getattr(socket, _WS_ATTRIBUTE, None)
    if ws is None or not socket.upgraded or socket.upgrading:
        return None
    queue = socket.queue
    if not queue.empty() or not any(not waiter.done() for waiter in queue._getters):
        return None
    request = getattr(ws, "environ", {}).get("aiohttp.request")
    transport = request.transport if request is not None else None
    if transport is None or transport.is_closing() or transport.get_write_buffer_size() > BACKLOG_BYTES:
        return None
    return ws
