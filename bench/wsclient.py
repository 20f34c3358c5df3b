"""A lean Socket.IO v5 / Engine.IO v4 client over a raw WebSocket, for load.

python-socketio's AsyncClient costs ~40 µs of CPU per message; a benchmark that
needs thousands of connections cannot afford that, or it measures itself. This
client speaks just enough of the protocols, straight on an asyncio Protocol:

* WebSocket (RFC 6455): the upgrade request, unmasked server frames (text, ping,
  close; continuation frames are joined), masked client frames. No compression
  is offered, as python-socketio's own client does not offer it either.
* Engine.IO v4: the open packet ``0{...}``, answers ``3`` to the server's ``2``.
* Socket.IO v5: ``40{"token": ...}`` joins the default namespace, events are
  ``42["name", payload]``.

A `state` event is never decoded as JSON: its tick is sliced out of the text,
and the raw text is kept for whoever wants the rest. Times are
`time.monotonic()` at the read that delivered the message (the same clock the
game server's loop runs on).
"""
from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from array import array
from collections.abc import Callable

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATE_PREFIX = '42["state",'
TICK_KEY = '"tick":'

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def _mask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if not n:
        return payload
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(repeated, "little")).to_bytes(n, "little")


def frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = os.urandom(4)
    return header + key + _mask(payload, key)


def tick_of(message: str) -> int:
    """The tick of a `42["state",{"tick":N,...}]` message, without decoding it."""
    start = message.index(TICK_KEY, len(STATE_PREFIX)) + len(TICK_KEY)
    end = start
    while message[end].isdigit():
        end += 1
    return int(message[start:end])


class Connection(asyncio.Protocol):
    """One game-server connection. Subclass hooks or pass `on_event`."""

    def __init__(self, token: str | None = None, *, record: bool = True,
                 on_event: Callable[[Connection, str, str, float], None] | None = None) -> None:
        self.token = token
        self.record = record
        self.on_event = on_event
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.fragments: list[bytes] = []
        self.handshake_done = False
        self.opened = asyncio.get_running_loop().create_future()  # Socket.IO namespace joined
        self.closed = asyncio.get_running_loop().create_future()
        self.welcome: str | None = None
        self.last_state: str | None = None
        self.ticks = array("q")  # ticks of the states received
        self.times = array("d")  # and when
        self.messages = 0
        self.game_over = False
        self.refused: str | None = None
        self.seq = 0
        self._key = base64.b64encode(os.urandom(16))
        self._now = 0.0

    # --- asyncio.Protocol ------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._now = time.monotonic()
        buf = self.buffer
        buf += data
        if not self.handshake_done:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buf[:end])
            del buf[: end + 4]
            if not head.startswith(b"HTTP/1.1 101"):
                self._fail(f"upgrade refused: {head[:60]!r}")
                return
            self.handshake_done = True
        pos = 0
        size = len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length = b1 & 0x7F
            offset = pos + 2
            if length == 126:
                if size - offset < 2:
                    break
                length = int.from_bytes(buf[offset:offset + 2], "big")
                offset += 2
            elif length == 127:
                if size - offset < 8:
                    break
                length = int.from_bytes(buf[offset:offset + 8], "big")
                offset += 8
            if b1 & 0x80:  # a masked server frame is a protocol error; unmask anyway
                if size - offset < 4:
                    break
                offset += 4
            if size - offset < length:
                break
            payload = bytes(buf[offset:offset + length])
            pos = offset + length
            self._frame(b0 & 0x80, b0 & 0x0F, payload)
        if pos:
            del buf[:pos]

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(self.refused or f"connection lost: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    # --- frames and packets ----------------------------------------------------------

    def _frame(self, fin: int, opcode: int, payload: bytes) -> None:
        if opcode == OP_CONT:
            self.fragments.append(payload)
            if not fin:
                return
            payload, self.fragments = b"".join(self.fragments), []
            opcode = OP_TEXT
        elif not fin:
            self.fragments = [payload]
            return
        if opcode == OP_TEXT:
            self._packet(payload.decode())
        elif opcode == OP_PING:
            self.transport.write(frame(OP_PONG, payload))
        elif opcode == OP_CLOSE:
            self.transport.close()

    def _packet(self, text: str) -> None:
        kind = text[:1]
        if kind == "4":
            self.messages += 1
            if text.startswith(STATE_PREFIX):
                self.last_state = text
                if self.record:
                    self.ticks.append(tick_of(text))
                    self.times.append(self._now)
                if self.on_event is not None:
                    self.on_event(self, "state", text, self._now)
                return
            if text.startswith("42"):
                name = text[4:text.index('"', 4)]
                if name == "welcome":
                    self.welcome = text
                elif name == "game_over":
                    self.game_over = True
                if self.on_event is not None:
                    self.on_event(self, name, text, self._now)
            elif text.startswith("40"):
                if not self.opened.done():
                    self.opened.set_result(self)
            elif text.startswith("44"):
                self.refused = text[2:]
                if not self.opened.done():
                    self.opened.set_exception(ConnectionError(f"refused: {self.refused}"))
            elif text.startswith("41"):
                self.close()
        elif kind == "2":
            self.send_text("3")
        elif kind == "0":
            auth = "40" + json.dumps({"token": self.token}) if self.token else "40"
            self.send_text(auth)
        elif kind == "1":
            self.close()

    def _fail(self, reason: str) -> None:
        self.refused = reason
        if self.transport is not None:
            self.transport.close()

    # --- sending ---------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(frame(OP_TEXT, text.encode()))

    def emit(self, event: str, payload) -> None:
        self.send_text("42" + json.dumps([event, payload], separators=(",", ":")))

    def send_input(self, move: int) -> int:
        self.seq += 1
        self.send_text(f'42["input",{{"seq":{self.seq},"move":{move}}}]')
        return self.seq

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            try:
                self.transport.write(frame(OP_CLOSE, b"\x03\xe8"))
            finally:
                self.transport.close()


async def connect(host: str, port: int, token: str | None = None, *, timeout: float = 10.0,
                  factory: Callable[[], Connection] | None = None, **kwargs) -> Connection:
    """Open a WebSocket to a game server and join its namespace."""
    loop = asyncio.get_running_loop()
    make = factory or (lambda: Connection(token, **kwargs))
    transport, conn = await asyncio.wait_for(loop.create_connection(make, host, port), timeout)
    key = conn._key.decode()
    transport.write(
        (
            f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    try:
        await asyncio.wait_for(asyncio.shield(conn.opened), timeout)
    except BaseException:
        transport.close()
        raise
    return conn


def state_field(text: str) -> dict:
    """Decode a state message when its content is really needed."""
    return json.loads(text[2:])[1]


def probe(host: str, port: int, token: str | None = None, timeout: float = 10.0) -> float:
    """Blocking: open a Socket.IO connection, wait until it is accepted, close it.

    For threads that only need to know a game server takes connections; returns
    the seconds it took.
    """
    import socket

    started = time.monotonic()
    deadline = started + timeout
    with socket.create_connection((host, port), timeout=timeout) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {host}:{port}\r\n"
                f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        upgraded = False
        while True:
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed before the namespace was joined")
            buf += chunk
            if not upgraded:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    continue
                if not buf.startswith(b"HTTP/1.1 101"):
                    raise ConnectionError(f"upgrade refused: {buf[:60]!r}")
                buf = buf[end + 4:]
                upgraded = True
            while len(buf) >= 2:
                length = buf[1] & 0x7F
                offset = 2
                if length == 126:
                    if len(buf) < 4:
                        break
                    length = int.from_bytes(buf[2:4], "big")
                    offset = 4
                elif length == 127:
                    if len(buf) < 10:
                        break
                    length = int.from_bytes(buf[2:10], "big")
                    offset = 10
                if len(buf) < offset + length:
                    break
                text = buf[offset:offset + length].decode()
                buf = buf[offset + length:]
                if text.startswith("0"):
                    auth = "40" + json.dumps({"token": token}) if token else "40"
                    sock.sendall(frame(OP_TEXT, auth.encode()))
                elif text.startswith("40"):
                    elapsed = time.monotonic() - started
                    sock.sendall(frame(OP_CLOSE, b"\x03\xe8"))
                    return elapsed
                elif text.startswith("44"):
                    raise ConnectionError(f"refused: {text[2:]}")
