"""`/ws/notifications/`: one always-open socket per browser tab or script.

On connect an authenticated user joins the group of their user id (every tab of
theirs is in it, so every tab gets every event) and is sent, at once, the current
state of their live match (or of a match that ended in the last
`NOTIFICATIONS_REPLAY_RECENT` seconds), marked `"replay": true`. The group is
joined *before* that state is read, so an event produced meanwhile is either in
the state or arrives after it; nothing falls between the two.

A `match.ready` to a player carries a game token issued here, for this user, at
delivery time: tokens never travel through Redis or sit in the outbox.

Client messages (JSON objects):
    {"action": "watch", "match": "<id>"}    public events of a match (spectators)
    {"action": "unwatch", "match": "<id>"}
    {"action": "ping"}                      answered with {"type": "pong"}
"""
from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from arena.gameserver.contract import UserKey, user_key
from arena.matches import selectors
from arena.matches.errors import NotFound
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import FINAL_STATUSES, LIVE_STATUSES
from arena.matches.tokens import game_token_issue
from arena.metrics import definitions as metrics
from arena.notifications import events
from arena.notifications.backends import get_notifier, setting

logger = logging.getLogger("arena.notifications")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_UNAVAILABLE = 1011
MAX_MESSAGE = 4096
REMEMBERED_MATCHES = 64
# Channel layers forget group members after `group_expiry` (a day by default); a
# socket that lives that long renews its groups on a ping at most this often.
REJOIN_EVERY = 3600.0


class NotificationConsumer(AsyncJsonWebsocketConsumer):
    user = None
    attached = False
    counted = False  # in arena_notification_sockets

    # --- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.user = user
        self.groups_joined: set[str] = set()
        self.joined_at = time.monotonic()
        self.watching: set[str] = set()
        self.ranks: OrderedDict[str, int] = OrderedDict()
        self.notifier = get_notifier()
        try:
            await self._join(events.user_group(user.pk))
            await self.notifier.attach()
            self.attached = True
        except Exception as error:  # noqa: BLE001 - the layer (Redis) is unreachable
            logger.warning("notification socket of %s refused: %s", user.get_username(), error)
            await self.accept()
            await self.close(code=CLOSE_UNAVAILABLE)
            return
        await self.accept()
        self.counted = True
        metrics.notification_sockets.inc()
        await self.send_json({"type": "hello", "user": user.get_username()})
        for match, event in await database_sync_to_async(self._user_state)():
            await self._send_event(event, match_players(match), replay=True)

    async def disconnect(self, code: int) -> None:
        if self.counted:
            self.counted = False
            metrics.notification_sockets.dec()
        if self.attached:
            self.attached = False
            try:
                await self.notifier.detach()
            except Exception:  # noqa: BLE001
                logger.warning("notification relay detach failed", exc_info=True)
        for group in list(getattr(self, "groups_joined", ())):
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:  # noqa: BLE001 - the group expires by itself
                logger.debug("group_discard %s failed", group, exc_info=True)

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined.add(group)

    def _user_state(self) -> list[tuple[Match, dict]]:
        match = selectors.match_live_for_user(self.user)
        if match is None:
            recent = timezone.now() - timedelta(seconds=float(setting("NOTIFICATIONS_REPLAY_RECENT")))
            ended = (
                MatchPlayer.objects.filter(
                    user=self.user, match__status__in=FINAL_STATUSES, match__finished_at__gte=recent
                )
                .order_by("-match__finished_at")
                .values_list("match_id", flat=True)
                .first()
            )
            match = selectors.match_get(ended) if ended else None
        return [(match, event) for event in events.current(match)] if match else []

    # --- from the client ------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.user is None:
            return  # refused, closing
        if text_data is None or len(text_data) > MAX_MESSAGE:
            await self._error("invalid_message", f"Send JSON text frames of at most {MAX_MESSAGE} bytes.")
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("invalid_message", "Not JSON.")
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        action = content.get("action") if isinstance(content, dict) else None
        if action == "ping":
            await self.send_json({"type": "pong"})
            if time.monotonic() - self.joined_at > REJOIN_EVERY:
                self.joined_at = time.monotonic()
                for group in list(self.groups_joined):
                    await self.channel_layer.group_add(group, self.channel_name)
        elif action == "lobby":
            # Every match's public events, so a lobby page stays live without polling.
            await self._join(events.LOBBY_GROUP)
            await self.send_json({"type": "lobby"})
        elif action in ("watch", "unwatch"):
            match_id = _uuid(content.get("match"))
            if match_id is None:
                await self._error("invalid_message", "'match' must be a match id.")
            elif action == "watch":
                await self._watch(match_id)
            else:
                await self._unwatch(match_id)
        else:
            await self._error("unknown_action", "Actions: lobby, watch, unwatch, ping.")

    async def _watch(self, match_id: str) -> None:
        if match_id not in self.watching and len(self.watching) >= int(setting("NOTIFICATIONS_MAX_WATCHED")):
            await self._error("too_many_watched", "Unwatch a match before watching another.")
            return
        try:
            match = await database_sync_to_async(selectors.match_get)(match_id)
        except NotFound:
            await self._error("not_found", f"No match {match_id}.")
            return
        group = events.match_group(match_id)
        if group not in self.groups_joined:
            await self._join(group)
        self.watching.add(match_id)
        # Read again after joining, for the same reason as on connect.
        match = await database_sync_to_async(selectors.match_get)(match_id)
        await self.send_json({"type": "watching", "match": events.match_public(match)})
        for event in events.current(match):
            await self._send_event(event, match_players(match), replay=True)

    async def _unwatch(self, match_id: str) -> None:
        self.watching.discard(match_id)
        group = events.match_group(match_id)
        if group in self.groups_joined:
            self.groups_joined.discard(group)
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.send_json({"type": "unwatched", "match": {"id": match_id}})

    async def _error(self, code: str, detail: str) -> None:
        await self.send_json({"type": "error", "code": code, "detail": detail})

    # --- from the channel layer -----------------------------------------------------

    async def notify(self, message: dict[str, Any]) -> None:
        players = [user_key(uid) for uid in message.get("user_ids", ())]
        if message.get("audience") == events.PUBLIC and user_key(self.user.pk) in players:
            return  # a player watching their own match: their own copy comes (or came) with a token
        await self._send_event(message["event"], players)

    async def _send_event(self, event: dict[str, Any], players: list[UserKey], *, replay: bool = False) -> None:
        """Send one event unless this socket already told something newer about its match."""
        match_id = event["match"]["id"]
        rank, last = events.RANK.get(event["type"], 0), self.ranks.get(match_id, 0)
        if rank < last or (rank == last and event["type"] not in events.REPEATABLE):
            return
        self.ranks[match_id] = rank
        self.ranks.move_to_end(match_id)
        while len(self.ranks) > REMEMBERED_MATCHES:
            self.ranks.popitem(last=False)
        out = dict(event)
        if event["type"] == events.READY and user_key(self.user.pk) in players and event["match"]["status"] in LIVE_STATUSES:
            out["token"] = game_token_issue(user_id=self.user.pk, match_id=match_id)
        if replay:
            out["replay"] = True
        await self.send_json(out)


def match_players(match: Match) -> list[UserKey]:
    return [user_key(p.user_id) for p in match.players.all()]


def _uuid(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        return str(UUID(value))
    except ValueError:
        return None
