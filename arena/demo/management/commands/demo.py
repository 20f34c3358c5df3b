"""`python manage.py demo`: the supervisor and the web server, for a laptop."""
from __future__ import annotations

import subprocess
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run the match supervisor in the background and the ASGI web server on 127.0.0.1:8000."

    def add_arguments(self, parser) -> None:
        parser.add_argument("addrport", nargs="?", default="127.0.0.1:8000")

    def handle(self, *args, addrport: str, **options) -> None:
        call_command("supervise", once=True)  # matches left over from a previous run
        supervisor = subprocess.Popen(
            [sys.executable, "manage.py", "supervise"], cwd=settings.BASE_DIR, start_new_session=True
        )
        try:
            call_command("runserver", addrport, use_reloader=False)
        finally:
            supervisor.terminate()
            supervisor.wait(timeout=5)
