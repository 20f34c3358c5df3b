"""The transports behind `publish`: the outbox relay, the direct layer sends, and
the rule that publishing never breaks (nor holds up) the change it reports."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.utils import timezone

from arena.matches import services
from arena.matches.models import Match, MatchPlayer
from arena.notifications import backends, events
from arena.notifications.backends import OutboxRelay, backend_name
from arena.notifications.checks import notification_backend, redis_socket_timeout_too_short
from arena.notifications.models import OutboxEvent

pytestmark = [pytest.mark.django_db(transaction=True)]
USER = 7


def event(kind: str, match_id: str) -> dict:
    return {"type": kind, "match": {"id": match_id, "status": "x", "players": [], "points_to_win": 1}}


@database_sync_to_async
def add_row(kind: str, match_id: str, *, row_id: int | None = None, age: float = 0.0) -> int:
    row = OutboxEvent.objects.create(
        id=row_id,
        match_id=match_id,
        type=kind,
        payload=event(kind, match_id),
        user_ids=[USER],
        created_at=timezone.now() - timedelta(seconds=age),
    )
    return row.id


async def received(layer, channel: str, timeout: float = 3.0) -> dict:
    return await asyncio.wait_for(layer.receive(channel), timeout)


async def nothing_for(layer, channel: str, seconds: float) -> bool:
    try:
        await asyncio.wait_for(layer.receive(channel), seconds)
    except TimeoutError:
        return True
    return False


@pytest.fixture
def private_layer(monkeypatch, settings):
    """The relay sends to a fresh in-memory layer (whatever this run's layer is)."""
    layer = InMemoryChannelLayer()
    monkeypatch.setattr(backends, "get_channel_layer", lambda *args: layer)
    settings.NOTIFICATIONS_RELAY_INTERVAL = 0.05
    return layer


# --- the outbox relay -----------------------------------------------------------------


async def test_relay_delivers_new_rows_once_in_order_and_only_while_attached(private_layer):
    layer = private_layer
    channel = await layer.new_channel()
    await layer.group_add(events.user_group(USER), channel)
    watcher = await layer.new_channel()
    match_id = str(uuid.uuid4())
    await layer.group_add(events.match_group(match_id), watcher)

    await add_row(events.READY, match_id, row_id=100)  # before the relay: the connect snapshot has it
    relay = OutboxRelay()
    await relay.attach()
    await relay.attach()  # a second socket shares the relay
    try:
        assert relay.running
        await add_row(events.STARTED, match_id, row_id=200)
        await add_row(events.FINISHED, match_id, row_id=300)
        got = [await received(layer, channel) for _ in range(2)]
        assert [m["event"]["type"] for m in got] == [events.STARTED, events.FINISHED]
        assert {m["audience"] for m in got} == {events.PLAYERS} and got[0]["user_ids"] == [USER]
        public = [await received(layer, watcher) for _ in range(2)]
        assert [m["audience"] for m in public] == [events.PUBLIC, events.PUBLIC]

        # a row whose transaction commits late, below an id already delivered
        await add_row(events.SCORE, match_id, row_id=250)
        assert (await received(layer, channel))["event"]["type"] == events.SCORE
        assert await nothing_for(layer, channel, 0.4)  # and nothing twice

        await relay.detach()
        assert relay.running  # one socket is still there
    finally:
        await relay.detach()
    assert not relay.running
    await add_row(events.CANCELLED, match_id, row_id=400)
    assert await nothing_for(layer, channel, 0.3)


async def test_relay_deletes_rows_past_their_retention(private_layer, settings):
    settings.NOTIFICATIONS_OUTBOX_RETENTION = 60
    match_id = str(uuid.uuid4())
    old = await add_row(events.READY, match_id, age=3600)
    recent = await add_row(events.STARTED, match_id, age=10)
    relay = OutboxRelay()
    await relay.attach()
    try:
        deadline = time.monotonic() + 3
        while await database_sync_to_async(OutboxEvent.objects.filter(id=old).exists)():
            assert time.monotonic() < deadline, "old row not deleted"
            await asyncio.sleep(0.05)
        assert await database_sync_to_async(OutboxEvent.objects.filter(id=recent).exists)()
    finally:
        await relay.stop()


# --- which backend -------------------------------------------------------------------


def test_auto_picks_the_outbox_for_a_private_layer_and_direct_sends_for_a_shared_one(settings):
    settings.NOTIFICATIONS_BACKEND = "auto"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    assert backend_name() == "outbox" and notification_backend() == []
    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [{"address": "redis://127.0.0.1:6379/0", "socket_timeout": 10}]},
        }
    }
    assert backend_name() == "layer" and notification_backend() == []
    settings.NOTIFICATIONS_BACKEND = "outbox"  # would deliver once per process
    assert [c.id for c in notification_backend()] == ["notifications.E002"]
    settings.NOTIFICATIONS_BACKEND = "carrier-pigeon"
    assert [c.id for c in notification_backend()] == ["notifications.E001"]


def test_a_redis_read_timeout_shorter_than_the_blocking_receive_is_an_error(settings):
    def hosts(*entries):
        settings.CHANNEL_LAYERS = {
            "default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": list(entries)}}
        }

    hosts({"address": "redis://:secret@10.0.0.1:6379/0", "socket_timeout": 3})
    assert redis_socket_timeout_too_short() == ["10.0.0.1"]  # never the password
    assert [c.id for c in notification_backend()] == ["notifications.E003"]
    hosts("redis://127.0.0.1:6379/0?socket_timeout=30")
    assert redis_socket_timeout_too_short() == []
    hosts({"address": "redis://127.0.0.1:6379/0", "socket_timeout": None})
    assert redis_socket_timeout_too_short() == []


# --- best effort, after commit ------------------------------------------------------------


@pytest.fixture
def launching_match(users) -> Match:
    match = Match.objects.create(points_to_win=1)
    for seat, name in enumerate(("alice", "bob")):
        MatchPlayer.objects.create(match=match, user=users[name], side=("left", "right")[seat], seat=seat)
    return match


class RecordingLayer:
    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.sent: list[tuple[str, dict]] = []

    async def group_send(self, group: str, message: dict) -> None:
        await asyncio.sleep(self.delay)
        self.sent.append((group, message))


def test_the_outbox_row_commits_with_the_change_or_not_at_all(launching_match, settings):
    settings.NOTIFICATIONS_BACKEND = "outbox"
    with pytest.raises(RuntimeError), transaction.atomic():
        assert services.match_fail(launching_match.id, reason="launch_failed: test")
        assert OutboxEvent.objects.filter(match_id=launching_match.id).count() == 1
        raise RuntimeError("rolled back")
    assert not OutboxEvent.objects.filter(match_id=launching_match.id).exists()
    assert services.match_fail(launching_match.id, reason="launch_failed: test")
    row = OutboxEvent.objects.get(match_id=launching_match.id)
    assert row.type == events.FAILED and row.payload["match"]["status"] == "failed"
    assert sorted(row.user_ids) == sorted(p.user_id for p in launching_match.players.all())
    assert "token" not in row.payload


def test_a_broken_outbox_never_breaks_the_change(launching_match, settings, monkeypatch, caplog):
    settings.NOTIFICATIONS_BACKEND = "outbox"
    monkeypatch.setattr(OutboxEvent._meta, "db_table", "notifications_no_such_table")
    with caplog.at_level(logging.WARNING, logger="arena.notifications"):
        assert services.match_fail(launching_match.id, reason="launch_failed: test")
    assert Match.objects.get(pk=launching_match.id).status == "failed"
    assert any("could not queue match.failed" in r.getMessage() for r in caplog.records)


def test_direct_sends_wait_for_the_commit_and_skip_rollbacks(launching_match, settings, monkeypatch):
    settings.NOTIFICATIONS_BACKEND = "layer"
    layer = RecordingLayer()
    monkeypatch.setattr(backends, "get_channel_layer", lambda *args: layer)
    with pytest.raises(RuntimeError), transaction.atomic():
        services.match_fail(launching_match.id, reason="x")
        raise RuntimeError("rolled back")
    assert layer.sent == []
    with transaction.atomic():
        services.match_fail(launching_match.id, reason="x")
        assert layer.sent == []  # not before the commit
    groups = [group for group, _ in layer.sent]
    players = [events.user_group(p.user_id) for p in launching_match.players.all()]
    assert groups == [*players, events.match_group(launching_match.id), events.LOBBY_GROUP]
    assert all(m["event"]["type"] == events.FAILED for _, m in layer.sent)


def test_a_stuck_layer_holds_a_change_up_for_the_publish_timeout_only(launching_match, settings, monkeypatch, caplog):
    settings.NOTIFICATIONS_BACKEND = "layer"
    settings.NOTIFICATIONS_PUBLISH_TIMEOUT = 0.3
    monkeypatch.setattr(backends, "get_channel_layer", lambda *args: RecordingLayer(delay=30))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="arena.notifications"):
        assert services.match_fail(launching_match.id, reason="x")
    assert time.monotonic() - started < 2
    assert Match.objects.get(pk=launching_match.id).status == "failed"
    assert any("could not publish match.failed" in r.getMessage() for r in caplog.records)


def test_a_failing_publish_never_breaks_the_change(launching_match, monkeypatch, caplog):
    def explode():
        raise RuntimeError("no notifier today")

    monkeypatch.setattr("arena.notifications.publish.get_notifier", explode)
    with caplog.at_level(logging.WARNING, logger="arena.notifications"):
        assert services.match_fail(launching_match.id, reason="x")
    assert Match.objects.get(pk=launching_match.id).status == "failed"
    assert any("could not publish" in r.getMessage() for r in caplog.records)


# --- what one socket sends ------------------------------------------------------------------


async def test_a_socket_never_makes_a_match_look_younger(connect, tokens, users):
    sock = await connect(token=tokens["alice"])
    await sock.wait_for("hello")
    layer = get_channel_layer()
    match_id = str(uuid.uuid4())
    alice = users["alice"].pk
    for kind in (events.READY, events.STARTED, events.READY, events.SCORE, events.SCORE, events.STARTED,
                 events.FINISHED, events.SCORE, events.FINISHED):
        message = {"type": "notify", "audience": events.PLAYERS, "user_ids": [alice], "event": event(kind, match_id)}
        await layer.group_send(events.user_group(alice), message)
    await sock.wait_for(events.FINISHED, match_id)
    await sock.drain(0.3)
    assert [m["type"] for m in sock.about(match_id)] == [
        events.READY, events.STARTED, events.SCORE, events.SCORE, events.FINISHED
    ]
    # the public copy of a player's own match is dropped: theirs has the token
    await sock.send({"action": "ping"})
    public = {"type": "notify", "audience": events.PUBLIC, "user_ids": [alice], "event": event(events.READY, "m2")}
    await layer.group_send(events.user_group(alice), public)
    await sock.wait_for("pong")
    await sock.drain(0.3)
    assert sock.about("m2") == []



def test_a_game_server_may_publish_scores(launching_match, settings):
    from arena.notifications import publish

    settings.NOTIFICATIONS_BACKEND = "outbox"
    publish.match_score(str(launching_match.id), {"left": 1, "right": 0})
    publish.match_score("not-a-match", {"left": 1})  # logged, never raised
    row = OutboxEvent.objects.get(match_id=launching_match.id)
    assert row.type == events.SCORE and row.payload["score"] == {"left": 1, "right": 0}
