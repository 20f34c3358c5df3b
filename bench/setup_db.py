"""`python -m bench.setup_db N`: players and an operator in the bench database.

Run with the benchmark's environment (see `bench.common.prepare_database`).
Prints one JSON line: {"ops": token, "players": [[username, api token], ...]}.
"""
from __future__ import annotations

import json
import sys


def main(count: int) -> None:
    import django

    django.setup()
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Permission, User
    from rest_framework.authtoken.models import Token

    from arena.matches import services
    from arena.matches.models import Match
    from arena.matches.states import LIVE_STATUSES

    for match_id in Match.objects.filter(status__in=LIVE_STATUSES).values_list("id", flat=True):
        services.match_cancel(match_id, reason="bench: left over by an interrupted run")

    names = [f"bench{i:04d}" for i in range(count)]
    existing = set(User.objects.filter(username__in=names).values_list("username", flat=True))
    unusable = make_password(None)
    User.objects.bulk_create(User(username=n, password=unusable) for n in names if n not in existing)
    ops, _ = User.objects.get_or_create(username="bench-ops", defaults={"password": unusable})
    ops.user_permissions.add(Permission.objects.get(codename="add_match", content_type__app_label="matches"))
    users = list(User.objects.filter(username__in=names + ["bench-ops"]))
    have = set(Token.objects.filter(user__in=users).values_list("user_id", flat=True))
    Token.objects.bulk_create(Token(user=u, key=Token.generate_key()) for u in users if u.pk not in have)
    keys = dict(Token.objects.filter(user__in=users).values_list("user__username", "key"))
    print(json.dumps({"ops": keys["bench-ops"], "players": [[n, keys[n]] for n in names]}))


if __name__ == "__main__":
    main(int(sys.argv[1]))
