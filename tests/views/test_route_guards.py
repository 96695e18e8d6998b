"""Every route in the URL map is guarded: walked as anonymous and as every role.

A new route fails this test until it is placed in EXPECTED below, so no route can
be added without deciding who may reach it (RELIABILITY S14, S17).
"""

from __future__ import annotations

import re

import pytest

from terminal.authz import POLICY, permission_of
from tests.conftest import api_token, bearer, csrf_from
from tests.factories import ROLES

PUBLIC = "public"
ALL = set(ROLES)

# endpoint (or blueprint prefix ending in ".") -> roles that may reach it
EXPECTED: dict[str, set[str] | str] = {
    "static": PUBLIC,
    "auth.login": PUBLIC,
    "auth.set_language": PUBLIC,
    "auth.logout": ALL,
    "home.index": ALL,
    "admin.": {"admin"},
    "roster.": {"admin"},
    "counter.reverse": {"supervisor"},
    "counter.": {"clerk", "agent", "delivery", "supervisor"},
    "followup.": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "withdrawals.reconcile": {"supervisor"},
    "withdrawals.import_settlement": {"supervisor"},
    "withdrawals.": {"clerk", "agent", "delivery", "supervisor"},
    "api.create_token": PUBLIC,
    "api.openapi": PUBLIC,
    "api.delete_token": ALL,
    "api.search_beneficiaries": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "api.show_beneficiary": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "api.list_payouts": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "audit.payouts": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "audit.payout": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "audit.export_payouts": {"auditor"},
    "api.create_verification": {"clerk", "agent", "delivery", "supervisor"},
    "api.create_payout": {"clerk", "agent", "delivery", "supervisor"},
    "api.receipt_pdf": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "api.get_cash_float": {"clerk", "agent", "delivery", "supervisor"},
    "api.put_cash_float": {"supervisor"},
    "api.create_reversal": {"supervisor"},
    "followup.open_reach_cases": {"supervisor"},
    "followup.export_failures": {"auditor"},
    "reports.coverage": {"supervisor", "auditor"},
    "reports.return_file": {"auditor"},
    "api.get_coverage": {"supervisor", "auditor"},
    "api.get_return_file": {"auditor"},
    "api.create_failure": {"clerk", "agent", "delivery", "supervisor"},
    "api.list_failures": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "api.update_failure": {"supervisor"},
    "api.create_withdrawal": {"clerk", "agent", "delivery", "supervisor"},
    "api.confirm_withdrawal": {"clerk", "agent", "delivery", "supervisor"},
    "api.resend_otp": {"clerk", "agent", "delivery", "supervisor"},
    "api.cancel_withdrawal": {"clerk", "agent", "delivery", "supervisor"},
    "api.get_withdrawal": {"clerk", "agent", "delivery", "supervisor", "auditor"},
    "api.reconcile_withdrawals": {"supervisor"},
    "api.get_audit_checkpoint": {"auditor"},
    "trail.": {"auditor"},
    "api.verify_audit_checkpoint": {"auditor"},
    "api.list_audit_events": {"auditor"},
    "api.verify_audit_chain": {"auditor"},
    "api.verify_receipt": PUBLIC,
    "api.receipt_public_key": PUBLIC,
    "receipts.check": PUBLIC,
    # The tablet app's shell: the same for everyone, no personal data (its data comes
    # from the API with the device token).
    "tablet.app": PUBLIC,
    "tablet.service_worker": PUBLIC,
    "tablet.manifest": PUBLIC,
    # Monitoring: status, schema revision and version only, nothing personal.
    "health.healthz": PUBLIC,
    "daybook.close": {"supervisor"},
    "daybook.": {"supervisor", "auditor"},
    "api.get_daybook": {"supervisor", "auditor"},
    "api.close_daybook": {"supervisor"},
    "samples.": {"auditor"},
    "delivery.": {"supervisor"},
    "api.create_device": {"supervisor"},
    "api.list_devices": {"supervisor"},
    "api.delete_device": {"supervisor"},
    "api.get_current_device": {"delivery"},
    "api.delete_current_device": {"delivery"},
    "api.create_route": {"supervisor"},
    "api.release_route_person": {"supervisor"},
    "api.get_current_route": {"delivery"},
    "api.sync": {"delivery"},
    "api.create_sample": {"auditor"},
    "api.get_sample": {"auditor"},
    "api.answer_sample_item": {"auditor"},
}


def expected_for(endpoint: str) -> set[str] | str:
    """Return who may reach an endpoint according to the table above."""
    if endpoint in EXPECTED:
        return EXPECTED[endpoint]
    for key, value in EXPECTED.items():
        if key.endswith(".") and endpoint.startswith(key):
            return value
    raise AssertionError(f"route {endpoint} is not in the guard table: decide who may reach it")


def routes(app):
    """Yield (endpoint, method, url) for every route, with placeholder arguments."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        url = re.sub(r"<int:[^>]+>", "999999", rule.rule)
        url = re.sub(r"<[^>]+>", "ZZZZ", url)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, url


def test_every_route_has_a_mark_and_a_table_entry(app):
    for endpoint, _method, _url in routes(app):
        assert permission_of(app, endpoint) is not None, f"{endpoint} has no @allow/@public"
        expected = expected_for(endpoint)
        mark = permission_of(app, endpoint)
        if expected == PUBLIC:
            assert mark == PUBLIC, endpoint
        else:
            granted = {role.value for role in POLICY[mark]} if mark != PUBLIC else ALL
            assert granted == expected, (
                f"{endpoint}: marked {mark} grants {granted}, expected {expected}"
            )


def test_anonymous_reaches_only_public_routes(app, world):
    client = app.test_client()
    for endpoint, method, url in routes(app):
        if expected_for(endpoint) == PUBLIC:
            continue
        kwargs = {}
        if method != "GET" and not url.startswith("/api/"):
            kwargs["data"] = {"csrf_token": csrf_from(client.get("/login").get_data(as_text=True))}
        response = client.open(url, method=method, **kwargs)
        if url.startswith("/api/"):
            assert response.status_code == 401, (endpoint, method, response.status_code)
            assert response.get_json()["error"] == "unauthorized"
        else:
            assert response.status_code == 302, (endpoint, method, response.status_code)
            assert response.headers["Location"].startswith("/login"), endpoint


@pytest.mark.parametrize("role", ROLES)
def test_each_role_reaches_exactly_its_routes(app, world, role):
    from tests.conftest import login

    client = app.test_client()
    login(client, world.users[role].username)
    token = api_token(app.test_client(), world.users[role].username)
    device_token = None
    if role == "delivery":
        # The tablet's endpoints take its device token, not the user's own.
        from terminal.db import new_session
        from terminal.services.delivery import register_device

        with app.app_context():
            db = new_session(app)
            device_token = register_device(
                db, world.users["supervisor"], name="Tablet", username=world.users[role].username
            ).token
            db.close()
    for endpoint, method, url in routes(app):
        expected = expected_for(endpoint)
        if expected == PUBLIC or endpoint == "auth.logout" or endpoint == "api.delete_token":
            continue
        if url.startswith("/api/"):
            use = device_token if device_token and expected == {"delivery"} else token
            response = client.open(url, method=method, headers=bearer(use), json={})
        else:
            kwargs = {}
            if method != "GET":
                kwargs["data"] = {"csrf_token": csrf_from(client.get("/").get_data(as_text=True))}
            response = client.open(url, method=method, **kwargs)
        allowed = role in expected
        if allowed:
            assert response.status_code != 403, (role, endpoint, method)
            assert not (
                response.status_code == 302 and response.headers["Location"].startswith("/login")
            ), (role, endpoint, method)
        else:
            assert response.status_code == 403, (role, endpoint, method, response.status_code)


def test_an_unmarked_route_is_refused(app, world):
    from flask import Blueprint

    extra = Blueprint("extra", __name__)

    @extra.route("/forgotten")
    def forgotten():
        return "should never be served"

    app.register_blueprint(extra)
    client = app.test_client()
    from tests.conftest import login

    login(client, "admin1")
    assert client.get("/forgotten").status_code == 403


def test_api_never_accepts_the_session_cookie(app, world):
    from tests.conftest import login

    client = app.test_client()
    login(client, "admin1")
    # Signed in by cookie, but the API only believes bearer tokens (no CSRF risk).
    assert client.delete("/api/v1/tokens/current").status_code == 401


def test_get_on_post_only_routes_is_405(app, world):
    client = app.test_client()
    for url in ("/logout", "/lang"):
        assert client.get(url).status_code == 405


@pytest.mark.parametrize("role", ["clerk", "supervisor", "admin"])
def test_every_page_post_refuses_a_missing_or_foreign_csrf_token(app, world, role):
    """RELIABILITY S14: forms without their own session's CSRF token change nothing."""
    from tests.conftest import login

    client = app.test_client()
    login(client, world.users[role].username)
    other = app.test_client()
    login(other, world.users[role].username)
    foreign = csrf_from(other.get("/").get_data(as_text=True))
    for endpoint, method, url in routes(app):
        if method != "POST" or url.startswith("/api/"):
            continue
        for data in ({}, {"csrf_token": "forged"}, {"csrf_token": foreign}):
            response = client.post(url, data=data)
            assert response.status_code in (400, 403), (endpoint, data, response.status_code)
    # Still signed in: the refusals changed nothing.
    assert client.get("/").status_code == 200


# Variants of a route whose answer depends on more than the route's mark: the table
# says who may reach them, and the policy must say the same.
VARIANTS = {
    ("GET /api/v1/payouts", "Accept: text/csv"): ("export", {"auditor"}),
}


def test_variants_follow_the_policy():
    for (_route, _variant), (permission, roles) in VARIANTS.items():
        assert {role.value for role in POLICY[permission]} == roles


@pytest.mark.parametrize("role", ROLES)
def test_the_csv_export_is_for_the_export_permission(app, world, role):
    client = app.test_client()
    token = api_token(client, world.users[role].username)
    response = client.get("/api/v1/payouts", headers={**bearer(token), "Accept": "text/csv"})
    reaches_log = role in EXPECTED["api.list_payouts"]
    allowed = VARIANTS[("GET /api/v1/payouts", "Accept: text/csv")][1]
    if role in allowed:
        assert response.status_code == 200
        assert response.mimetype == "text/csv"
    else:
        assert response.status_code == 403
        assert response.get_json()["error"] == ("export_forbidden" if reaches_log else "forbidden")
