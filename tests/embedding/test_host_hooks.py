"""What a host project plugs into: match signals, the webhook outbox and its
signed delivery, settings checks, and user keys that are not integers."""
from __future__ import annotations

import http.server
import json
import threading
import uuid
from datetime import timedelta

import pytest
from django.core import checks
from django.db import transaction
from django.test import override_settings
from django.utils import timezone

from arena.gameserver.contract import MatchInfo, Seat, user_key
from arena.matches import events, services
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from arena.matches.tokens import game_token_issue, game_token_user_id
from arena.webhooks import delivery
from arena.webhooks.models import WebhookDelivery
from arena.webhooks.signing import verify


def waiting_match(users) -> Match:
    match = Match.objects.create(status=MatchStatus.WAITING, host="127.0.0.1", port=31999, points_to_win=3)
    for seat, name in enumerate(("alice", "bob")):
        MatchPlayer.objects.create(match=match, user=users[name], side=("left", "right")[seat], seat=seat)
    return match


class Recorder:
    def __init__(self, signal) -> None:
        self.calls: list[dict] = []
        self.signal = signal

    def __call__(self, sender, **kwargs) -> None:
        self.calls.append(kwargs)

    def __enter__(self):
        self.signal.connect(self, weak=False)
        return self

    def __exit__(self, *exc) -> None:
        self.signal.disconnect(self)


def test_signals_are_sent_after_commit_with_the_event(users, django_capture_on_commit_callbacks):
    match = waiting_match(users)
    with Recorder(events.match_cancelled) as cancelled:
        with django_capture_on_commit_callbacks(execute=False) as pending:
            assert services.match_cancel(match.pk, reason="no_show: bob")
        assert cancelled.calls == []  # nothing before the commit
        for callback in pending:
            callback()
    (call,) = cancelled.calls
    assert call["match"].pk == match.pk
    event = call["event"]
    assert event["type"] == "match.cancelled" and event["match"]["status"] == "cancelled"
    assert event["match"]["finish_reason"] == "no_show: bob"
    assert [p["user_id"] for p in event["match"]["players"]] == [users["alice"].pk, users["bob"].pk]
    assert all("token" not in p for p in event["match"]["players"])


def test_a_rolled_back_change_sends_no_signal(users, django_capture_on_commit_callbacks):
    match = waiting_match(users)
    with Recorder(events.match_failed) as failed, django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            services.match_fail(match.pk, reason="boom")
            raise RuntimeError
    assert failed.calls == []
    assert Match.objects.get(pk=match.pk).status == MatchStatus.WAITING


def test_ready_event_carries_each_players_game_token(users):
    match = waiting_match(users)
    event = events.event_payload(events.READY, services.selectors.match_get(match.pk))
    for player in event["match"]["players"]:
        assert game_token_user_id(player["token"], match_id=match.pk) == player["user_id"]


def test_a_failing_receiver_does_not_break_the_change(users, django_capture_on_commit_callbacks):
    match = waiting_match(users)

    def broken(sender, **kwargs):
        raise ValueError("receiver bug")

    events.match_failed.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            assert services.match_fail(match.pk, reason="lost")
    finally:
        events.match_failed.disconnect(broken)
    assert Match.objects.get(pk=match.pk).status == MatchStatus.FAILED


class FlakyReceiver(http.server.ThreadingHTTPServer):
    """Answers 500 to the first `failures` POSTs, then 204; keeps what it got."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.requests: list[tuple[dict, bytes]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append((dict(self.headers), body))
                self.send_response(500 if len(server.requests) <= server.failures else 204)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


def test_webhook_row_commits_with_the_change_and_is_retried_until_delivered(users, django_capture_on_commit_callbacks):
    receiver = FlakyReceiver(failures=1)
    match = waiting_match(users)
    with override_settings(ARENA_WEBHOOK_URL=receiver.url, ARENA_WEBHOOK_SECRET="k"):
        with django_capture_on_commit_callbacks(execute=False):  # no background sender in this test
            with pytest.raises(RuntimeError), transaction.atomic():
                services.match_fail(match.pk, reason="boom")
                raise RuntimeError
            assert not WebhookDelivery.objects.exists()  # rolled back with the change
            services.match_fail(match.pk, reason="lost")
        (row,) = WebhookDelivery.objects.all()
        assert row.event_type == "match.failed" and json.loads(row.body)["match"]["finish_reason"] == "lost"

        assert delivery.deliver_due() == 0  # the receiver answers 500
        row.refresh_from_db()
        assert row.attempts == 1 and row.last_error == "HTTP 500" and row.delivered_at is None
        assert row.next_attempt_at > timezone.now()  # backing off
        assert delivery.deliver_due() == 0 and len(receiver.requests) == 1  # not due yet

        WebhookDelivery.objects.filter(pk=row.pk).update(next_attempt_at=timezone.now() - timedelta(seconds=1))
        assert delivery.deliver_due() == 1
        row.refresh_from_db()
        assert row.delivered_at is not None and row.attempts == 2
    receiver.shutdown()

    (first_headers, first_body), (headers, body) = receiver.requests
    assert first_body == body == row.body.encode()
    assert first_headers["X-Arena-Event-Id"] == headers["X-Arena-Event-Id"] == str(row.event_id)  # idempotency key
    assert headers["X-Arena-Event"] == "match.failed"
    assert verify("k", headers["X-Arena-Timestamp"], body, headers["X-Arena-Signature"])
    assert not verify("other", headers["X-Arena-Timestamp"], body, headers["X-Arena-Signature"])
    assert not verify("k", headers["X-Arena-Timestamp"], body + b" ", headers["X-Arena-Signature"])


def test_webhook_gives_up_after_its_attempts(users):
    row = WebhookDelivery.objects.create(
        event_id=uuid.uuid4(), event_type="match.failed", url="http://127.0.0.1:9/none", body="{}",
        next_attempt_at=timezone.now(),
    )
    with override_settings(ARENA_WEBHOOK_MAX_ATTEMPTS=1, ARENA_WEBHOOK_SECRET="k", ARENA_WEBHOOK_TIMEOUT=2):
        assert delivery.deliver_due() == 0
    row.refresh_from_db()
    assert row.gave_up_at is not None and row.attempts == 1 and row.last_error


def arena_errors() -> set[str]:
    return {m.id for m in checks.run_checks() if m.id and m.id.startswith("matches.")}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"GAME_SERVER_MIN_PORT": 26000, "GAME_SERVER_MAX_PORT": 25000}, "matches.E001"),
        ({"GAME_SERVER_MAX_PORT": 70000}, "matches.E001"),
        ({"GAME_SERVER_LAUNCHER": "teleport"}, "matches.E002"),
        ({"GAME_HEARTBEAT_TIMEOUT": 2.0, "GAME_HEARTBEAT_INTERVAL": 3.0}, "matches.E003"),
        ({"ARENA_API_AUTHENTICATION_CLASSES": ["nowhere.Auth"]}, "matches.E004"),
        ({"ARENA_WEBHOOK_URL": "ftp://example.com/x", "ARENA_WEBHOOK_SECRET": "k"}, "matches.E005"),
        ({"ARENA_WEBHOOK_URL": "https://example.com/x", "ARENA_WEBHOOK_SECRET": ""}, "matches.E007"),
        ({"ARENA_METRICS_ALLOWED": ["127.0.0.0/8", "10.0.0.0/33"]}, "matches.E008"),
        ({"GAME_HOST_METRICS_PORT": 70000}, "matches.E008"),
    ],
)
def test_settings_checks(overrides, code):
    assert code not in arena_errors()
    with override_settings(**overrides):
        assert code in arena_errors()


def test_user_keys_that_are_not_integers_travel_as_strings():
    key = uuid.uuid4()
    assert user_key(7) == 7 and user_key(key) == str(key)
    token = game_token_issue(user_id=key, match_id="m1")
    assert game_token_user_id(token, match_id="m1") == str(key)
    assert game_token_user_id(game_token_issue(user_id=7, match_id="m1"), match_id="m1") == 7  # ints unchanged
    info = MatchInfo(id="m1", points_to_win=3, seats=(Seat(str(key), "a@example.com", "left"), Seat(7, "b", "right")))
    back = MatchInfo.from_dict(json.loads(json.dumps(info.as_dict())))
    assert back == info and back.seat_of(str(key)).side == "left"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("start", ["after_commit", "supervisor"])
def test_the_background_sender_delivers_committed_rows(start):
    from arena.matches.supervisor import supervise_once

    receiver = FlakyReceiver(failures=0)
    row = WebhookDelivery.objects.create(
        event_id=uuid.uuid4(), event_type="match.ready", url=receiver.url, body='{"x":1}', next_attempt_at=timezone.now(),
    )
    with override_settings(ARENA_WEBHOOK_SECRET="k"):
        if start == "after_commit":
            delivery.deliver_soon(row.pk)  # returns at once; the sender thread posts
        else:
            supervise_once()  # a row nobody sent (its process exited): the supervisor's pass hands it over
        deadline = timezone.now() + timedelta(seconds=60)
        while WebhookDelivery.objects.filter(pk=row.pk, delivered_at=None).exists():
            assert timezone.now() < deadline, "the sender thread did not deliver"
            threading.Event().wait(0.05)
    receiver.shutdown()
    ((headers, body),) = receiver.requests
    assert body == b'{"x":1}' and verify("k", headers["X-Arena-Timestamp"], body, headers["X-Arena-Signature"])


def test_old_finished_rows_are_pruned(db):
    old = timezone.now() - timedelta(days=30)
    kept = []
    for delivered, gave_up in ((old, None), (None, old), (timezone.now(), None), (None, None)):
        kept.append(WebhookDelivery.objects.create(
            event_id=uuid.uuid4(), event_type="match.ready", url="http://127.0.0.1:9/", body="{}",
            next_attempt_at=old, delivered_at=delivered, gave_up_at=gave_up,
        ))
    assert delivery.prune() == 2
    assert set(WebhookDelivery.objects.values_list("pk", flat=True)) == {kept[2].pk, kept[3].pk}
