"""`python manage.py gamehost --name NAME`: run this machine's game-host agent.

`--drain NAME` / `--undrain NAME` only change the registry and exit.
"""
from __future__ import annotations

from arena.conf import settings
from django.core.management.base import BaseCommand, CommandError

from arena.fleet import services


class Command(BaseCommand):
    help = "Run a game host of the fleet (a Celery worker on its own queue, plus a heartbeat), or drain one."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--name", help="this host's name (unique in the fleet; its queue is gamehost.NAME)")
        parser.add_argument("--capacity", type=int, default=None, help="matches at once (GAME_HOST_CAPACITY)")
        parser.add_argument("--concurrency", type=int, default=4, help="launches handled at once (threads)")
        parser.add_argument("--exit-when-drained", action="store_true",
                            help="exit once the host is draining and runs no match")
        parser.add_argument("--drain", metavar="NAME", help="stop placing new matches on host NAME, and exit")
        parser.add_argument("--undrain", metavar="NAME", help="let host NAME take new matches again, and exit")
        parser.add_argument("--loglevel", default="INFO")

    def handle(self, *args, name, capacity, concurrency, exit_when_drained, drain, undrain, loglevel, **options):
        if drain or undrain:
            target = drain or undrain
            if not services.host_drain(target, draining=bool(drain)):
                raise CommandError(f"no game host named {target!r}")
            self.stdout.write(f"host {target} {'draining' if drain else 'accepting matches'}")
            return
        if not name:
            raise CommandError("--name is required to run a game host")
        if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
            self.stderr.write("warning: SQLite is for one machine; a fleet needs DATABASE_URL=postgres://...")
        from arena.fleet.agent import run_agent

        run_agent(name, capacity=capacity or settings.GAME_HOST_CAPACITY, concurrency=concurrency,
                  exit_when_drained=exit_when_drained, loglevel=loglevel)
