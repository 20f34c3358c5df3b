"""Sign-in and sign-up throttling: per address, per name, with Retry-After, on the
API, the login and sign-up pages and the admin login (arena/security/throttle.py)."""
from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from arena.security import throttle
from arena.security.client_address import client_address
from tests.conftest import running_site

pytestmark = pytest.mark.django_db

WINDOW = 60
START = 1_800_000_000.0  # a window boundary (a multiple of WINDOW)


@pytest.fixture
def limits(settings, monkeypatch):
    """3 failures per 60 s window, and a clock 10 s into a window (Retry-After 50)."""
    settings.AUTH_THROTTLE_FAILURES = 3
    settings.AUTH_THROTTLE_WINDOW = WINDOW
    now = {"t": START + 10}
    monkeypatch.setattr(throttle, "clock", lambda: now["t"])
    return now


@pytest.fixture
def api_client():
    return APIClient()


@pytest.fixture
def people(db):
    User = get_user_model()
    return {name: User.objects.create_user(name, password=f"pw-{name}-1") for name in ("alice", "bob", "carol")}


def token(client, name: str, password: str, address: str = "198.51.100.1", **headers):
    return client.post(
        "/api/auth/token", {"username": name, "password": password}, format="json", REMOTE_ADDR=address, **headers
    )


def assert_throttled(response, retry_after: int = 50) -> None:
    assert response.status_code == 429, response.content
    body = response.json()
    assert body["error"] == "throttled" and set(body) == {"error", "detail"}
    assert f"Try again in {retry_after} seconds" in body["detail"]
    assert response["Retry-After"] == str(retry_after)


def test_api_limits_failures_per_name(api_client, people, limits):
    """Guessing one account from many addresses: the name is blocked, before the
    password is checked; other names and, after the window, the name itself are not."""
    for i in range(3):
        assert token(api_client, "alice", "wrong", f"203.0.113.{i}").status_code == 401
    assert_throttled(token(api_client, "alice", "wrong", "203.0.113.50"))
    assert_throttled(token(api_client, "alice", "pw-alice-1", "203.0.113.51"))  # even the right password
    assert_throttled(token(api_client, "ALICE ", "wrong", "203.0.113.52"))  # however the name is typed
    assert token(api_client, "bob", "pw-bob-1", "203.0.113.53").status_code == 200
    limits["t"] += 50  # the next window
    assert token(api_client, "alice", "pw-alice-1", "203.0.113.54").status_code == 200


def test_api_limits_failures_per_address(api_client, people, limits):
    """Spraying many names from one address: that address is blocked, others are not."""
    for name in ("alice", "bob", "nobody"):
        assert token(api_client, name, "wrong", "192.0.2.7").status_code == 401
    limits["t"] += 20
    assert_throttled(token(api_client, "carol", "pw-carol-1", "192.0.2.7"), retry_after=30)
    assert token(api_client, "carol", "pw-carol-1", "192.0.2.8").status_code == 200


def test_failures_on_one_name_never_block_another_name_elsewhere(api_client, people, limits):
    for _ in range(5):
        token(api_client, "alice", "wrong", "192.0.2.10")
    assert token(api_client, "bob", "pw-bob-1", "192.0.2.11").status_code == 200


def test_successes_are_not_counted_and_reset_the_name(api_client, people, limits):
    for _ in range(10):  # far over the limit of 3: successes never count
        assert token(api_client, "alice", "pw-alice-1", "192.0.2.20").status_code == 200
    # Two typos, then the right password: the name's count starts again.
    assert token(api_client, "bob", "wrong", "192.0.2.21").status_code == 401
    assert token(api_client, "bob", "wrong", "192.0.2.22").status_code == 401
    assert token(api_client, "bob", "pw-bob-1", "192.0.2.23").status_code == 200
    assert token(api_client, "bob", "wrong", "192.0.2.24").status_code == 401
    assert token(api_client, "bob", "wrong", "192.0.2.25").status_code == 401
    assert token(api_client, "bob", "pw-bob-1", "192.0.2.26").status_code == 200
    # A success does not wipe its address's failures (a script with one account of its own would).
    for name in ("x1", "x2"):
        assert token(api_client, name, "wrong", "192.0.2.30").status_code == 401
    assert token(api_client, "carol", "pw-carol-1", "192.0.2.30").status_code == 200
    assert token(api_client, "x3", "wrong", "192.0.2.30").status_code == 401
    assert_throttled(token(api_client, "x4", "wrong", "192.0.2.30"))


def test_malformed_requests_are_not_counted(api_client, people, limits):
    for _ in range(5):
        assert api_client.post("/api/auth/token", {"username": "alice"}, format="json",
                               REMOTE_ADDR="192.0.2.40").status_code == 400
    assert token(api_client, "alice", "pw-alice-1", "192.0.2.40").status_code == 200


def test_a_client_sent_forwarded_for_is_ignored(api_client, people, limits):
    for i in range(3):
        forged = {"HTTP_X_FORWARDED_FOR": f"10.0.0.{i}", "HTTP_X_REAL_IP": f"10.1.0.{i}"}
        assert token(api_client, f"n{i}", "wrong", "192.0.2.50", **forged).status_code == 401
    assert_throttled(token(api_client, "n9", "wrong", "192.0.2.50", HTTP_X_FORWARDED_FOR="10.0.0.99"))


def test_the_trusted_proxy_header_is_honoured(api_client, people, limits, settings):
    """Behind a proxy every request has the proxy's REMOTE_ADDR; the header it sets tells clients apart."""
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_REAL_IP"
    proxy = "127.0.0.1"
    for name in ("n1", "n2", "n3"):
        assert token(api_client, name, "wrong", proxy, HTTP_X_REAL_IP="203.0.113.9").status_code == 401
    assert_throttled(token(api_client, "n4", "wrong", proxy, HTTP_X_REAL_IP="203.0.113.9"))
    # Another client behind the same proxy is not blocked; X-Forwarded-For still means nothing.
    assert token(api_client, "alice", "pw-alice-1", proxy, HTTP_X_REAL_IP="203.0.113.10",
                 HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 200
    # A request that did not come through the proxy counts by its own address, whatever it claims.
    assert token(api_client, "bob", "pw-bob-1", "198.51.100.77").status_code == 200
    for name in ("m1", "m2", "m3"):
        assert token(api_client, name, "wrong", "198.51.100.78", HTTP_X_REAL_IP=f"10.9.9.{name[-1]}").status_code == 401
    assert_throttled(token(api_client, "m4", "wrong", "198.51.100.78", HTTP_X_REAL_IP="10.9.9.4"))


def test_api_and_pages_share_the_counts(api_client, client, people, limits):
    for _ in range(2):
        assert token(api_client, "alice", "wrong", "192.0.2.90").status_code == 401
    assert client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.91").status_code == 200
    assert client.post("/login/", {"username": "alice", "password": "pw-alice-1"},
                       REMOTE_ADDR="192.0.2.92").status_code == 429


def test_client_address(rf, settings):
    request = rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="10.0.0.1", HTTP_X_REAL_IP="10.0.0.2")
    assert client_address(request) == "127.0.0.1"
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_REAL_IP"
    assert client_address(request) == "10.0.0.2"
    # Not from the proxy (it went around it): its header means nothing.
    around = rf.get("/", REMOTE_ADDR="192.0.2.1", HTTP_X_REAL_IP="10.0.0.2")
    assert client_address(around) == "192.0.2.1"
    settings.TRUSTED_PROXY_ADDRESSES = ["192.0.2.0/24"]
    assert client_address(around) == "10.0.0.2"
    settings.TRUSTED_PROXY_ADDRESSES = ["127.0.0.1"]
    settings.TRUSTED_PROXY_HEADER = "HTTP_X_FORWARDED_FOR"  # the entry the proxy appended: the last
    assert client_address(rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 10.0.0.3")) == "10.0.0.3"
    assert client_address(rf.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="not-an-ip")) == "127.0.0.1"


def test_ipv6_clients_count_per_64(api_client, people, limits):
    assert throttle.address_bucket("2001:db8:1:2::5") == throttle.address_bucket("2001:db8:1:2:ffff::9")
    assert throttle.address_bucket("2001:db8:1:2::5") != throttle.address_bucket("2001:db8:1:3::5")
    assert throttle.address_bucket("::ffff:192.0.2.1") == "192.0.2.1"
    for i in range(3):
        assert token(api_client, f"v{i}", "wrong", f"2001:db8:1:2::{i + 1}").status_code == 401
    assert_throttled(token(api_client, "v9", "wrong", "2001:db8:1:2:abcd::1"))
    assert token(api_client, "alice", "pw-alice-1", "2001:db8:1:3::1").status_code == 200


def test_login_page_says_when_to_try_again(client, people, limits):
    for _ in range(3):
        page = client.post("/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.60")
        assert page.status_code == 200 and b"Try again" not in page.content
    page = client.post("/login/", {"username": "alice", "password": "pw-alice-1"}, REMOTE_ADDR="192.0.2.61")
    assert page.status_code == 429 and page["Retry-After"] == "50"
    html = page.content.decode()
    assert 'class="alert alert-error"' in html and "Try again in 50 seconds." in html
    assert 'name="username"' in html  # the form is still there
    assert "_auth_user_id" not in client.session
    limits["t"] += 50
    assert client.post("/login/", {"username": "alice", "password": "pw-alice-1"},
                       REMOTE_ADDR="192.0.2.61").status_code == 302


def test_signup_page_says_when_to_try_again(client, people, limits):
    for i in range(3):  # e.g. a script probing which names exist
        page = client.post("/signup/", {"username": "alice", "password1": "a-long-secret-9",
                                        "password2": "a-long-secret-9"}, REMOTE_ADDR="192.0.2.70")
        assert page.status_code == 200 and b"already exists" in page.content
    page = client.post("/signup/", {"username": "dora", "password1": "a-long-secret-9",
                                    "password2": "a-long-secret-9"}, REMOTE_ADDR="192.0.2.70")
    assert page.status_code == 429 and page["Retry-After"] == "50"
    assert "Try again in 50 seconds." in page.content.decode()
    assert not get_user_model().objects.filter(username="dora").exists()
    # Someone else signs up meanwhile.
    done = client.post("/signup/", {"username": "dora", "password1": "a-long-secret-9",
                                    "password2": "a-long-secret-9"}, REMOTE_ADDR="192.0.2.71")
    assert done.status_code == 302


def test_admin_login_is_throttled(client, people, limits):
    for _ in range(3):
        client.post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.80")
    page = client.post("/admin/login/", {"username": "alice", "password": "wrong"}, REMOTE_ADDR="192.0.2.80")
    assert "Try again in 50 seconds." in page.content.decode()


def test_sign_in_works_when_the_cache_is_down(api_client, people, settings, caplog):
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": f"redis://127.0.0.1:{port}/0"}}
    assert token(api_client, "alice", "pw-alice-1").status_code == 200
    assert token(api_client, "alice", "wrong").status_code == 401
    assert "throttle unavailable" in caplog.text


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    not django_settings.CACHES["default"]["BACKEND"].endswith("RedisCache"),
    reason="needs REDIS_URL: each process counts on its own without it (run by `make test` with Redis)",
)
def test_every_web_process_counts_in_the_same_cache(api_client, people):
    """Failures through a separate web server process block the name here too."""
    window = 1_000_000  # one window for the whole test, whatever the time
    django_settings_override = {"AUTH_THROTTLE_FAILURES": "3", "AUTH_THROTTLE_WINDOW": str(window)}
    name = f"eve-{uuid.uuid4().hex[:8]}"
    with running_site(django_settings_override) as url:
        codes = []
        for _ in range(4):
            request = urllib.request.Request(
                f"{url}/api/auth/token", data=json.dumps({"username": name, "password": "wrong"}).encode(),
                headers={"Content-Type": "application/json"}, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    codes.append(response.status)
            except urllib.error.HTTPError as error:
                codes.append(error.code)
        assert codes == [401, 401, 401, 429]
    from django.test import override_settings

    with override_settings(AUTH_THROTTLE_FAILURES=3, AUTH_THROTTLE_WINDOW=window):
        response = token(api_client, name, "wrong", "203.0.113.200")
    assert response.status_code == 429 and response.json()["error"] == "throttled"
