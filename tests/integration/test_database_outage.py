"""A result survives a database outage: retried, then spooled, then imported once."""
from __future__ import annotations

import json

import pytest
from django.conf import settings
from django.db import connection

from arena.client import GameClient
from arena.gameserver import wire
from arena.matches.models import Match
from arena.matches.spool import spool_dir
from arena.matches.states import MatchStatus
from arena.matches.supervisor import supervise_once
from arena.matches.models import MatchReplay
from tests.conftest import assert_replay_reproduces, run
from tests.integration.test_game import HOST, game_token, launch

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def set_connections_allowed(allowed: bool) -> None:
    """Open or close the test database to every session (PostgreSQL), from the
    server's maintenance database: the game server loses its connection and
    cannot open a new one until the database is opened again."""
    import psycopg

    params = connection.settings_dict
    with psycopg.connect(
        host=params["HOST"] or None,
        port=params["PORT"] or None,
        user=params["USER"] or None,
        password=params["PASSWORD"] or None,
        dbname="postgres",
        autocommit=True,
    ) as admin:
        admin.execute(f'ALTER DATABASE "{params["NAME"]}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
        if not allowed:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [params["NAME"]])
    if allowed:
        connection.close()  # ours was cut too: reconnect on next use


@pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql"),
    reason="needs a database server to take down (run by `make test` on PostgreSQL)",
)
@pytest.mark.usefixtures("hosting_mode")  # the database thread of a shared process retries and spools too
def test_result_is_spooled_during_an_outage_and_imported_once(ops_api, users, game_settings, tmp_path):
    game_settings(GAME_RESULT_RETRY_FOR="1.5", GAME_SPOOL_DIR=str(tmp_path))
    created = launch(ops_api, points_to_win=1)
    tokens = {name: game_token(users[name], created["id"]) for name in ("alice", "bob")}

    async def scenario():
        alice, bob = GameClient(HOST, created["port"], tokens["alice"]), GameClient(HOST, created["port"], tokens["bob"])
        await alice.connect()
        await bob.connect()
        await alice.wait_for(wire.STATE, lambda s: s["tick"] > 0, timeout=5)
        set_connections_allowed(False)
        return await alice.wait_for(wire.GAME_OVER, timeout=30), alice

    try:
        over, alice = run(scenario())
    finally:
        set_connections_allowed(True)
    assert over["reason"] == "points"
    spooled = list(spool_dir().glob("*.json"))
    assert [p.stem for p in spooled] == [created["id"]]
    record = json.loads(spooled[0].read_text())
    assert record["action"] == "finish" and record["score"] == over["score"] and record["replay"]
    match = Match.objects.get(pk=created["id"])
    assert match.status == MatchStatus.PLAYING, "the database was down: nothing could be written"

    supervise_once()
    match.refresh_from_db()
    assert match.status == MatchStatus.FINISHED and match.winner.username == over["winner"]
    assert {p.side: p.score for p in match.players.all()} == over["score"]
    assert not list(spool_dir().glob("*.json"))
    first_finish = match.finished_at
    assert_replay_reproduces(created["id"], alice)  # the replay came with its result

    # importing the same result again changes nothing
    (tmp_path / f"{created['id']}.json").write_text(json.dumps(record))
    supervise_once()
    match.refresh_from_db()
    assert match.finished_at == first_finish and match.status == MatchStatus.FINISHED
    assert MatchReplay.objects.filter(match_id=created["id"]).count() == 1
