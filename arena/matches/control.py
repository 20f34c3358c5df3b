"""Control messages to one match's game server: today, "cancel".

A message is addressed to a match, not to a process: it is an HTTP request to
the match's own game server (`POST http://<host>:<port>/control`, the address
its players use), carrying a token signed with SECRET_KEY over the match id and
the action. A server that serves several matches, on whatever host, can route it
by match id; a token for one match is worth nothing to another. Only processes
that know SECRET_KEY (the web processes, the supervisor, the game servers
themselves) can make one.

Best effort and bounded: the caller has already written the decision to the
database, and a server that misses the message learns it from its next heartbeat
(`services.match_heartbeat`).
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from uuid import UUID

from arena.conf import settings
from django.core import signing

logger = logging.getLogger("arena.matches")

CONTROL_PATH = "/control"
ACTIONS = frozenset({"cancel"})
_SALT = "arena.matches.control"


def control_token(match_id: UUID | str, action: str) -> str:
    return signing.dumps({"match": str(match_id), "action": action}, salt=_SALT, compress=False)


def control_token_valid(token: object, *, match_id: str, action: str) -> bool:
    """True if `token` was signed here for this match and action, recently."""
    if not isinstance(token, str) or action not in ACTIONS:
        return False
    try:
        data = signing.loads(token, salt=_SALT, max_age=settings.GAME_CONTROL_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return False
    return isinstance(data, dict) and data.get("match") == str(match_id) and data.get("action") == action


def send_cancel(host: str, port: int, match_id: UUID | str) -> bool:
    """Tell the game server at host:port to cancel `match_id` now; True if it said so."""
    body = json.dumps({"match": str(match_id), "action": "cancel", "token": control_token(match_id, "cancel")})
    request = urllib.request.Request(
        f"http://{host}:{port}{CONTROL_PATH}", data=body.encode(), method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=settings.GAME_CONTROL_TIMEOUT) as response:
            return response.status == 202
    except (urllib.error.URLError, OSError, ValueError) as error:
        logger.warning("cancel of match %s could not reach %s:%s (%s); its heartbeat will", match_id, host, port, error)
        return False
