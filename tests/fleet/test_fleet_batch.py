"""`PUT /api/matches` through the fleet: every launch sent before any answer is
awaited, spread over real game hosts, each host's capacity still respected."""
from __future__ import annotations

import pytest

from arena.client import GameClient
from arena.matches.models import Match
from arena.matches.states import MatchStatus
from tests.conftest import run
from tests.fleet.test_fleet import host_of, players  # noqa: F401  (players: a fixture)
from tests.integration.test_game import game_token

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_a_batch_spreads_over_the_hosts_and_fails_only_what_has_no_room(fleet, ops_api, players):  # noqa: F811
    hosts = fleet.start(("a", 2), ("b", 2), ("c", 2))
    entries = [{"players": [f"p{2 * i}", f"p{2 * i + 1}"]} for i in range(7)]
    response = ops_api.put("/api/matches", {"matches": entries}, format="json")
    assert response.status_code == 200, response.content
    results = response.json()["results"]

    statuses = [r["status"] for r in results]
    assert sorted(statuses) == [201] * 6 + [503], results
    (full,) = [r for r in results if r["status"] == 503]
    assert full["error"] == "no_capacity"
    created = [r["match"] for r in results if r["status"] == 201]
    by_host = {host.name: [m for m in created if host_of(m["id"]) == host.name] for host in hosts}
    assert all(len(on) == 2 for on in by_host.values()), by_host  # each host filled, none overfilled
    for host in hosts:
        assert {m["host"] for m in by_host[host.name]} == {host.address}
        assert len({m["port"] for m in by_host[host.name]}) == 2
    assert Match.objects.filter(status=MatchStatus.WAITING).count() == 6
    assert Match.objects.filter(status=MatchStatus.FAILED, finish_reason__startswith="no_capacity").count() == 1

    # a server on another host than the first really serves its match
    match = by_host[hosts[2].name][0]
    first = match["players"][0]["username"]
    token = game_token(players[first], match["id"])

    async def join() -> dict:
        client = GameClient(match["host"], match["port"], token)
        try:
            return await client.connect()
        finally:
            await client.close()

    welcome = run(join())
    assert welcome["match"]["id"] == match["id"] and welcome["role"] == "player"
