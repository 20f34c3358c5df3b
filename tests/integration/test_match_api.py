"""The HTTP API: authentication, permissions, validation and error forms."""
from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import User

from arena.matches.models import Match
from tests.conftest import client_for

pytestmark = pytest.mark.django_db(transaction=True)


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == code
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_token_for_good_credentials_only(users):
    client = client_for(None)
    ok = client.post("/api/auth/token", {"username": "alice", "password": "alice"}, format="json")
    assert ok.status_code == 200
    assert len(ok.json()["token"]) == 40
    again = client.post("/api/auth/token", {"username": "alice", "password": "alice"}, format="json")
    assert again.json()["token"] == ok.json()["token"]
    assert_error(client.post("/api/auth/token", {"username": "alice", "password": "nope"}, format="json"), 401, "invalid_credentials")
    assert_error(client.post("/api/auth/token", {"username": "alice"}, format="json"), 400, "invalid_request")
    assert_error(client.post("/api/auth/token", [1, 2], format="json"), 400, "invalid_request")
    bad_json = client.generic("POST", "/api/auth/token", "{nope", content_type="application/json")
    assert_error(bad_json, 400, "invalid_request")


def test_put_match_needs_a_permitted_user(users):
    body = {"players": ["alice", "bob"]}
    assert_error(client_for(None).put("/api/match", body, format="json"), 401, "not_authenticated")
    assert_error(client_for(users["carol"]).put("/api/match", body, format="json"), 403, "permission_denied")
    wrong = client_for(None)
    wrong.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
    assert_error(wrong.put("/api/match", body, format="json"), 401, "not_authenticated")
    assert Match.objects.count() == 0


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"players": ["alice"]}, 400, "invalid_request"),
        ({"players": ["alice", "bob", "carol"]}, 400, "invalid_request"),
        ({"players": ["alice", "alice"]}, 400, "invalid_request"),
        ({"players": ["alice", "zed"]}, 400, "unknown_player"),
        ({"players": ["alice", "bob"], "points_to_win": 0}, 400, "invalid_request"),
        ({"players": ["alice", "bob"], "points_to_win": 22}, 400, "invalid_request"),
        ({"players": ["alice", "bob"], "points_to_win": "x"}, 400, "invalid_request"),
        ({"players": ["alice", "bob"], "id": "not-a-uuid"}, 400, "invalid_request"),
        ({"players": "alice,bob"}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
        (["alice", "bob"], 400, "invalid_request"),
    ],
)
def test_put_match_rejects_bad_bodies_and_stores_nothing(ops_api, body, status, code):
    assert_error(ops_api.put("/api/match", body, format="json"), status, code)
    assert Match.objects.count() == 0


def test_unknown_match_and_paths_answer_json_404(ops_api):
    assert_error(ops_api.get(f"/api/match/{uuid.uuid4()}"), 404, "not_found")
    assert_error(ops_api.get("/api/match/not-a-uuid"), 404, "not_found")
    assert_error(ops_api.get(f"/api/match/{uuid.uuid4()}/token"), 404, "not_found")
    assert_error(ops_api.get("/api/nothing-here"), 404, "not_found")
    assert_error(ops_api.delete("/api/match"), 405, "method_not_allowed")


def test_openapi_schema_is_served(ops_api):
    response = ops_api.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert b"/api/match" in response.content


def test_detail_needs_authentication(users):
    assert_error(client_for(None).get(f"/api/match/{uuid.uuid4()}"), 401, "not_authenticated")
    assert User.objects.filter(username="alice").exists()


@pytest.mark.django_db(transaction=True)
def test_an_unreachable_database_is_a_503_with_its_own_code(ops_api):
    """The API's database refuses the connection (down, or "too many clients"):
    503 database_unavailable with Retry-After, not a 500, and nothing stored."""
    import socket

    from django.db import connection

    saved = dict(connection.settings_dict)
    connection.close()
    if connection.vendor == "sqlite":
        connection.settings_dict["NAME"] = "/nonexistent-directory/arena.sqlite3"
    else:
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        connection.settings_dict.update(HOST="127.0.0.1", PORT=str(closed_port))
    try:
        response = ops_api.put("/api/match", {"players": ["alice", "bob"]}, format="json")
    finally:
        connection.close()
        connection.settings_dict.clear()
        connection.settings_dict.update(saved)
    assert response.status_code == 503, response.content
    assert response.json()["error"] == "database_unavailable" and response["Retry-After"] == "1"
    assert not Match.objects.exists()
