"""The browser pages render, with the right access rules (no browser needed)."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(client):
    user = get_user_model().objects.create_user("alice", password="pw-alice-1")
    client.force_login(user)
    return user


@pytest.mark.parametrize(
    "path", ["/", f"/play/{uuid.uuid4()}/", f"/watch/{uuid.uuid4()}/", f"/replay/{uuid.uuid4()}/"]
)
def test_pages_need_login(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_login_page_and_sign_in(client):
    get_user_model().objects.create_user("bob", password="pw-bob-12")
    page = client.get("/login/")
    assert page.status_code == 200
    assert b'name="username"' in page.content and b'name="password"' in page.content
    bad = client.post("/login/", {"username": "bob", "password": "wrong"})
    assert bad.status_code == 200
    assert b"alert-error" in bad.content
    response = client.post("/login/", {"username": "bob", "password": "pw-bob-12"})
    assert response.status_code == 302 and response["Location"] == "/"
    # Signed in already: the login page sends to the lobby.
    assert client.get("/login/")["Location"] == "/"


def test_signup_creates_the_user_and_signs_in(client):
    assert client.get("/signup/").status_code == 200
    response = client.post(
        "/signup/", {"username": "carol", "password1": "a-long-secret-9", "password2": "a-long-secret-9"}
    )
    assert response.status_code == 302 and response["Location"] == "/"
    assert get_user_model().objects.filter(username="carol").exists()
    assert client.get("/").status_code == 200


def test_logout_is_post_only(client, alice):
    assert client.get("/logout/").status_code == 405
    response = client.post("/logout/")
    assert response.status_code == 302
    assert client.get("/").status_code == 302


def test_lobby_page(client, alice):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-me="alice"' in html
    assert "web/lobby.js" in html
    assert "csrftoken" in response.cookies


@pytest.mark.parametrize("mode", ["play", "watch"])
def test_game_pages(client, alice, mode):
    match_id = uuid.uuid4()
    response = client.get(f"/{mode}/{match_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-match-id="{match_id}"' in html
    assert f'data-mode="{mode}"' in html
    assert "vendor/socket.io-client/socket.io.esm.min.js" in html
    assert "web/game.js" in html


def test_game_page_rejects_a_bad_id(client, alice):
    assert client.get("/play/not-a-uuid/").status_code == 404
    assert client.get("/replay/not-a-uuid/").status_code == 404


def test_replay_page(client, alice):
    """The page is the same for any id: the replay API decides what it shows."""
    match_id = uuid.uuid4()
    response = client.get(f"/replay/{match_id}/")
    assert response.status_code == 200
    html = response.content.decode()
    assert f'data-frames-url="/api/match/{match_id}/replay/frames"' in html
    assert f'href="/watch/{match_id}/"' in html  # for a match still being played
    assert "web/replay-page.js" in html
    assert 'id="scrub"' in html and 'data-speed="4"' in html
