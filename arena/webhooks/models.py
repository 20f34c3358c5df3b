"""The webhook outbox: one row per match event to POST."""
from __future__ import annotations

from django.db import models


class WebhookDelivery(models.Model):
    """An event on its way to the webhook URL.

    Written in the transaction of the match change it reports, so it exists if and
    only if the change committed; it survives restarts until `delivered_at` is set.
    """

    event_id = models.UUIDField(unique=True, help_text="The event's id: the receiver's idempotency key.")
    event_type = models.CharField(max_length=32)
    url = models.URLField(max_length=1000)
    body = models.TextField(help_text="The exact JSON bytes that are signed and sent.")
    created_at = models.DateTimeField(auto_now_add=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the next attempt is due; a sender pushes it forward before it tries, so
    # two senders never POST the same row at the same time.
    next_attempt_at = models.DateTimeField(db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True, db_index=True)
    gave_up_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=255, blank=True, default="")

    class Meta:
        ordering = ["next_attempt_at"]
        verbose_name_plural = "webhook deliveries"

    def __str__(self) -> str:
        return f"{self.event_type} {self.event_id}"
