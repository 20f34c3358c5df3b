"""The game server's control endpoint: `POST /control`, on the match's own port.

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
    from arena.gameserver.session import GameSession

logger = logging.getLogger("arena.gameserver")
MAX_BODY = 4096


def attach(app: web.Application, session: GameSession) -> None:
    async def control(request: web.Request) -> web.Response:
        if request.content_length is None or request.content_length > MAX_BODY:
            return _error(413, "too_large", f"The body must have a Content-Length of at most {MAX_BODY} bytes.")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return _error(400, "invalid_request", "The body must be JSON.")
        if not isinstance(body, dict) or body.get("match") != session.info.id:
            return _error(404, "not_found", "No such match here.")
        action = body.get("action")
        if not control_token_valid(body.get("token"), match_id=session.info.id, action=str(action)):
            return _error(403, "permission_denied", "Invalid control token.")
        logger.info("control: %s", action)
        session.request_shutdown("cancelled")
        return web.json_response({"match": session.info.id, "action": action}, status=202)

    app.router.add_post(CONTROL_PATH, control)


def _error(status: int, code: str, detail: str) -> web.Response:
    return web.json_response({"error": code, "detail": detail}, status=status)
