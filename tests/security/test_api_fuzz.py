"""Schemathesis generates requests from the OpenAPI schema at /api/schema/: the API
must never answer 500, and every error keeps the one JSON form."""
from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from arena.wsgi import application

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


@pytest.fixture
def auth_header(users):
    from rest_framework.authtoken.models import Token

    return {"Authorization": f"Token {Token.objects.get_or_create(user=users['ops'])[0].key}"}


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_with_a_server_error(case, auth_header):
    response = case.call(headers=auth_header)
    assert response.status_code < 500, f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:300]}"
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error", "detail"}, body
