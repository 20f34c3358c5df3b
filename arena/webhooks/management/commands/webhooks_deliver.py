"""`python manage.py webhooks_deliver`: send the webhook rows that are due."""
from __future__ import annotations

import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from arena.webhooks.delivery import deliver_due, prune


class Command(BaseCommand):
    help = "Send due webhook deliveries (retries with backoff); --once to send them once and exit."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--once", action="store_true", help="send what is due and exit")
        parser.add_argument("--interval", type=float, default=2.0, help="seconds between passes")

    def handle(self, *args, once: bool, interval: float, **options) -> None:
        while True:
            delivered = deliver_due()
            prune()
            if delivered:
                self.stdout.write(f"delivered {delivered} webhook event(s)")
            if once:
                return
            close_old_connections()
            time.sleep(interval)
