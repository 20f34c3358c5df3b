"""`python -m bench.replay_http`: what `GET /api/match/<id>/replay/frames` costs.

A match of `--seconds` of play (simulated by `bench.replay.simulate`, 6 move
changes a second per side) is stored with its replay in a SQLite database of its
own (var/bench/replay_http.sqlite3), then its frames are requested through
Django's test client, as a viewer would: the first request (re-simulated, then
cached), cached ones without and with gzip, one with the `ETag` a viewer got
(304), and with the cache off (`ARENA_REPLAY_FRAMES_CACHE=0`). Each figure is the
request's CPU (`time.process_time`), median of `--requests`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from bench.common import BENCH_DIR, save_result, table

DATABASE = BENCH_DIR / "replay_http.sqlite3"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0, help="length of the simulated match")
    parser.add_argument("--requests", type=int, default=15, help="requests per measured case")
    args = parser.parse_args(argv)

    BENCH_DIR.mkdir(parents=True, exist_ok=True)
    DATABASE.unlink(missing_ok=True)
    os.environ["DATABASE_URL"] = f"sqlite:///{DATABASE}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "arena.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import override_settings
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from arena.matches import replays, services
    from arena.matches.models import Match, MatchPlayer
    from arena.matches.states import MatchStatus
    from bench.replay import TICK_RATE, simulate

    call_command("migrate", verbosity=0)
    cache.clear()
    viewer = User.objects.create_user("viewer")
    match = Match.objects.create(status=MatchStatus.PLAYING, points_to_win=1000)
    for seat, name in enumerate(("left-player", "right-player")):
        MatchPlayer.objects.create(match=match, user=User.objects.create_user(name), side=("left", "right")[seat],
                                   seat=seat)
    recording = simulate(seconds=args.seconds, points_to_win=1000, change=6 / TICK_RATE, repeat=0.01).recording()
    end = recording["end"]
    assert services.match_finish(match.pk, score=end["score"], winner_side=end["winner"] or "left",
                                 replay=replays.encode(recording))
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=viewer).key}")
    url = f"/api/match/{match.pk}/replay/frames"

    def cpu_ms(**headers) -> tuple[float, int, int]:
        started = time.process_time()
        response = client.get(url, **headers)
        used = (time.process_time() - started) * 1e3
        return used, response.status_code, len(response.content)

    rows, data = [], {"args": vars(args), "cases": {}}

    def measure(label: str, times: int, **headers) -> None:
        runs = [cpu_ms(**headers) for _ in range(times)]
        statuses = {status for _, status, _ in runs}
        p50 = statistics.median(used for used, _, _ in runs)
        size = runs[-1][2]
        data["cases"][label] = {"cpu_ms_p50": round(p50, 2), "bytes": size, "status": sorted(statuses)}
        rows.append([label, times, "/".join(map(str, sorted(statuses))), f"{p50:.1f}", size])

    measure("first request (re-simulated, cached)", 1)
    measure("cached", args.requests)
    measure("cached, gzip", args.requests, HTTP_ACCEPT_ENCODING="gzip")
    etag = client.get(url).get("ETag")
    if etag:  # (a server from before the ETag has none)
        measure("If-None-Match (304)", args.requests, HTTP_IF_NONE_MATCH=etag)
    with override_settings(ARENA_REPLAY_FRAMES_CACHE=0):
        measure("cache off", max(3, args.requests // 3))
        measure("cache off, gzip", max(3, args.requests // 3), HTTP_ACCEPT_ENCODING="gzip")
    print(table(["request", "n", "status", "CPU ms p50", "body bytes"], rows,
                title=f"GET …/replay/frames of a {args.seconds:.0f} s match"))
    save_result("replay_http", data)
    return data


if __name__ == "__main__":
    main(sys.argv[1:])
