"""Play and watch a match in real browsers (headless Chromium, Playwright).

alice and bob sign in, alice challenges bob (first to 1 point), both land on the
game page, carol watches it from the lobby's Spectate link. alice moves her paddle
and all three screens show it; then nobody defends (both players keep out of the
ball's way) so the ball scores, everyone sees the winner and a link to the replay,
and the lobby lists the result with that link. Screenshots go to var/screenshots/,
or to docs/screenshots/ (the ones the README shows) with ARENA_UPDATE_SCREENSHOTS=1.

Positions are read from `window.__arena.view()`, what the page last drew, never
from pixels. Needs /usr/bin/chromium (scripts/ensure-chromium.sh).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import create_site_users

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-gpu",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ("docs" if os.environ.get("ARENA_UPDATE_SCREENSHOTS") == "1" else "var") / "screenshots"
VIEWPORT = {"width": 1280, "height": 800}
PASSWORD = "arena-e2e-pw-1"
PLAY_URL_RE = re.compile(r"/play/([0-9a-f-]{36})/$")
console: list[str] = []  # the pages' console messages, shown when a wait times out

if not os.path.exists(CHROMIUM):  # pragma: no cover - depends on the machine
    pytest.skip(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


def finished_unrecorded_match(winner: str, loser: str) -> str:
    """A match of `winner` (a user already) against `loser` (made here) that ended
    without a replay, as one played with recording off does."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from arena.matches.models import Match, MatchPlayer
    from arena.matches.states import MatchStatus

    create_site_users((loser,), PASSWORD)
    users = {u.username: u for u in get_user_model().objects.filter(username__in=(winner, loser))}
    match = Match.objects.create(status=MatchStatus.FINISHED, points_to_win=1, winner=users[winner],
                                 finish_reason="points", started_at=timezone.now(), finished_at=timezone.now())
    for seat, name in enumerate((winner, loser)):
        MatchPlayer.objects.create(match=match, user=users[name], side=("left", "right")[seat], seat=seat,
                                   score=1 - seat, live=False)
    return str(match.pk)


def view(page) -> dict | None:
    return page.evaluate("() => window.__arena && window.__arena.view()")


def wait_for(predicate, timeout: float, what: str, interval: float = 0.05, detail=None):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    more = f"; {detail()!r}" if detail else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r}){more}")


def sign_in(browser, base_url: str, username: str, errors: list, scale: float = 1, touch: bool = False):
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=scale, has_touch=touch)
    page = context.new_page()
    page.on("pageerror", lambda exc: errors.append(f"{username}: {exc}"))
    page.on("console", lambda msg: console.append(f"{username}: {msg.type}: {msg.text}"))
    page.goto(f"{base_url}/")
    assert "/login/" in page.url, "the lobby needs a signed-in user"
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    page.wait_for_function("() => window.__arenaLobby && window.__arenaLobby.data() !== null")
    return page


def touch(page, kind: str, at: float) -> None:
    """A touch event on the game's stage, `at` of the way down (0 top, 1 bottom)."""
    page.evaluate(
        """([kind, at]) => {
            const stage = document.getElementById("stage");
            const r = stage.getBoundingClientRect();
            const point = new Touch({
                identifier: 1, target: stage,
                clientX: r.left + r.width / 2, clientY: r.top + r.height * at,
            });
            const active = kind === "touchend" ? [] : [point];
            stage.dispatchEvent(new TouchEvent(kind, {
                touches: active, targetTouches: active, changedTouches: [point],
                bubbles: true, cancelable: true,
            }));
        }""",
        [kind, at],
    )


class Dodger:
    """Holds a player's keys so that their paddle stays out of the ball's way."""

    def __init__(self, page, side: str):
        self.page = page
        self.side = side
        self.held: str | None = None

    def hold(self, key: str | None):
        if key == self.held:
            return
        if self.held:
            self.page.keyboard.up(self.held)
        if key:
            self.page.keyboard.down(key)
        self.held = key

    def step(self, v: dict):
        ball = v.get("ball")
        if v.get("phase") != "playing" or not ball:
            self.hold(None)
            return
        paddle = v["paddles"][self.side]
        # Keep 160 px between the paddle's centre and the ball's line, whichever
        # way there is room to go.
        gap = ball["y"] - paddle
        if abs(gap) >= 160:
            self.hold(None)
        elif gap > 0:
            self.hold("ArrowUp" if paddle > 80 else "ArrowDown")
        else:
            self.hold("ArrowDown" if paddle < 520 else "ArrowUp")


def test_two_players_and_a_spectator(arena_server):
    create_site_users(("alice", "bob", "carol"), PASSWORD)
    # An earlier match, played with recording off: listed in the lobby, with no replay link.
    unrecorded = finished_unrecorded_match("carol", "dave")
    base = arena_server
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []

    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            alice = sign_in(browser, base, "alice", errors)
            bob = sign_in(browser, base, "bob", errors, touch=True)  # a touch screen
            carol = sign_in(browser, base, "carol", errors, scale=2)  # a HiDPI screen
            bob.goto("about:blank")  # bob is away from the lobby for now

            # alice challenges bob, first to 1 point, and lands on the game page,
            # where the game server waits for bob.
            alice.select_option("#points-to-win", "1")
            alice.fill("#challenge-username", "bob")
            alice.click("#challenge-button")
            alice.wait_for_url(PLAY_URL_RE, timeout=60_000)  # the launch may take GAME_SERVER_LAUNCH_TIMEOUT (30 s)
            match_id = PLAY_URL_RE.search(alice.url).group(1)
            wait_for(
                lambda: (view(alice) or {}).get("live"),
                15,
                "alice's welcome from the game server",
                detail=lambda: (alice.evaluate("() => __arena.page()"), view(alice), console),
            )
            wait_for(lambda: view(alice)["banner"] == "Waiting for bob", 5, "alice to wait for bob")

            # carol finds the match in her lobby and spectates it.
            row = carol.locator(f'#live-matches tr[data-match-id="{match_id}"]')
            row.wait_for(timeout=10_000)
            assert "alice" in row.inner_text() and "bob" in row.inner_text()
            carol.screenshot(path=str(SCREENSHOTS / "lobby.png"), scale="css")
            row.locator("a", has_text="Spectate").click()
            carol.wait_for_url(f"{base}/watch/{match_id}/")
            wait_for(lambda: (view(carol) or {}).get("live"), 15, "carol's welcome from the game server")
            assert view(carol)["banner"] == "Waiting for bob"

            # The field keeps its 5:3 shape and is drawn at the screen's pixel density.
            for name, p in (("alice", alice), ("carol", carol)):
                size = view(p)["size"]
                assert abs(size["width"] / size["height"] - 1000 / 600) < 0.01, size
                backing = p.evaluate("() => [document.getElementById('field').width, devicePixelRatio]")
                assert backing == [round(size["width"] * backing[1]), size["dpr"]], (name, backing, size)
            assert view(carol)["size"]["dpr"] == 2

            # Network statistics on alice's screen (D), for the screenshot below.
            alice.keyboard.press("d")
            alice.wait_for_selector("#debug:not([hidden])")

            # bob comes back to the lobby, which sends him to his match.
            bob.goto(f"{base}/")
            bob.wait_for_url(f"{base}/play/{match_id}/", timeout=10_000)
            wait_for(lambda: (view(bob) or {}).get("live"), 15, "bob's welcome from the game server")

            pages = {"alice": alice, "bob": bob, "carol": carol}
            roles = {name: view(p)["role"] for name, p in pages.items()}
            assert roles == {"alice": "player", "bob": "player", "carol": "spectator"}
            assert view(alice)["side"] == "left" and view(bob)["side"] == "right"
            assert view(carol)["players"] == {"left": "alice", "right": "bob"}

            # The game starts after the countdown (the first serve waits a moment).
            for name, p in pages.items():
                wait_for(lambda p=p: (view(p) or {}).get("phase") == "playing", 20, f"{name}: playing")

            # alice moves up with the keyboard, bob down by holding the bottom half
            # of his screen: at once on their own screens, soon on the others'.
            start = {name: view(p)["paddles"] for name, p in pages.items()}
            touch(bob, "touchstart", 0.8)
            alice.keyboard.down("ArrowUp")
            wait_for(
                lambda: view(alice)["paddles"]["left"] < start["alice"]["left"] - 60,
                10,
                "alice's own paddle to move",
                detail=lambda: (view(alice), alice.evaluate("() => __arena.stats()")),
            )
            wait_for(lambda: view(bob)["paddles"]["right"] > start["bob"]["right"] + 60, 10, "bob's own paddle to move")
            time.sleep(0.15)
            alice.keyboard.up("ArrowUp")
            touch(bob, "touchend", 0.8)
            assert view(alice)["paddles"]["left"] < start["alice"]["left"] - 60
            for name in ("bob", "carol"):
                wait_for(
                    lambda p=pages[name]: view(p)["paddles"]["left"] < start[name]["left"] - 60,
                    10,
                    f"alice's paddle to move on {name}'s screen",
                )
            for name in ("alice", "carol"):
                wait_for(
                    lambda p=pages[name]: view(p)["paddles"]["right"] > start[name]["right"] + 60,
                    10,
                    f"bob's paddle to move on {name}'s screen",
                )
            assert "RTT" in alice.inner_text("#debug")

            # A frame of the running game, once the ball is on its way. Watched from
            # inside the page on every animation frame: polling from here takes a
            # round trip per look, and on a loaded machine the ball can cross the
            # field between two looks.
            shot = alice.wait_for_function(
                """() => {
                    const v = window.__arena.view();
                    const away = v.ball && Math.abs(v.ball.x - 500) > 80;
                    return (v.phase !== "playing" || away) && v;
                }""",
                polling="raf",
                timeout=30_000,
            ).json_value()
            assert shot["phase"] == "playing", f"the point was over before a screenshot: {shot}"
            alice.screenshot(path=str(SCREENSHOTS / "game.png"))
            alice.keyboard.press("d")

            # Nobody defends: both players keep their paddle away from the ball.
            dodgers = {"alice": Dodger(alice, "left"), "bob": Dodger(bob, "right")}
            deadline = time.monotonic() + 90
            while True:
                views = {name: view(pages[name]) for name in dodgers}
                if all(v["phase"] == "over" for v in views.values()):
                    break
                assert time.monotonic() < deadline, f"match did not end: {views}"
                for name, d in dodgers.items():
                    d.step(views[name])
                time.sleep(0.03)
            for d in dodgers.values():
                d.hold(None)

            # Everyone sees the same winner, with the panel back to the lobby.
            results = {}
            for name, p in pages.items():
                p.wait_for_selector("#game-over:not([hidden])", timeout=10_000)
                results[name] = view(p)["gameOver"]
            winners = {r["winner"] for r in results.values()}
            assert len(winners) == 1, results
            winner = winners.pop()
            assert winner in ("alice", "bob")
            loser = "bob" if winner == "alice" else "alice"
            assert results["carol"]["score"] in ({"left": 1, "right": 0}, {"left": 0, "right": 1})
            assert pages[winner].inner_text("#game-over-title") == "You win!"
            assert winner in pages[loser].inner_text("#game-over-title")
            assert winner in carol.inner_text("#game-over-title")
            # The finished match's replay is a link away, for players and spectators.
            for p in pages.values():
                p.wait_for_selector("#watch-replay:not([hidden])", timeout=10_000)
                assert p.get_attribute("#watch-replay", "href") == f"/replay/{match_id}/"
            alice.screenshot(path=str(SCREENSHOTS / "game-over.png"))

            # Back in the lobby, the result is listed.
            alice.click("#back-to-lobby")
            alice.wait_for_url(f"{base}/")
            result_row = alice.locator(f'#recent-matches tr[data-match-id="{match_id}"]')
            result_row.wait_for(timeout=10_000)
            assert result_row.get_attribute("data-status") == "finished"
            assert f"{winner} won" in result_row.inner_text()
            assert result_row.locator("a", has_text="Watch replay").get_attribute("href") == f"/replay/{match_id}/"
            assert alice.locator(f'#live-matches tr[data-match-id="{match_id}"]').count() == 0
            other_row = alice.locator(f'#recent-matches tr[data-match-id="{unrecorded}"]')
            other_row.wait_for(timeout=10_000)
            assert "carol won" in other_row.inner_text() and other_row.locator("a", has_text="Watch replay").count() == 0
        finally:
            browser.close()

    assert not errors, errors
