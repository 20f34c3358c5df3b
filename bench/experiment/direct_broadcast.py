"""The proposed broadcast for `arena.gameserver.session`, as a patch.

python-socketio's `emit` to everyone creates one task per recipient, which puts
the packet on the connection's Engine.IO queue, whose writer task wakes up and
sends it: ~100 µs of CPU per recipient and message. Here an event for everyone is
encoded once and written straight to each WebSocket whose Engine.IO queue is
empty (a connection with packets still queued, or on long-polling, gets it queued
behind them, so nothing overtakes anything): ~25 µs (see `python -m bench.emit`).
Events to one client (`to=`) keep the ordinary path.
"""
from __future__ import annotations

from engineio import packet as eio_packet
from socketio import packet as sio_packet


def record_websockets(sio) -> None:
    """Keep each connection's Engine.IO WebSocket on its Engine.IO socket (`socket.ws`)."""
    base = sio.eio._async["websocket"]

    class RecordingWebSocket(base):
        async def __call__(self, environ):
            self.handler.__self__.ws = self  # the handler is the AsyncSocket's bound method
            return await super().__call__(environ)

    sio.eio._async = dict(sio.eio._async, websocket=RecordingWebSocket)


async def broadcast(sio, event: str, data) -> None:
    text = sio_packet.Packet(sio_packet.EVENT, data=[event, data]).encode()
    queued = eio_packet.Packet(eio_packet.MESSAGE, text)
    message = "4" + text  # the Engine.IO MESSAGE packet, as the writer task would send it
    sockets = sio.eio.sockets
    for _, eio_sid in list(sio.manager.get_participants("/", None)):
        socket = sockets.get(eio_sid)
        if socket is None or socket.closed:
            continue
        ws = getattr(socket, "ws", None)
        if ws is None or not socket.upgraded or not socket.queue.empty():
            socket.queue.put_nowait(queued)
            continue
        try:
            await ws._sock.send_str(message)
        except Exception:  # the connection is going away; its reader task will tell
            pass


def apply(session_module) -> None:
    cls = session_module.GameSession
    original_init = cls.__init__

    def __init__(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        sio = self.sio
        record_websockets(sio)
        plain_emit = sio.emit

        async def emit(event, data=None, to=None, room=None, skip_sid=None, namespace=None, callback=None,
                       **kwargs):
            if to is None and room is None and skip_sid is None and callback is None and namespace in (None, "/"):
                await broadcast(sio, event, data)
            else:
                await plain_emit(event, data, to=to, room=room, skip_sid=skip_sid, namespace=namespace,
                                 callback=callback, **kwargs)

        sio.emit = emit

    cls.__init__ = __init__
