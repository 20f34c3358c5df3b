"""`python -m bench.emit`: what one snapshot costs the server, per recipient.

A Socket.IO server configured like a game server (python-socketio on aiohttp)
runs in this process; N lean clients connect from load-generator processes. The
server broadcasts a snapshot-sized `state` event at 30 Hz for a few seconds, in
two ways, and the CPU time of this process is divided by the messages sent:

* ``emit``: `await sio.emit("state", payload)`, as `arena.gameserver.room`
  did before: python-socketio creates one task per recipient, each puts the packet on
  that connection's Engine.IO queue, whose writer task sends it;
* ``queue``: the packet is encoded once and put straight on every connection's
  Engine.IO queue (`queue.put_nowait`): no task per recipient;
* ``direct``: `arena.gameserver.broadcast.Broadcaster`, what the session uses:
  the WebSocket text is built once and written straight to every WebSocket
  whose writer is idle (others get the packet queued), without waking any task.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time

from bench.common import free_port, save_result, table
from arena.gameserver.broadcast import Broadcaster
from bench.load import LoadGenerator

PAYLOAD = {"tick": 1234, "ball": {"x": 512.25, "y": 301.5, "vx": -350.0, "vy": 42.17},
           "paddles": {"left": 288.5, "right": 300.0}, "score": {"left": 2, "right": 3},
           "acks": {"left": 117, "right": 95}}


def queue_broadcast(sio, event: str, data) -> None:
    from engineio import packet as eio_packet
    from socketio import packet as sio_packet

    pkt = eio_packet.Packet(eio_packet.MESSAGE, sio_packet.Packet(sio_packet.EVENT, data=[event, data]).encode())
    sockets = sio.eio.sockets
    for _, eio_sid in sio.manager.get_participants("/", None):
        socket = sockets.get(eio_sid)
        if socket is not None and not socket.closed:
            socket.queue.put_nowait(pkt)


async def serve(port: int, ready: threading.Event, plan: list, out: dict) -> None:
    import socketio
    from aiohttp import web

    sio = socketio.AsyncServer(async_mode="aiohttp", cors_allowed_origins="*", ping_interval=5, ping_timeout=5,
                               async_handlers=False, logger=False, engineio_logger=False)
    sio.on("connect", lambda sid, environ, auth=None: True)
    broadcast = Broadcaster(sio)
    app = web.Application()
    sio.attach(app)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    ready.set()
    while not plan:
        await asyncio.sleep(0.05)
    for method, seconds in plan[0]:
        await asyncio.sleep(1.0)
        recipients = len(sio.manager.rooms.get("/", {}).get(None, {}))
        sent = 0
        cpu0, start = time.process_time(), time.monotonic()
        next_at = start
        while time.monotonic() - start < seconds:
            if method == "emit":
                await sio.emit("state", PAYLOAD)
            elif method == "queue":
                queue_broadcast(sio, "state", PAYLOAD)
            else:
                await broadcast("state", PAYLOAD)
            sent += recipients
            next_at += 1 / 30
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
        await asyncio.sleep(0.5)  # let the writers drain what was queued
        cpu = time.process_time() - cpu0
        out[method] = {"recipients": recipients, "messages": sent, "cpu_s": cpu,
                       "us_per_message": 1e6 * cpu / max(1, sent)}
    await runner.cleanup()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=5)
    args = parser.parse_args(argv)
    port, ready, plan, out = free_port(), threading.Event(), [], {}
    thread = threading.Thread(target=asyncio.run, args=(serve(port, ready, plan, out),), daemon=True)
    thread.start()
    ready.wait(30)
    with LoadGenerator(2) as load:
        ok, errors = load.connect([{"key": f"c{i}", "match": "emit", "port": port, "role": "spectator"}
                                   for i in range(args.clients)])
        plan.append([("emit", args.seconds), ("queue", args.seconds), ("direct", args.seconds)])
        thread.join(timeout=3 * (args.seconds + 2) + 60)
        load.close()
    rows = [[m, r["recipients"], r["messages"], r["cpu_s"], r["us_per_message"]] for m, r in out.items()]
    text = table(["method", "recipients", "messages", "server CPU s", "CPU µs per recipient-message"], rows,
                 title=f"Broadcast cost, {args.clients} clients, 30 Hz ({ok} connected)")
    print(text)
    save_result("emit", {"args": vars(args), "results": out, "table": text})
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
