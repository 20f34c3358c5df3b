"""Watch a recorded match in a real browser (headless Chromium, Playwright).

alice and bob (real Socket.IO clients) play a short match to its end; erin finds
it in her lobby, follows its Watch replay link and checks what a viewer relies
on: the field is drawn by the live game's renderer and moves, pause stops it,
the scrub bar and the keyboard move to the right tick and score, the speed
buttons change the rate, the score markers sit where the points were scored and
play them, the end shows the result, a shared moment's link starts there; then
the pages for a recording the rules refuse (409), an unknown match, a match that
has not ended (404) and a server error say so instead of showing an empty field. The replay
screenshot goes where test_browser's go.

What the page shows is read from `window.__arena` (what the last animation frame
drew, the playback's position), never from pixels, except for one check that the
canvas's pixels change while it plays.
"""
from __future__ import annotations

import asyncio
import math

from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from arena.matches import replays
from arena.matches.models import Match, MatchReplay
from tests.conftest import run
from tests.e2e.conftest import create_site_users
from tests.integration.test_game import launch, wait_until
from tests.integration.test_resilience import connect_both, dodge, two_players
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, PASSWORD, SCREENSHOTS, console, sign_in, view, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

sync_api = pytest.importorskip("playwright.sync_api")

POINTS_TO_WIN = 3  # three points of dodging players: a match of about 8 s


def play_a_match(ops_api, users) -> str:
    """alice and bob, real Socket.IO clients, play a match to its end, both
    dodging every ball; its replay is stored with the result."""
    created, tokens = two_players(ops_api, users, points_to_win=POINTS_TO_WIN)

    async def scenario():
        alice, bob = await connect_both(created["port"], tokens)
        await asyncio.gather(dodge(alice), dodge(bob))
        await asyncio.gather(alice.close(), bob.close())

    run(scenario())
    assert wait_until(lambda: Match.objects.get(pk=created["id"]).status == "finished", 10)
    return created["id"]


def score_at(frames: dict, tick: float) -> dict:
    """The score of the last recorded frame at or before `tick`."""
    last = frames["frames"][0]
    for f in frames["frames"]:
        if f["tick"] > tick:
            break
        last = f
    return last["score"]


def replay(page) -> dict:
    return page.evaluate("() => window.__arena.replay()")


def rate(page, seconds: float = 0.4) -> float:
    """Ticks of match time per second of the page's clock, measured in the page."""
    return page.evaluate(
        """async (ms) => {
            const a = window.__arena.replay(), t0 = performance.now();
            await new Promise((r) => setTimeout(r, ms));
            const b = window.__arena.replay(), t1 = performance.now();
            return (b.tick - a.tick) / ((t1 - t0) / 1000);
        }""",
        seconds * 1000,
    )


def click_and_read(page, selector: str) -> dict:
    """Clicks `selector` and reads the playback's position in the same task of
    the page: while it plays (at 4× here) the position moves between two calls
    from the test, by a lot on a loaded machine."""
    return page.locator(selector).evaluate("(el) => { el.click(); return window.__arena.replay(); }")


def check_playback(page, frames: dict) -> None:
    ticks = [f["tick"] for f in frames["frames"]]
    first, last, tick_rate = ticks[0], ticks[-1], frames["tick_rate"]
    page.wait_for_function("() => window.__arena.replay() && window.__arena.replay().playing", timeout=10_000)
    players = {p["side"]: p["username"] for p in frames["players"]}

    # Drawn by the live renderer, moving: frames are drawn, the position and the
    # ball advance, and the canvas's pixels change.
    v1 = view(page)
    assert v1["players"] == players and v1["badge"] == "REPLAY" and v1["live"] is False
    pixels = page.evaluate("() => document.getElementById('field').toDataURL()")
    wait_for(lambda: view(page)["frame"] > v1["frame"] + 3, 3, "frames to be drawn")
    assert replay(page)["tick"] > first
    # The ball waits for its serve a moment, then flies.
    moved = lambda: (b := view(page)["ball"]) and math.hypot(b["x"] - v1["ball"]["x"], b["y"] - v1["ball"]["y"]) > 20
    wait_for(moved, 5, "the ball to move")
    assert page.evaluate("() => document.getElementById('field').toDataURL()") != pixels

    # Pause (space bar) stops it.
    page.keyboard.press(" ")
    paused = replay(page)
    assert paused["playing"] is False
    drawn = view(page)
    page.wait_for_timeout(250)
    assert replay(page)["tick"] == paused["tick"]
    assert view(page)["ball"] == drawn["ball"] and view(page)["frame"] > drawn["frame"]
    assert page.get_attribute("#play-pause", "aria-label") == "Play"

    # The markers: one per point, in order, where the point was scored on the bar.
    markers = page.locator(".scrub-marker")
    assert markers.count() == len(frames["points"])
    bar = page.locator("#scrub").bounding_box()
    thumb = 16
    for i, point in enumerate(frames["points"]):
        box = markers.nth(i).bounding_box()
        expected = bar["x"] + thumb / 2 + (point["tick"] - first) / (last - first) * (bar["width"] - thumb)
        assert abs(box["x"] + box["width"] / 2 - expected) < 2, (i, box, expected)
        label = f'{point["score"]["left"]}–{point["score"]["right"]}'
        assert markers.nth(i).inner_text() == label
        assert players[point["side"]] in markers.nth(i).get_attribute("title")

    # Scrubbing: the bar's value is a tick; the field and the score follow.
    target = frames["points"][0]["tick"] + 30
    page.locator("#scrub").fill(str(target))
    state = replay(page)
    assert state["tick"] == target and state["playing"] is False
    wait_for(lambda: view(page)["score"] == score_at(frames, target), 2, "the score after scrubbing")
    expected_score = score_at(frames, target)
    left, right = expected_score["left"], expected_score["right"]
    assert page.inner_text("#replay-score") == f'{players["left"]} {left} – {right} {players["right"]}'
    # A click on the bar, three quarters along, lands three quarters in.
    page.mouse.click(bar["x"] + thumb / 2 + 0.75 * (bar["width"] - thumb), bar["y"] + bar["height"] / 2)
    clicked = replay(page)["tick"]
    assert abs(clicked - (first + 0.75 * (last - first))) <= 0.02 * (last - first), clicked
    # Keyboard: shift + arrows step one recorded frame, arrows seek 5 s.
    page.locator("#scrub").fill(str(first + 60))
    page.keyboard.press("Shift+ArrowRight")
    stepped = min(t for t in ticks if t > first + 60)
    assert replay(page)["tick"] == stepped
    page.keyboard.press("ArrowRight")
    ahead = min(stepped + 5 * tick_rate, last)
    assert replay(page)["tick"] == ahead
    page.keyboard.press("ArrowLeft")
    assert replay(page)["tick"] == max(ahead - 5 * tick_rate, first)

    # Speed: the position moves at tick_rate × speed.
    page.locator("#scrub").fill(str(first))
    page.click("#play-pause")
    assert abs(rate(page) - tick_rate) < 0.05 * tick_rate
    page.click("[data-speed='4']")
    assert page.get_attribute("[data-speed='4']", "aria-pressed") == "true"
    assert view(page)["badge"] == "REPLAY 4×"
    page.locator("#scrub").fill(str(first))  # room to run at 4×
    assert abs(rate(page) - 4 * tick_rate) < 0.05 * 4 * tick_rate
    page.click("[data-speed='0.5']")
    assert abs(rate(page) - 0.5 * tick_rate) < 0.05 * 0.5 * tick_rate

    # A marker plays its point: from a moment before, to the new score.
    page.click("[data-speed='4']")
    point = frames["points"][1]
    # (clicked and read in the page at once: at 4× the position runs away)
    state = click_and_read(page, ".scrub-marker >> nth=1")
    assert state["playing"] and frames["points"][0]["tick"] <= state["tick"] < point["tick"]
    wait_for(lambda: view(page)["score"] == point["score"], 5, "the marker's point to be scored")

    # The end: the result over the dimmed field; Watch again starts over.
    page.keyboard.press("End")
    page.wait_for_selector("#game-over:not([hidden])", timeout=5_000)
    end = frames["end"]
    winner = players.get(end["winner"], end["winner"])
    assert page.inner_text("#game-over-title") == f"{winner} wins"
    assert view(page)["phase"] == "over"
    assert f"{winner} won" in page.inner_text("#game-status")
    state = click_and_read(page, "#replay-again")
    assert state["playing"] and state["tick"] < first + tick_rate, state
    page.wait_for_selector("#game-over", state="hidden")


def screenshot(page, frames: dict) -> None:
    """The replay paused mid-rally, ball in flight, for the README."""
    first, second = frames["points"][0]["tick"], frames["points"][1]["tick"]
    flying = [f for f in frames["frames"] if first < f["tick"] < second and 200 < abs(f["ball"]["x"] - 500) < 400]
    assert flying, "no frame with the ball in flight in the second rally"
    if replay(page)["playing"]:
        page.keyboard.press(" ")
    page.click("[data-speed='1']")
    page.locator("#scrub").fill(str(flying[len(flying) // 2]["tick"]))
    wait_for(lambda: (view(page) or {}).get("ball") and abs(view(page)["ball"]["x"] - 500) > 200, 2, "a ball in flight")
    page.screenshot(path=str(SCREENSHOTS / "replay.png"))


def check_share(page, frames: dict) -> None:
    """Share moment puts ?t=<seconds> in the address; that address starts there."""
    seconds = int(replay(page)["seconds"])
    page.click("#share")
    wait_for(lambda: page.url.endswith(f"?t={seconds}"), 2, "the moment's address")
    page.goto(page.url)
    page.wait_for_function("() => window.__arena.replay() !== null", timeout=10_000)
    start = frames["frames"][0]["tick"] + seconds * frames["tick_rate"]
    state = replay(page)
    assert start <= state["tick"] < start + frames["tick_rate"], (start, state)


def in_thread(fn, *args, **kwargs):
    """Runs an ORM call from a thread of its own: Playwright's event loop runs in
    the test's thread, where Django refuses it."""

    def call():
        try:
            return fn(*args, **kwargs)
        finally:
            connection.close()

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result()


def age_the_rules(match_id: str) -> str:
    """Make the stored replay say it was recorded with the previous version of
    the rules, as if the rules had changed since; returns "<name> rules v<old>"."""
    row = MatchReplay.objects.get(match_id=match_id)
    recording = replays.decode(row.data)
    rules = recording["rules"] = {**recording["rules"], "version": recording["rules"]["version"] - 1}
    row.data = replays.encode(recording)
    row.save(update_fields=["data"])
    return f'{rules["name"]} rules v{rules["version"]}'


def check_refusals(page, base: str, match_id: str, live: str) -> None:
    """A replay of rules this server no longer runs (409), an unknown match and
    a match still waiting for its players (404)."""
    recorded_with = in_thread(age_the_rules, match_id)
    page.goto(f"{base}/replay/{match_id}/")
    page.wait_for_selector("#replay-error:not([hidden])", timeout=10_000)
    assert page.inner_text("#replay-error-title") == "This replay cannot be played"
    assert f"recorded with {recorded_with};" in page.inner_text("#replay-error-detail")
    assert page.is_hidden("#replay-error-watch") and page.is_hidden("#replay-controls")
    wait_for(lambda: (view(page) or {}).get("banner") == "This replay cannot be played", 2, "the canvas's notice")

    unknown = "6f1c0000-0000-4000-8000-0000000003ad"
    page.goto(f"{base}/replay/{unknown}/")
    page.wait_for_selector("#replay-error:not([hidden])", timeout=10_000)
    assert page.inner_text("#replay-error-title") == "No such replay"
    assert page.is_hidden("#replay-error-watch") and page.is_hidden("#replay-controls")

    page.goto(f"{base}/replay/{live}/")
    page.wait_for_selector("#replay-error:not([hidden])", timeout=10_000)
    assert page.inner_text("#replay-error-title") == "This match has not ended yet"
    assert page.get_attribute("#replay-error-watch", "href") == f"/watch/{live}/"
    assert page.is_visible("#replay-error-watch") and page.is_hidden("#replay-controls")
    wait_for(lambda: (view(page) or {}).get("banner") == "This match has not ended yet", 2, "the canvas's notice")

    # A server error is said at once, not retried (only network errors and 502-504 are).
    broken = "6f1c0000-0000-4000-8000-0000000005e0"
    page.route(f"**/api/match/{broken}/replay/frames", lambda route: route.fulfill(
        status=500, content_type="application/json", body='{"error": "server_error", "detail": "Server error."}'))
    page.goto(f"{base}/replay/{broken}/")
    page.wait_for_selector("#replay-error:not([hidden])", timeout=3_000)
    assert page.inner_text("#replay-error-title") == "The replay cannot be loaded"
    assert page.inner_text("#replay-error-detail") == "Server error."


def test_replay_viewer(arena_server, ops_api, users):
    match_id = play_a_match(ops_api, users)
    live = None
    create_site_users(("erin",), PASSWORD)
    base = arena_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    try:
        with sync_api.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                # erin finds the result in her lobby and follows its replay link.
                page = sign_in(browser, base, "erin", errors)
                row = page.locator(f'#recent-matches tr[data-match-id="{match_id}"]')
                row.locator("a", has_text="Watch replay").click()
                page.wait_for_url(f"{base}/replay/{match_id}/")
                frames = page.request.get(f"{base}/api/match/{match_id}/replay/frames").json()
                assert frames["verified"] is True and len(frames["points"]) == POINTS_TO_WIN
                try:
                    check_playback(page, frames)
                    screenshot(page, frames)
                    check_share(page, frames)
                except AssertionError:
                    print("\n".join(console))
                    raise
                live = in_thread(launch, ops_api, players=("carol", "dave"))  # nobody comes: it waits
                check_refusals(page, base, match_id, live["id"])
            finally:
                browser.close()
    finally:
        if live:
            assert ops_api.delete(f"/api/match/{live['id']}").status_code == 200
    assert not errors, errors
