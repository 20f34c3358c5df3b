"""`python manage.py matches`: the live matches, one line each, like `kubectl get`.

Spectators are counted by the game servers and written with their heartbeat, so
that column is at most one heartbeat interval old.
"""
from __future__ import annotations

from datetime import datetime

from django.core.management.base import BaseCommand
from django.utils import timezone

from arena.matches import selectors

COLUMNS = ("ID", "PLAYERS", "STATUS", "SCORE", "HOST", "PORT", "AGE", "SPECTATORS")


def age(since: datetime | None, now: datetime) -> str:
    """`kubectl`'s short ages: 42s, 7m3s, 2h5m, 3d4h."""
    if since is None:
        return "-"
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"


def rows(limit: int) -> list[tuple[str, ...]]:
    now = timezone.now()
    found = []
    for match in selectors.matches_live(limit=limit):
        score = selectors.match_score(match)
        host = match.host_name or match.host or "-"
        found.append((
            str(match.id),
            ",".join(p.user.get_username() for p in match.players.all()),
            match.status,
            f"{score['left']}-{score['right']}",
            host,
            str(match.port) if match.port else "-",
            age(match.created_at, now),
            str(match.spectators),
        ))
    return found


def table(lines: list[tuple[str, ...]]) -> str:
    widths = [max(len(cell) for cell in column) for column in zip(COLUMNS, *lines)]
    return "\n".join("   ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip()
                     for line in (COLUMNS, *lines))


class Command(BaseCommand):
    help = "List the live matches: id, players, status, score, host, port, age, spectators."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--limit", type=int, default=500, help="at most this many (newest first)")

    def handle(self, *args, limit: int, **options) -> None:
        lines = rows(limit)
        if not lines:
            self.stdout.write("No live matches.")
            return
        self.stdout.write(table(lines))
