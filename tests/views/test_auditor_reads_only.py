"""Auditors read everything and change nothing (DESIGN "Who uses it", RELIABILITY S17).

Every route that is not a GET is sent by an auditor, through the pages (with a good
CSRF token) and the API (with a good token), with a body that would be accepted
from the right role; each is refused with 403, and not one row of the database
changes. The few exceptions are listed with why: the auditor's own sampling work,
checks that read only, and the auditor's own session.
"""

from __future__ import annotations

import re

from sqlalchemy import func, inspect, select, table

from tests.conftest import api_token, bearer, csrf_from, login
from tests.factories import make_beneficiary

# Non-GET routes an auditor may use, and why.
AUDITORS_OWN = {
    # Signing in and out, the language: the auditor's own session.
    "auth.login",
    "auth.logout",
    "auth.set_language",
    "api.create_token",
    "api.delete_token",
    # Checks that read only (a POST because a file or a JSON body is sent).
    "trail.check_checkpoint",
    "api.verify_audit_checkpoint",
}
# Payment verification by sampling is the auditor's own work (issue [P8] item 7).
SAMPLING = ("samples.", "api.create_sample", "api.answer_sample")
# Rows that record the auditor's own session, not the payments.
SESSION_TABLES = {"login_attempts", "login_sessions", "api_tokens", "alembic_version"}


def _writes(app, ids):
    for rule in app.url_map.iter_rules():
        methods = rule.methods - {"GET", "HEAD", "OPTIONS"}
        if not methods or rule.endpoint in AUDITORS_OWN:
            continue
        if rule.endpoint.startswith(SAMPLING):
            continue
        # A real object where the auditor may read it, so the refusal is the write's.
        url = re.sub(r"<int:[^>]+>", str(ids.get(rule.endpoint, 1)), rule.rule)
        url = re.sub(r"<[^>]+>", "HTBD", url)
        for method in sorted(methods):
            yield rule.endpoint, method, url


def _counts(session):
    session.rollback()
    names = [n for n in inspect(session.get_bind()).get_table_names() if n not in SESSION_TABLES]
    return {name: session.scalar(select(func.count()).select_from(table(name))) for name in names}


def test_every_write_route_refuses_an_auditor_and_nothing_changes(app, world, session):
    client = app.test_client()
    assert login(client, world.users["auditor"].username).status_code == 302
    token = bearer(api_token(app.test_client(), world.users["auditor"].username))
    clerk = bearer(api_token(app.test_client(), world.users["clerk"].username))
    person = make_beneficiary(session, commune=world.point_a.communes[0])
    case = client.post(
        "/api/v1/failures",
        json={"beneficiary_code": person.code, "reason": "otp_not_received"},
        headers=clerk,
    )
    assert case.status_code == 201, case.get_json()
    ids = {"followup.case": case.get_json()["id"]}
    before = _counts(session)
    tried = 0
    for endpoint, method, url in _writes(app, ids):
        if url.startswith("/api/"):
            response = client.open(
                url,
                method=method,
                headers={**token, "Idempotency-Key": f"audit-{tried}"},
                json={"reason": "x", "advance": 1000, "status": "resolved", "otp": "123456"},
            )
        else:
            csrf = csrf_from(client.get("/").get_data(as_text=True))
            response = client.open(
                url,
                method=method,
                data={"csrf_token": csrf, "reason": "x", "advance": "1000", "returned": "0"},
            )
        assert response.status_code == 403, (endpoint, method, response.status_code)
        tried += 1
    assert tried > 20  # the walk met the write routes
    assert _counts(session) == before
