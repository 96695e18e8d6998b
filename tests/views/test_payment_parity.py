"""The counter page and the API pay through one path: the same situation gets the
same answer on both, and a page payment's cost in statements is known."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select

from terminal.db import get_engine, write_transaction
from terminal.models import Entitlement, Payout, Verification, utcnow
from tests.conftest import api_token, bearer, csrf_from, login
from tests.factories import make_beneficiary, set_float


@pytest.fixture
def people(world, session):
    commune = world.point_a.communes[0]
    cash = make_beneficiary(
        session, "TTH0000001", commune=commune, periods=(("2021-09", 0), ("2021-10", 0))
    )
    banked = make_beneficiary(
        session,
        "TTH0000002",
        commune=commune,
        full_name="Phan Văn Bảy",
        id_number="046160000007",
        method="account",
        provider="viettel_pay",
    )
    other = make_beneficiary(
        session, "TTH0000003", commune=commune, full_name="Võ Thị Ba", id_number="046160000003"
    )
    set_float(session, "HTBD")
    return {"cash": cash, "banked": banked, "other": other}


@pytest.fixture
def clerk_page(app, world):
    client = app.test_client()
    assert login(client, "clerk1").status_code == 302
    return client


@pytest.fixture
def clerk_api(client, world):
    return bearer(api_token(client, "clerk1"))


def _verify(client, headers, code, id_number):
    response = client.post(
        "/api/v1/verifications",
        json={"beneficiary_code": code, "id_number": id_number},
        headers=headers,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["verification_id"]


def _due(session, person):
    session.rollback()
    return list(
        session.scalars(
            select(Entitlement.id)
            .where(Entitlement.beneficiary_id == person.id, Entitlement.status == "due")
            .order_by(Entitlement.id)
        )
    )


def _api_pay(client, headers, verification_id, ids, channel, ref=None):
    body = {"verification_id": verification_id, "entitlement_ids": ids, "channel": channel}
    if ref is not None:
        body["provider_ref"] = ref
    response = client.post(
        "/api/v1/payouts", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    return response.status_code, response.get_json().get("error", "paid")


def _page_pay(page, verification_id, ids, channel, ref=None):
    """Post a confirmation form as the browser would, with a fresh one-time key."""
    html = page.get("/counter/").get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(html),
        "form_key": uuid.uuid4().hex,
        "entitlements": [str(i) for i in ids],
        "channel": channel,
        "provider_ref": ref or "",
    }
    response = page.post(f"/counter/v/{verification_id}/pay", data=data)
    if response.status_code == 303:
        return 303, "paid"
    match = re.search(r'data-code="([^"]*)"', response.get_data(as_text=True))
    return response.status_code, match.group(1) if match else None


def _already_paid(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    ids = _due(session, people["cash"])
    assert _api_pay(client, api, v, ids[:1], "cash")[0] == 201
    return v, ids[:1], "cash", None


def _expired(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    with write_transaction(session):
        session.get(Verification, v).expires_at = utcnow() - timedelta(seconds=1)
    return v, _due(session, people["cash"]), "cash", None


def _foreign_verification(session, world, people, client, api):
    agent = bearer(api_token(client, "agent1"))
    v = _verify(client, agent, "TTH0000001", "046153060816")
    return v, _due(session, people["cash"]), "cash", None


def _insufficient_cash(session, world, people, client, api):
    set_float(session, "HTBD", 1_000)
    v = _verify(client, api, "TTH0000001", "046153060816")
    return v, _due(session, people["cash"]), "cash", None


def _cancelled(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    ids = _due(session, people["cash"])
    with write_transaction(session):
        session.get(Entitlement, ids[0]).status = "cancelled"
    return v, ids, "cash", None


def _wrong_channel_cash_as_account(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    return v, _due(session, people["cash"]), "account", "VTP-0001"


def _wrong_channel_account_as_cash(session, world, people, client, api):
    v = _verify(client, api, "TTH0000002", "046160000007")
    return v, _due(session, people["banked"]), "cash", None


def _someone_elses_entitlement(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    return v, _due(session, people["other"]), "cash", None


def _account_without_reference(session, world, people, client, api):
    v = _verify(client, api, "TTH0000002", "046160000007")
    return v, _due(session, people["banked"]), "account", None


def _paid_fine(session, world, people, client, api):
    v = _verify(client, api, "TTH0000001", "046153060816")
    return v, _due(session, people["cash"])[:1], "cash", None


SITUATIONS = {
    "already paid": (_already_paid, 409, "already_paid"),
    "expired verification": (_expired, 422, "verification_expired"),
    "another user's verification": (_foreign_verification, 404, "verification_not_found"),
    "insufficient cash": (_insufficient_cash, 422, "insufficient_cash"),
    "cancelled entitlement": (_cancelled, 422, "entitlement_not_due"),
    "cash person as account": (_wrong_channel_cash_as_account, 422, "channel_not_allowed"),
    "account holder as cash": (_wrong_channel_account_as_cash, 422, "channel_not_allowed"),
    "someone else's entitlement": (_someone_elses_entitlement, 404, "entitlement_not_found"),
    "account without reference": (_account_without_reference, 400, "provider_ref_required"),
}


@pytest.mark.parametrize("situation", list(SITUATIONS))
def test_page_and_api_refuse_alike(
    situation, session, world, people, client, clerk_api, clerk_page
):
    build, status, code = SITUATIONS[situation]
    v, ids, channel, ref = build(session, world, people, client, clerk_api)
    session.rollback()
    before = session.scalar(select(func.count(Payout.id)))
    api = _api_pay(client, clerk_api, v, ids, channel, ref)
    page = _page_pay(clerk_page, v, ids, channel, ref)
    assert api == (status, code)
    assert page == api
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == before


def test_already_paid_on_the_page_names_the_receipt(
    session, world, people, client, clerk_api, clerk_page
):
    v, ids, channel, _ref = _already_paid(session, world, people, client, clerk_api)
    html = clerk_page.get("/counter/").get_data(as_text=True)
    response = clerk_page.post(
        f"/counter/v/{v}/pay",
        data={
            "csrf_token": csrf_from(html),
            "form_key": "second-confirmation",
            "entitlements": [str(i) for i in ids],
            "channel": channel,
        },
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert re.search(r"HTBD-\d{4}-000001", page), page[:2000]


def test_page_and_api_both_pay(session, world, people, client, clerk_api, clerk_page):
    v, ids, channel, ref = _paid_fine(session, world, people, client, clerk_api)
    assert _api_pay(client, clerk_api, v, ids, channel, ref) == (201, "paid")
    v2 = _verify(client, clerk_api, "TTH0000001", "046153060816")
    rest = _due(session, people["cash"])
    assert _page_pay(clerk_page, v2, rest, "cash") == (303, "paid")


def test_statements_per_page_payment(
    app, session, world, people, client, clerk_api, clerk_page, capsys
):
    """Count what one page payment runs, from the request's first statement to its last."""
    v = _verify(client, clerk_api, "TTH0000001", "046153060816")
    ids = _due(session, people["cash"])
    html = clerk_page.get(f"/counter/v/{v}").get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(html),
        "form_key": re.search(r'name="form_key"[^>]*value="([^"]+)"', html).group(1),
        "entitlements": [str(i) for i in ids],
        "channel": "cash",
    }
    statements: list[str] = []
    begins = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(statement)
        if statement.startswith("BEGIN"):
            begins.append(statement)

    engine = get_engine(app)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        response = clerk_page.post(f"/counter/v/{v}/pay", data=data)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert response.status_code == 303
    with capsys.disabled():
        print(f"\n  one page payment: {len(statements)} statements, {len(begins)} transactions")
    assert len(statements) <= 24, "\n".join(s[:100] for s in statements)
    assert len(begins) <= 2
