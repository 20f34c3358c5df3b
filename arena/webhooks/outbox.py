"""The adapter of `arena.matches.events`: write the event's outbox row."""
from __future__ import annotations

import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from arena.conf import settings
from arena.webhooks.models import WebhookDelivery


def on_match_event(kind: str, match, event: dict[str, Any]) -> None:
    """Called inside the change's transaction; sends nothing before it commits."""
    url = settings.ARENA_WEBHOOK_URL
    if not url:
        return
    row = WebhookDelivery.objects.create(
        event_id=event["id"],
        event_type=event["type"],
        url=url,
        body=json.dumps(event, separators=(",", ":"), sort_keys=True),
        next_attempt_at=timezone.now(),
    )
    from arena.webhooks.delivery import deliver_soon

    transaction.on_commit(lambda: deliver_soon(row.pk))
