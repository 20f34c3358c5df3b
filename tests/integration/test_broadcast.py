"""The one-encoding broadcast: every client gets every event, in order, by either path.

A real aiohttp Socket.IO server on 127.0.0.1 and real python-socketio clients on
each transport: WebSocket only, long-polling only, and polling upgraded to
WebSocket while the broadcasts are already flowing.
"""
from __future__ import annotations

import asyncio
import socket

import pytest
import socketio
from aiohttp import web

from arena.gameserver.broadcast import Broadcaster

BROADCASTS = 300
TRANSPORTS = {"ws": ["websocket"], "polling": ["polling"], "upgrade": ["polling", "websocket"]}


def new_server() -> socketio.AsyncServer:
    # A short ping interval, so a long-polling client's pending request ends soon
    # when it disconnects.
    return socketio.AsyncServer(async_mode="aiohttp", async_handlers=False, ping_interval=1, ping_timeout=2)


async def serve(sio: socketio.AsyncServer):
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    return runner, sock.getsockname()[1]


async def connect(port: int, transports: list[str]) -> tuple[socketio.AsyncClient, list]:
    client, received = socketio.AsyncClient(reconnection=False), []
    client.on("n", lambda n: received.append(("n", n)))
    client.on("one", lambda n: received.append(("one", n)))
    await client.connect(f"http://127.0.0.1:{port}", transports=transports, wait_timeout=5)
    return client, received


async def test_every_client_gets_every_event_in_order():
    sio = new_server()
    broadcast = Broadcaster(sio)
    assert broadcast.enabled, "python-engineio changed: the direct broadcast is off"
    runner, port = await serve(sio)
    clients = {name: await connect(port, transports) for name, transports in TRANSPORTS.items()}
    sids = {name: client.get_sid() for name, (client, _) in clients.items()}
    try:
        for n in range(BROADCASTS):
            await broadcast("n", n)
            if n % 7 == 0:  # a message to one client goes the ordinary way, between broadcasts
                for sid in sids.values():
                    await sio.emit("one", n, to=sid)
            if n % 3 == 0:
                await asyncio.sleep(0.001)  # let writers and readers run at varied moments
        expected = []
        for n in range(BROADCASTS):
            expected.append(("n", n))
            if n % 7 == 0:
                expected.append(("one", n))
        for _ in range(500):
            if all(len(received) >= len(expected) for _, received in clients.values()):
                break
            await asyncio.sleep(0.01)
        for name, (_, received) in clients.items():
            assert received == expected, f"{name}: events lost or out of order"
    finally:
        for client, _ in clients.values():
            await client.disconnect()
        await runner.cleanup()
    # both paths were taken: WebSockets directly, long-polling through the queue
    assert broadcast.direct >= BROADCASTS
    assert broadcast.queued >= BROADCASTS


async def test_a_client_that_disconnects_mid_broadcast_harms_nobody():
    sio = new_server()
    broadcast = Broadcaster(sio)
    runner, port = await serve(sio)
    stayer, received = await connect(port, ["websocket"])
    leaver, _ = await connect(port, ["websocket"])
    try:
        for n in range(100):
            await broadcast("n", n)
            if n == 50:
                await leaver.disconnect()
            await asyncio.sleep(0)
        for _ in range(500):
            if len(received) >= 100:
                break
            await asyncio.sleep(0.01)
        assert received == [("n", n) for n in range(100)]
    finally:
        await stayer.disconnect()
        await runner.cleanup()


@pytest.mark.parametrize("payload", [
    {"nested": [1, 2.5, None, "é"]}, None, "text", 7,
    b"\x00bytes", {"deep": [b"bytes", 1]},  # binary attachments: the broadcast falls back to emit()
])
async def test_payloads_arrive_as_emit_would_send_them(payload):
    sio = new_server()
    broadcast = Broadcaster(sio)
    runner, port = await serve(sio)
    client, received = socketio.AsyncClient(reconnection=False), []
    client.on("direct", lambda *args: received.append(("direct", args)))
    client.on("emit", lambda *args: received.append(("emit", args)))
    await client.connect(f"http://127.0.0.1:{port}", transports=["websocket"], wait_timeout=5)
    try:
        await broadcast("direct", payload)
        await sio.emit("emit", payload)
        for _ in range(300):
            if len(received) == 2:
                break
            await asyncio.sleep(0.01)
        assert received[0][0] == "direct" and received[1][0] == "emit"
        assert received[0][1] == received[1][1]
    finally:
        await client.disconnect()
        await runner.cleanup()
