"""The match's remote control endpoint: `POST /control`, on the match's own port.

It reaches one match wherever it runs (another machine of the fleet, or a process
shared by several matches), through the address players already reach; the
local control socket (`arena.gameserver.control`) is the launcher's own path to a
process on its machine.

The web side (`arena.matches.control.send_cancel`) sends
`{"match": id, "action": "cancel", "token": signed}`; a valid token for this
server's match ends the session as `cancelled` (game_over to every client, then
the process exits and frees its port). Anything else gets a JSON error and
changes nothing.
"""
from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from arena.matches.control import CONTROL_PATH, control_token_valid

if TYPE_CHECKING:
    from arena.gameserver.room import Room

logger = logging.getLogger("arena.gameserver")
MAX_BODY = 4096


def attach(app: web.Application, room: Room) -> None:
    async def control(request: web.Request) -> web.Response:
        if request.content_length is None or request.content_length > MAX_BODY:
            return _error(413, "too_large", f"The body must have a Content-Length of at most {MAX_BODY} bytes.")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request", "The body must be JSON.")
        if not isinstance(body, dict) or body.get("match") != room.info.id:
            return _error(404, "not_found", "No such match here.")
        action = body.get("action")
        if not control_token_valid(body.get("token"), match_id=room.info.id, action=str(action)):
            return _error(403, "permission_denied", "Invalid control token.")
        logger.info("control: %s", action)
        room.request_shutdown("cancelled")
        return web.json_response({"match": room.info.id, "action": action}, status=202)

    app.router.add_post(CONTROL_PATH, control)


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)
