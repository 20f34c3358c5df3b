"""Matches and their players.

Models hold data and constraints only; every write goes through
`arena.matches.services` so the API, the admin, the lobby and the game server share
one code path.
"""
from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from arena.matches.states import LIVE_STATUSES, MatchStatus

SIDE_CHOICES = [("left", "Left"), ("right", "Right")]


class Match(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    status = models.CharField(
        max_length=16, choices=MatchStatus.choices, default=MatchStatus.LAUNCHING, db_index=True
    )
    finish_reason = models.CharField(max_length=255, blank=True, default="")
    points_to_win = models.PositiveSmallIntegerField(default=5)

    host = models.CharField(max_length=255, blank=True, default="")
    # The game host (a fleet agent, by name) that runs the match; empty for a
    # local launch. A name, not a foreign key: arena.fleet sits above matches.
    # The pid below only means something on that host.
    host_name = models.CharField(max_length=100, blank=True, default="", db_index=True)
    port = models.PositiveIntegerField(null=True, blank=True)
    pid = models.PositiveIntegerField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Spectators connected as of the game server's last heartbeat (it alone knows).
    spectators = models.PositiveIntegerField(default=0)

    winner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    winner_side = models.CharField(max_length=8, choices=SIDE_CHOICES, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name_plural = "matches"

    def __str__(self) -> str:
        return f"match {self.id} ({self.status})"

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES


class MatchPlayer(models.Model):
    """A user's seat in a match. Several players may share a side (teams)."""

    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="players")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="match_seats")
    side = models.CharField(max_length=8, choices=SIDE_CHOICES)
    seat = models.PositiveSmallIntegerField(default=0, help_text="Order of the player in the request.")
    score = models.PositiveSmallIntegerField(default=0)
    # True while the match is live. A partial unique index on it lets the database
    # itself refuse a second live match for the same user, even under races.
    live = models.BooleanField(default=True)

    class Meta:
        ordering = ["seat"]
        constraints = [
            models.UniqueConstraint(fields=["match", "user"], name="matchplayer_once_per_match"),
            models.UniqueConstraint(
                fields=["user"], condition=models.Q(live=True), name="matchplayer_one_live_match"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} ({self.side})"


class MatchReplay(models.Model):
    """What it takes to play a match again: its seed, rules, applied inputs, pauses,
    points, end and snapshot digest (`arena.matches.replays`). Written in the same
    transaction as the result, so a result and its replay exist together or not at all."""

    match = models.OneToOneField(Match, on_delete=models.CASCADE, primary_key=True, related_name="replay")
    format = models.PositiveSmallIntegerField(help_text="Version of the encoding of `data`.")
    data = models.BinaryField(help_text="zlib-compressed JSON (arena.matches.replays.encode).")

    def __str__(self) -> str:
        return f"replay of match {self.match_id}"
