"""``GET /api/v1/audit/events`` and ``/audit/verify`` (API.md, "Audit and reports")."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy import text

from terminal.db import write_transaction
from terminal.services.audit import GENESIS_HASH
from tests.audit_tamper import guards_off
from tests.conftest import api_token, bearer


@pytest.fixture
def auditor(client, world):
    return bearer(api_token(client, "auditor1"))


def test_the_trail_pages_in_sequence_and_each_hash_recomputes(client, auditor):
    first = client.get("/api/v1/audit/events?limit=5", headers=auditor)
    assert first.status_code == 200
    body = first.get_json()
    assert [e["seq"] for e in body["items"]] == [1, 2, 3, 4, 5] and body["next_after"] == 5
    event = body["items"][0]
    assert set(event) >= {
        "seq",
        "at",
        "actor",
        "action",
        "object_type",
        "object_id",
        "data",
        "prev_hash",
        "hash",
    }
    assert event["prev_hash"] == GENESIS_HASH and "+07:00" in event["at"]
    rest, after = [], 5
    while after is not None:
        page = client.get(f"/api/v1/audit/events?after={after}&limit=7", headers=auditor).get_json()
        rest.extend(page["items"])
        after = page["next_after"]
    chain = body["items"] + rest
    assert [e["seq"] for e in chain] == list(range(1, len(chain) + 1))
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(chain))


def test_verify_says_intact_then_finds_the_edited_event(client, auditor, session):
    ok = client.get("/api/v1/audit/verify", headers=auditor).get_json()
    assert ok["ok"] is True and ok["events"] > 5 and ok["first_bad_seq"] is None
    with write_transaction(session), guards_off(session.connection()):
        session.execute(text("UPDATE audit_events SET actor = 'someone' WHERE seq = 3"))
    bad = client.get("/api/v1/audit/verify", headers=auditor).get_json()
    assert bad["ok"] is False and bad["first_bad_seq"] == 3  # the walk stops there


@pytest.mark.parametrize(
    "query",
    ["after=-1", "after=abc", "limit=0", "limit=1001", f"after={2**64}", "after=1%002"],
)
def test_bad_queries_are_400(client, auditor, query):
    response = client.get(f"/api/v1/audit/events?{query}", headers=auditor)
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"


@pytest.mark.parametrize("role", ["clerk", "supervisor", "admin"])
def test_only_auditors_read_the_trail(client, world, role):
    headers = bearer(api_token(client, f"{role}1"))
    assert client.get("/api/v1/audit/events", headers=headers).status_code == 403
    assert client.get("/api/v1/audit/verify", headers=headers).status_code == 403
    assert client.get("/api/v1/audit/verify").status_code == 401
