"""Create the demo accounts (if absent) and print how to launch a match by hand."""
from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management.base import BaseCommand

PLAYERS = ("alice", "bob", "carol")
OPERATOR = "ops"


class Command(BaseCommand):
    help = "Create demo users alice, bob, carol (password = name) and the operator ops (password ops)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--base-url", default="http://127.0.0.1:8000")

    def handle(self, *args, base_url: str, **options) -> None:
        User = get_user_model()
        for name in (*PLAYERS, OPERATOR):
            user, created = User.objects.get_or_create(username=name)
            if created:
                user.set_password(name)
                user.save()
                self.stdout.write(f"created user {name} (password {name})")
        ops = User.objects.get(username=OPERATOR)
        ops.user_permissions.add(Permission.objects.get(codename="add_match", content_type__app_label="matches"))
        self.stdout.write(
            self.style.SUCCESS(
                f"""
Arena is starting on {base_url}

  Play in the browser: open {base_url}/ and sign in as alice (password alice);
  sign in as bob in another browser (or a private window), then challenge him,
  or press "Play the bot".

  Or launch a match from a terminal, as the operator:

    TOKEN=$(curl -s -X POST {base_url}/api/auth/token -H 'Content-Type: application/json' \\
            -d '{{"username": "ops", "password": "ops"}}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
    curl -s -X PUT {base_url}/api/match -H "Authorization: Token $TOKEN" \\
         -H 'Content-Type: application/json' -d '{{"players": ["alice", "bob"], "points_to_win": 3}}'

  The answer holds the game server's host and port. Let two bots play it:

    .venv/bin/python -m arena.bot --match <id> --username alice --password alice &
    .venv/bin/python -m arena.bot --match <id> --username bob --password bob

  and watch it live at {base_url}/watch/<id>/
"""
            )
        )
