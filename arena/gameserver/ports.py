"""Binding the first free port of the configured range."""
from __future__ import annotations

import socket


class NoFreePort(Exception):
    pass


def bind_first_free(host: str, first: int, last: int, backlog: int = 512) -> socket.socket:
    """A listening socket on the lowest free port in [first, last].

    The kernel refuses a second listener on a port, so concurrent game servers
    scanning the same range can never end up sharing one. SO_REUSEADDR only lets
    us take a port whose previous owner left connections in TIME_WAIT, so ports of
    finished matches are reusable at once.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for port in range(first, last + 1):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError:
            sock.close()
            continue
        sock.setblocking(False)
        return sock
    raise NoFreePort(f"no free port in {first}..{last} on {host}")
