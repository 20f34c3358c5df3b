"""The host registry, placement, host loss and the fleet's admin and API, on the
database alone (no agent): these run on SQLite and PostgreSQL alike."""
from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from arena.fleet import services
from arena.gameserver.contract import MatchInfo
from arena.fleet.models import GameHost
from arena.matches import services as match_services
from arena.matches.models import Match, MatchPlayer
from arena.matches.states import MatchStatus
from arena.matches.supervisor import supervise_once
from tests.conftest import client_for


def host(name: str, capacity: int = 2, age: float = 0.0, **fields) -> GameHost:
    return GameHost.objects.create(
        name=name, address=f"10.9.9.{len(name)}", min_port=25000, max_port=25999, capacity=capacity,
        last_heartbeat=timezone.now() - timedelta(seconds=age), **fields,
    )


def match_for(*players: User, host_name: str = "", status: str = MatchStatus.LAUNCHING) -> Match:
    match = Match.objects.create(host_name=host_name, status=status)
    for seat, user in enumerate(players):
        MatchPlayer.objects.create(match=match, user=user, side=("left", "right")[seat % 2], seat=seat)
    return match


@pytest.fixture
def people(db):
    return [User.objects.create_user(f"u{i}", password="x") for i in range(20)]


def test_placement_picks_the_most_free_capacity_and_skips_dead_draining_suspect_and_full(people):
    host("big", capacity=3)
    host("small", capacity=1)
    host("dead", capacity=9, age=60)
    host("drained", capacity=9, draining=True)
    host("suspect", capacity=9, suspect_until=timezone.now() + timedelta(seconds=30))
    chosen = []
    for i in range(4):
        match = match_for(people[2 * i], people[2 * i + 1])
        reserved = services.host_reserve(str(match.id), exclude=set())
        chosen.append(reserved)
        assert Match.objects.get(pk=match.pk).host_name == reserved
    assert chosen == ["big", "big", "big", "small"]  # 3 vs 1 free, 2 vs 1, 1 vs 1 (ties by name), then small
    assert services.host_reserve(str(match_for(people[8], people[9]).id), exclude=set()) is None
    # a match that ends frees its slot
    first = Match.objects.filter(host_name="small").get()
    match_services.match_fail(first.pk, reason="test")
    assert services.host_reserve(str(match_for(people[10], people[11]).id), exclude=set()) == "small"


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_overfill_a_host(people):
    host("only", capacity=3)
    matches = [str(match_for(people[2 * i], people[2 * i + 1]).id) for i in range(8)]
    barrier = threading.Barrier(len(matches))
    got: list[str | None] = []

    def reserve(match_id: str) -> None:
        try:
            barrier.wait(30)
            reserved = services.host_reserve(match_id, exclude=set())
            got.append(reserved)
        finally:
            connection.close()

    threads = [threading.Thread(target=reserve, args=(m,)) for m in matches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert got.count("only") == 3 and got.count(None) == 5
    assert Match.objects.filter(host_name="only").count() == 3


def test_a_match_no_longer_launching_is_not_placed(people):
    host("h")
    match = match_for(people[0], people[1])
    match_services.match_cancel(match.pk, reason="gone")
    with pytest.raises(services.NotLaunching):
        services.host_reserve(str(match.pk), exclude=set())


def test_supervise_fails_the_live_matches_of_a_lost_host_only(people, settings):
    settings.SUPERVISOR_CHECKS = ["arena.fleet.supervisor.fail_lost_hosts"]
    host("lost", age=settings.GAME_HOST_TIMEOUT + 5)
    host("fine")
    on_lost = match_for(people[0], people[1], host_name="lost", status=MatchStatus.PLAYING)
    Match.objects.filter(pk=on_lost.pk).update(heartbeat_at=timezone.now())  # its server still heartbeats
    on_fine = match_for(people[2], people[3], host_name="fine", status=MatchStatus.WAITING)
    Match.objects.filter(pk=on_fine.pk).update(heartbeat_at=timezone.now())
    assert supervise_once() == [on_lost.pk]
    on_lost.refresh_from_db()
    assert on_lost.status == MatchStatus.FAILED and on_lost.finish_reason.startswith("host_lost")
    assert not MatchPlayer.objects.filter(match=on_lost, live=True).exists()
    assert Match.objects.get(pk=on_fine.pk).status == MatchStatus.WAITING
    assert supervise_once() == []  # once


def test_a_game_server_of_a_match_it_does_not_own_writes_nothing(people):
    match = match_for(people[0], people[1], host_name="b", status=MatchStatus.WAITING)
    assert match_services.match_heartbeat(match.pk, host_name="b") is None
    assert match_services.match_heartbeat(match.pk, host_name="a") == "moved"
    assert not match_services.match_mark_playing(match.pk, host_name="a")
    assert not match_services.match_cancel(match.pk, reason="no_show", host_name="a")
    assert Match.objects.get(pk=match.pk).status == MatchStatus.WAITING
    match_services.match_fail(match.pk, reason="host_lost: b")
    assert match_services.match_heartbeat(match.pk, host_name="b") == "host_lost"
    assert not match_services.match_finish(match.pk, score={"left": 5}, winner_side="left", host_name="b")
    assert Match.objects.get(pk=match.pk).winner_id is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="a game host's database is PostgreSQL")
def test_a_host_checks_a_launch_on_a_new_connection_when_its_kept_one_broke(people, settings):
    from arena.fleet import agent

    settings.GAME_HOST_NAME = "here"
    match = match_for(people[0], people[1], host_name="here")
    connection.ensure_connection()
    connection.connection.close()  # cut under Django, as a database restart would
    assert agent._launch_target(str(match.pk)) == (MatchStatus.LAUNCHING, "here")
    # a database it cannot reach at all: the launch is refused as this host's
    # problem (the web side tries the next host), not an exception in the worker
    connection.close()
    settings_dict = connection.settings_dict
    port = settings_dict.get("PORT")
    settings_dict["PORT"] = "1"
    try:
        answer = agent.launch_here(MatchInfo(id=str(match.pk), points_to_win=1, seats=()).as_dict(), "here")
    finally:
        settings_dict["PORT"] = port
        connection.close()
    assert answer["error"] == "host_unavailable", answer


def test_hosts_api_and_admin(people):
    host("alpha", capacity=2)
    host("gone", age=120)
    match_for(people[0], people[1], host_name="alpha", status=MatchStatus.PLAYING)
    staff = User.objects.create_superuser("root", password="root")
    listed = client_for(staff).get("/api/hosts").json()["hosts"]
    assert [(h["name"], h["alive"], h["live_matches"], h["free"]) for h in listed] == [
        ("alpha", True, 1, 1), ("gone", False, 0, 2)]
    assert client_for(people[0]).get("/api/hosts").status_code == 403
    assert client_for(None).get("/api/hosts").status_code == 401
    assert client_for(people[0]).post("/api/hosts/alpha/drain").status_code == 403
    assert client_for(staff).post("/api/hosts/alpha/drain").json()["draining"] is True
    assert client_for(staff).post("/api/hosts/nope/drain").json()["error"] == "not_found"

    from django.test import Client

    browser = Client()
    browser.force_login(staff)
    page = browser.get("/admin/fleet/gamehost/")
    assert page.status_code == 200 and b"alpha" in page.content
    detail = browser.get(f"/admin/fleet/gamehost/{GameHost.objects.get(name='alpha').pk}/change/")
    assert detail.status_code == 200 and str(Match.objects.get(host_name="alpha").pk).encode() in detail.content


def test_gamehost_drain_and_undrain_commands(db):
    from django.core.management import CommandError, call_command

    host("h1")
    call_command("gamehost", drain="h1")
    assert GameHost.objects.get(name="h1").draining
    call_command("gamehost", undrain="h1")
    assert not GameHost.objects.get(name="h1").draining
    with pytest.raises(CommandError):
        call_command("gamehost", drain="nope")
    with pytest.raises(CommandError):
        call_command("gamehost")  # no --name
