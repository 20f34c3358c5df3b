"""`python manage.py supervise`: fail matches whose game server died, continuously."""
from __future__ import annotations

import time

from arena.conf import settings
from django.core.management.base import BaseCommand
from django.db import close_old_connections

from arena.matches.supervisor import supervise_once


class Command(BaseCommand):
    help = "Detect matches whose game server stopped sending heartbeats and mark them failed."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="check once and exit")
        parser.add_argument("--interval", type=float, default=None, help="seconds between checks")

    def handle(self, *args, once: bool, interval: float | None, **options) -> None:
        interval = interval or max(1.0, min(settings.GAME_HEARTBEAT_TIMEOUT, settings.GAME_HOST_TIMEOUT) / 3)
        while True:
            for match_id in supervise_once():
                self.stdout.write(f"failed match {match_id}: its game server or host is gone")
            if once:
                return
            close_old_connections()
            time.sleep(interval)
