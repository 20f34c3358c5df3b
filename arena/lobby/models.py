from __future__ import annotations

from django.conf import settings
from django.db import models


class QuickPlayEntry(models.Model):
    """A user waiting to be paired with the next user who presses Quick play."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    points_to_win = models.PositiveSmallIntegerField(default=5)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["created_at"]
        verbose_name_plural = "quick play entries"
