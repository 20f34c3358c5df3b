"""The notification outbox: match events written in the same transaction as the
status change they report.

Only the `outbox` backend writes here (the default without Redis); see
`arena.notifications.backends`. A row holds the public event and the ids of the
match's players, never a game token: tokens are issued for each connection at
delivery time, by the process that holds the socket.
"""
from __future__ import annotations

from django.db import models


class OutboxEvent(models.Model):
    id = models.BigAutoField(primary_key=True)
    match_id = models.UUIDField(db_index=True)
    type = models.CharField(max_length=32)
    payload = models.JSONField()
    user_ids = models.JSONField(default=list)
    created_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.type} {self.match_id} (#{self.id})"
