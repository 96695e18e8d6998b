"""POST /api/v1/tokens and DELETE /api/v1/tokens/current, exactly as API.md says."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from terminal.models import ApiToken, utcnow
from tests.conftest import bearer
from tests.factories import PASSWORD


def test_token_issued_with_user_and_expiry(client, world):
    response = client.post("/api/v1/tokens", json={"username": "clerk1", "password": PASSWORD})
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"token", "expires_at", "user"}
    assert body["user"] == {"username": "clerk1", "role": "clerk", "payout_point": "HTBD"}
    expires = datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() is not None
    assert 11 * 3600 < (expires - utcnow()).total_seconds() <= 12 * 3600


def test_token_is_stored_hashed(client, world, session):
    token = client.post(
        "/api/v1/tokens", json={"username": "clerk1", "password": PASSWORD}
    ).get_json()["token"]
    hashes = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in hashes
    assert len(hashes) == 1 and len(hashes[0]) == 64


def test_bad_credentials_401(client, world):
    for body in (
        {"username": "clerk1", "password": "nope-nope-nope"},
        {"username": "ghost", "password": "x"},
    ):
        response = client.post("/api/v1/tokens", json=body)
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_credentials"


def test_lockout_429_with_retry_after_even_with_right_password(client, world):
    for _ in range(5):
        client.post("/api/v1/tokens", json={"username": "clerk1", "password": "wrong-wrong-wrong"})
    response = client.post("/api/v1/tokens", json={"username": "clerk1", "password": PASSWORD})
    assert response.status_code == 429
    assert response.get_json()["error"] == "too_many_attempts"
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60


def test_lockout_is_shared_between_page_and_api(client, world):
    from tests.conftest import login

    for _ in range(5):
        login(client, "clerk1", "wrong-wrong-wrong")
    response = client.post("/api/v1/tokens", json={"username": "CLERK1", "password": PASSWORD})
    assert response.status_code == 429


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'"text"',
        b"{}",
        b'{"username": 5, "password": "x"}',
        b'{"username": "clerk1"}',
        b'{"username": "clerk1", "password": null}',
        b'{"username": "' + b"a" * 10000 + b'", "password": "x"}',
        b'{"username": "clerk1", "password": NaN}',
        b"\xff\xfe\x00garbage",
    ],
)
def test_malformed_bodies_are_400(client, world, body):
    response = client.post("/api/v1/tokens", data=body, content_type="application/json")
    assert response.status_code == 400, response.get_json()
    payload = response.get_json()
    assert payload["error"] == "invalid_request"
    assert payload["message"]


def test_revoke_current_token(client, world):
    token = client.post(
        "/api/v1/tokens", json={"username": "clerk1", "password": PASSWORD}
    ).get_json()["token"]
    assert client.delete("/api/v1/tokens/current", headers=bearer(token)).status_code == 204
    response = client.delete("/api/v1/tokens/current", headers=bearer(token))
    assert response.status_code == 401


def test_expired_token_is_refused(client, world, session):
    token = client.post(
        "/api/v1/tokens", json={"username": "clerk1", "password": PASSWORD}
    ).get_json()["token"]
    row = session.scalars(select(ApiToken)).one()
    row.expires_at = utcnow()
    session.commit()
    assert client.delete("/api/v1/tokens/current", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize(
    "header", ["", "Bearer", "Bearer ", "Basic abc", "Bearer " + "x" * 5000, "Bearer nope"]
)
def test_bad_authorization_headers_are_401(client, world, header):
    response = client.delete("/api/v1/tokens/current", headers={"Authorization": header})
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_unknown_api_route_is_json_404(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"] == "not_found"


def test_wrong_method_is_json_405(client):
    response = client.get("/api/v1/tokens")
    assert response.status_code == 405
    assert response.get_json()["error"] == "method_not_allowed"


def test_openapi_lists_every_api_route(client, app):
    spec = client.get("/api/v1/openapi.json").get_json()
    assert spec["openapi"].startswith("3.")
    import re

    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1"):
            continue
        path = re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", rule.rule)
        assert path in spec["paths"], path
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert method.lower() in spec["paths"][path], (path, method)
    token_op = spec["paths"]["/api/v1/tokens"]["post"]
    schema_ref = token_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert schema_ref.endswith("/TokenRequest")
