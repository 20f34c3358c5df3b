"""`python manage.py replay_check <match id>...`: play recorded matches again and say
whether they reproduce bit for bit (every broadcast snapshot, score and winner)."""
from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from arena.matches import replays
from arena.matches.errors import ArenaError


class Command(BaseCommand):
    help = "Re-run the replays of ended matches through this server's rules and compare with what was recorded live."

    def add_arguments(self, parser) -> None:
        parser.add_argument("match_ids", nargs="+", metavar="match_id")

    def handle(self, *args, match_ids: list[str], **options) -> None:
        mismatches = 0
        for match_id in match_ids:
            try:
                check = replays.verify(replays.replay_get(match_id))
            except (ArenaError, replays.BadReplay) as error:
                raise CommandError(f"{match_id}: {getattr(error, 'detail', error)}") from None
            if check.ok:
                self.stdout.write(
                    f"{match_id}: match: {check.snapshots} snapshots, score {check.score}, digest {check.digest[:16]}…"
                )
            else:
                mismatches += 1
                self.stdout.write(f"{match_id}: MISMATCH: " + "; ".join(check.problems))
        if mismatches:
            raise CommandError(f"{mismatches} of {len(match_ids)} replay(s) do not reproduce")
