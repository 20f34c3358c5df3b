"""The host registry: one row per game host, written by its agent's heartbeat.

Free capacity is not stored: it is `capacity` minus the live matches whose
`Match.host_name` is this host, counted under the host's row lock when a slot is
reserved (`services.host_reserve`). A match that ends, by whatever path (its
result, a cancel, a lost host), frees its slot with it, so no slot can leak.
"""
from __future__ import annotations

from django.db import models


class GameHost(models.Model):
    name = models.CharField(max_length=100, unique=True, help_text="Also its Celery queue: gamehost.<name>.")
    address = models.CharField(max_length=255, help_text="GAME_SERVER_HOST: the address players reach.")
    min_port = models.PositiveIntegerField()
    max_port = models.PositiveIntegerField()
    capacity = models.PositiveIntegerField(help_text="Matches it accepts at once (GAME_HOST_CAPACITY).")
    draining = models.BooleanField(default=False, help_text="Takes no new match; running ones play to their end.")
    version = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    last_heartbeat = models.DateTimeField(db_index=True)
    # Set by a launcher whose launch this host did not answer in time: placement
    # skips the host until then (it may be overloaded or cut off from the broker).
    suspect_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def queue(self) -> str:
        return queue_name(self.name)


def queue_name(host_name: str) -> str:
    return f"gamehost.{host_name}"
