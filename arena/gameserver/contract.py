"""What a game server promises the process that launched it.

The launcher reads the child's stdout until a line matches `PORT_LINE_RE`. A child
that cannot start prints an `Error:` line instead and exits with one of the codes
below, so the launcher can answer with a precise reason whichever launch strategy
is used. Nothing else is ever written to stdout.
"""
from __future__ import annotations

import re

PORT_LINE_RE = re.compile(r"^Port:\s(\d+)\n?")
ERROR_LINE_RE = re.compile(r"^Error:\s(\w+)\s?(.*)\n?")

EXIT_OK = 0
EXIT_CRASH = 1
EXIT_USAGE = 2
EXIT_NO_FREE_PORT = 3
EXIT_BAD_MATCH = 4

ERROR_CODES_BY_EXIT = {
    EXIT_NO_FREE_PORT: "no_free_port",
    EXIT_BAD_MATCH: "launch_failed",
}


def port_line(port: int) -> str:
    return f"Port: {port}\n"


def error_line(code: str, detail: str) -> str:
    return f"Error: {code} {detail}\n"
