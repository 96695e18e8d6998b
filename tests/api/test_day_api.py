"""Running a day without the pages (API.md): the cash float and reversals over the API."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from terminal.models import AuditEvent, CashFloat, Entitlement, Payout
from tests.conftest import api_token, bearer, csrf_from, login
from tests.factories import make_beneficiary

STAFF = ("clerk", "agent", "delivery", "supervisor")


def today():
    """Today in Vietnam, read when a test runs (a run may cross midnight there)."""
    return datetime.now(timezone(timedelta(hours=7))).date()


class Tokens(dict):
    """The Authorization header of each user of the world (point B's as `<role>b`), on demand."""

    def __init__(self, client, world):
        super().__init__()
        self.client = client
        self.usernames = {role: user.username for role, user in world.users.items()}
        self.usernames.update({f"{role}b": u.username for role, u in world.users_b.items()})

    def __missing__(self, role):
        self[role] = bearer(api_token(self.client, self.usernames[role]))
        return self[role]


@pytest.fixture
def tokens(client, world):
    """Return the users' Authorization headers, each signed in at first use."""
    return Tokens(client, world)


@pytest.fixture
def people(world, session):
    """Two cash beneficiaries and one account beneficiary at point A, one cash at B."""
    a = world.point_a.communes[0]
    return {
        "hoa": make_beneficiary(session, "TTH0000001", commune=a, id_number="046153060816"),
        "lan": make_beneficiary(
            session,
            "TTH0000002",
            commune=a,
            full_name="Trần Thị Lan",
            id_number="046160000002",
            monthly=720_000,
            periods=(("2021-09", 0), ("2021-10", 0)),
        ),
        "acc": make_beneficiary(
            session,
            "TTH0000003",
            commune=a,
            full_name="Phan Văn Minh",
            id_number="046160000003",
            method="account",
            provider="viettel_pay",
        ),
        "far": make_beneficiary(
            session,
            "TTH0000004",
            commune=world.point_b.communes[0],
            full_name="Hồ Thị Mai",
            id_number="046160000004",
        ),
    }


def get_float(client, headers, **query):
    return client.get("/api/v1/cash-float", query_string=query, headers=headers)


def put_float(client, headers, body=None, **kw):
    if body is None:
        return client.put("/api/v1/cash-float", headers=headers, **kw)
    return client.put("/api/v1/cash-float", json=body, headers=headers, **kw)


def reverse(client, headers, payout_id, body):
    return client.post(f"/api/v1/payouts/{payout_id}/reversal", json=body, headers=headers)


def pay(client, headers, person, *, channel="cash", provider_ref=None):
    """Verify a beneficiary and pay all their due entitlements; return the 201 body."""
    verified = client.post(
        "/api/v1/verifications",
        json={
            "beneficiary_code": person.code,
            "collector": "beneficiary",
            "id_number": person.id_number,
        },
        headers=headers,
    )
    assert verified.status_code == 201, verified.get_json()
    detail = client.get(f"/api/v1/beneficiaries/{person.code}", headers=headers).get_json()
    body = {
        "verification_id": verified.get_json()["verification_id"],
        "entitlement_ids": [e["id"] for e in detail["entitlements"] if e["status"] == "due"],
        "channel": channel,
    }
    if provider_ref:
        body["provider_ref"] = provider_ref
    paid = client.post(
        "/api/v1/payouts", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert paid.status_code == 201, paid.get_json()
    return paid.get_json()


def state(session):
    """Return what a refused request must leave unchanged: floats, payouts, audit length."""
    session.rollback()
    session.expire_all()
    floats = session.execute(
        select(CashFloat.point_id, CashFloat.business_date, CashFloat.advance_vnd).order_by(
            CashFloat.id
        )
    ).all()
    statuses = session.execute(select(Payout.id, Payout.status).order_by(Payout.id)).all()
    events = session.scalar(select(func.count(AuditEvent.seq)))
    return floats, statuses, events


def last_event(session, action):
    """Return the latest audit event of an action."""
    session.rollback()
    return session.scalars(
        select(AuditEvent)
        .where(AuditEvent.action == action)
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).one()


# ---- reading the float ------------------------------------------------------------


@pytest.mark.parametrize("role", STAFF)
def test_staff_read_their_points_float_with_none_recorded(client, tokens, role):
    response = get_float(client, tokens[role])
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "point": "HTBD",
        "date": today().isoformat(),
        "advance": None,
        "paid_cash": 0,
        "remaining": 0,
        "payouts": 0,
    }


@pytest.mark.parametrize("role", ["auditor", "admin"])
def test_roles_without_a_point_may_not_read_a_float(client, tokens, role):
    response = get_float(client, tokens[role])
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"


def test_no_token_is_401_with_the_error_shape(client, world):
    for response in (
        get_float(client, {}),
        put_float(client, {}, {"advance": 1}),
        reverse(client, {}, 1, {"reason": "Trả nhầm người"}),
    ):
        assert response.status_code == 401
        assert response.get_json()["error"] == "unauthorized"


def test_each_point_sees_only_its_own_float(client, tokens):
    assert put_float(client, tokens["supervisor"], {"advance": 5_000_000}).status_code == 200
    assert put_float(client, tokens["supervisorb"], {"advance": 7_000_000}).status_code == 200
    mine = get_float(client, tokens["clerk"]).get_json()
    theirs = get_float(client, tokens["clerkb"]).get_json()
    assert (mine["point"], mine["advance"]) == ("HTBD", 5_000_000)
    assert (theirs["point"], theirs["advance"]) == ("PLVT", 7_000_000)
    # Unknown query fields (a point's code among them) change nothing: staff see their own.
    assert get_float(client, tokens["clerk"], point="PLVT").get_json()["point"] == "HTBD"


def test_empty_date_means_today(client, tokens):
    assert get_float(client, tokens["clerk"], date="").get_json()["date"] == today().isoformat()


BAD_DATES = [
    "2021-13-01",
    "2021-02-30",
    "2021-1-1",
    "20211001",
    "1633046400",
    "2021-10-01T00:00:00",
    "2021-10-01Z",
    " 2021-10-01",
    "0001-01-01",
    "1999-12-31",
    "9999-12-31",
    "99999-01-01",
    "today",
    "2021-10-01\x00",
    "２０２１-１０-０１",
]


def test_bad_or_extreme_dates_are_400(client, tokens):
    for value in [*BAD_DATES, (today() + timedelta(days=32)).isoformat()]:
        response = get_float(client, tokens["clerk"], date=value)
        assert response.status_code == 400, (value, response.status_code)
        body = response.get_json()
        assert set(body) >= {"error", "message"}
        assert body["error"] in ("invalid_request", "date_out_of_range"), (value, body)


def test_date_bounds_are_named_in_the_error(client, tokens):
    body = get_float(client, tokens["clerk"], date="1999-12-31").get_json()
    latest = (today() + timedelta(days=31)).isoformat()
    assert body == {
        "error": "date_out_of_range",
        "message": body["message"],
        "earliest": "2000-01-01",
        "latest": latest,
    }
    assert latest in body["message"]  # in the reader's language, with the figures
    assert get_float(client, tokens["clerk"], date="2021-10-01").status_code == 200
    ok = get_float(client, tokens["clerk"], date="2000-01-01")
    assert ok.status_code == 200 and ok.get_json()["advance"] is None
    assert get_float(client, tokens["clerk"], date=latest).status_code == 200


# ---- recording the float ----------------------------------------------------------


def test_supervisor_records_the_advance_audited(client, tokens, session):
    response = put_float(client, tokens["supervisor"], {"advance": 50_000_000})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "point": "HTBD",
        "date": today().isoformat(),
        "advance": 50_000_000,
        "paid_cash": 0,
        "remaining": 50_000_000,
        "payouts": 0,
    }
    event = last_event(session, "cash_float.set")
    assert (event.actor, event.action, event.object_type) == (
        "supervisor1",
        "cash_float.set",
        "cash_float",
    )
    assert '"advance_vnd":[null,50000000]' in event.data.replace(" ", "")
    # Replacing the figure is audited with the figure before.
    again = put_float(client, tokens["supervisor"], {"advance": 60_000_000})
    assert again.status_code == 200 and again.get_json()["remaining"] == 60_000_000
    assert '"advance_vnd":[50000000,60000000]' in last_event(
        session, "cash_float.set"
    ).data.replace(" ", "")
    floats, _statuses, _events = state(session)
    assert [row.advance_vnd for row in floats] == [60_000_000]
    assert get_float(client, tokens["agent"]).get_json()["advance"] == 60_000_000


def test_advance_for_another_day(client, tokens, session):
    tomorrow = (today() + timedelta(days=1)).isoformat()
    response = put_float(client, tokens["supervisor"], {"advance": 0, "date": tomorrow})
    assert response.status_code == 200
    assert response.get_json()["date"] == tomorrow and response.get_json()["advance"] == 0
    assert get_float(client, tokens["clerk"], date=tomorrow).get_json()["advance"] == 0
    assert get_float(client, tokens["clerk"]).get_json()["advance"] is None
    assert '"day":"' + tomorrow + '"' in last_event(session, "cash_float.set").data.replace(" ", "")


@pytest.mark.parametrize("role", ["clerk", "agent", "delivery", "auditor", "admin"])
def test_only_the_supervisor_records_the_float(client, tokens, session, role):
    headers = tokens[role]  # signing in is audited: before the snapshot
    before = state(session)
    response = put_float(client, headers, {"advance": 50_000_000})
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert state(session) == before


BAD_ADVANCE_BODIES = [
    None,  # no body at all
    "",
    "not json",
    "[]",
    "null",
    "{}",
    '{"advance": null}',
    '{"advance": "540.000"}',
    '{"advance": "540000"}',
    '{"advance": 540000.0}',
    '{"advance": 1e6}',
    '{"advance": 5.5}',
    '{"advance": -1}',
    '{"advance": true}',
    '{"advance": false}',
    '{"advance": [540000]}',
    '{"advance": {"vnd": 540000}}',
    '{"advance": 10000000000001}',
    '{"advance": 99999999999999999999999999999999999999}',
    '{"advance": -99999999999999999999999999999999999999}',
    '{"advance": ' + "9" * 5000 + "}",
    '{"advance": 1e309}',
    '{"advance": NaN}',
    '{"advance": Infinity}',
    '{"advance": 540000, "date": "2021-13-01"}',
    '{"advance": 540000, "date": "0001-01-01"}',
    '{"advance": 540000, "date": "9999-12-31"}',
    '{"advance": 540000, "date": "1633046400"}',
    '{"advance": 540000, "date": 20211001}',
    '{"advance": 540000, "date": "2021-10-01T00:00:00+07:00"}',
    '{"advance": 540000, "date": "2021-10-01\\u0000"}',
]


def test_bad_advance_bodies_are_400_and_change_nothing(client, tokens, session):
    put_float(client, tokens["supervisor"], {"advance": 1_000_000})
    before = state(session)
    for raw in BAD_ADVANCE_BODIES:
        if raw is None:
            response = put_float(client, tokens["supervisor"])
        else:
            response = put_float(
                client, tokens["supervisor"], data=raw, content_type="application/json"
            )
        assert response.status_code == 400, (raw, response.status_code, response.get_json())
        body = response.get_json()
        assert body["error"] in ("invalid_request", "date_out_of_range"), (raw, body)
        assert isinstance(body["message"], str) and body["message"]
        assert state(session) == before, raw


def test_a_bad_advance_names_the_field(client, tokens):
    body = put_float(client, tokens["supervisor"], {"advance": -1}).get_json()
    assert body["error"] == "invalid_request"
    assert [problem["field"] for problem in body["fields"]] == ["advance"]
    assert "-1" not in str(body["fields"])  # values sent are never echoed
    # The largest amount the terminal takes anywhere (10 nghìn tỷ đồng) is accepted.
    largest = put_float(client, tokens["supervisor"], {"advance": 10**13})
    assert largest.status_code == 200 and largest.get_json()["remaining"] == 10**13


# ---- the float after payouts and reversals -----------------------------------------


def test_float_figures_after_cash_and_account_payouts(client, tokens, people):
    assert put_float(client, tokens["supervisor"], {"advance": 3_000_000}).status_code == 200
    hoa = pay(client, tokens["clerk"], people["hoa"])
    lan = pay(client, tokens["agent"], people["lan"])
    pay(client, tokens["clerk"], people["acc"], channel="account", provider_ref="VTP-778899")
    expected = {
        "point": "HTBD",
        "date": today().isoformat(),
        "advance": 3_000_000,
        "paid_cash": 540_000 + 1_440_000,
        "remaining": 3_000_000 - 1_980_000,
        "payouts": 2,
    }
    assert hoa["amount"] == 540_000 and lan["amount"] == 1_440_000
    assert get_float(client, tokens["delivery"]).get_json() == expected
    # Point B paid nothing and sees nothing of A's.
    assert get_float(client, tokens["clerkb"]).get_json()["paid_cash"] == 0


def test_advance_below_cash_paid_is_422_and_changes_nothing(client, tokens, people, session):
    put_float(client, tokens["supervisor"], {"advance": 3_000_000})
    pay(client, tokens["clerk"], people["lan"])
    before = state(session)
    refused = put_float(client, tokens["supervisor"], {"advance": 1_439_999})
    assert refused.status_code == 422
    body = refused.get_json()
    assert body["error"] == "advance_below_paid" and body["paid"] == 1_440_000
    assert body["message"]
    assert state(session) == before
    # Exactly the cash paid is allowed: nothing left in the drawer.
    exact = put_float(client, tokens["supervisor"], {"advance": 1_440_000})
    assert exact.status_code == 200 and exact.get_json()["remaining"] == 0


def test_reversal_returns_the_cash_to_the_float(client, tokens, people, session):
    put_float(client, tokens["supervisor"], {"advance": 3_000_000})
    hoa = pay(client, tokens["clerk"], people["hoa"])
    lan = pay(client, tokens["clerk"], people["lan"])
    assert get_float(client, tokens["clerk"]).get_json()["remaining"] == 1_020_000
    response = reverse(
        client, tokens["supervisor"], lan["payout_id"], {"reason": "Trả nhầm người nhận"}
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["payout_id"] == lan["payout_id"] and body["status"] == "reversed"
    assert sorted(body["entitlement_ids"]) == sorted(lan["entitlement_ids"])
    assert body["receipt_no"] == lan["receipt_no"] and body["amount"] == 1_440_000
    assert body["reversed_at"].endswith("+07:00")
    assert get_float(client, tokens["clerk"]).get_json() == {
        "point": "HTBD",
        "date": today().isoformat(),
        "advance": 3_000_000,
        "paid_cash": 540_000,
        "remaining": 2_460_000,
        "payouts": 1,
    }
    session.rollback()
    assert session.get(Payout, lan["payout_id"]).status.value == "reversed"
    assert session.get(Payout, hoa["payout_id"]).status.value == "completed"
    statuses = session.scalars(
        select(Entitlement.status).where(Entitlement.id.in_(lan["entitlement_ids"]))
    ).all()
    assert [s.value for s in statuses] == ["due", "due"]
    event = last_event(session, "payout.reversed")
    assert (event.actor, event.action, event.object_id) == (
        "supervisor1",
        "payout.reversed",
        str(lan["payout_id"]),
    )
    assert "Trả nhầm người nhận" in event.data
    # Now the advance may come down to what is still paid out.
    assert put_float(client, tokens["supervisor"], {"advance": 540_000}).status_code == 200


# ---- reversals ----------------------------------------------------------------------


@pytest.fixture
def paid(client, tokens, people):
    """A cash payout at point A and one at point B."""
    put_float(client, tokens["supervisor"], {"advance": 10_000_000})
    put_float(client, tokens["supervisorb"], {"advance": 10_000_000})
    return {
        "a": pay(client, tokens["clerk"], people["hoa"]),
        "b": pay(client, tokens["clerkb"], people["far"]),
    }


def test_second_reversal_is_409_already_reversed(client, tokens, paid, session):
    payout_id = paid["a"]["payout_id"]
    first = reverse(client, tokens["supervisor"], payout_id, {"reason": "Trả nhầm người"})
    assert first.status_code == 200
    before = state(session)
    second = reverse(client, tokens["supervisor"], payout_id, {"reason": "Trả nhầm người"})
    assert second.status_code == 409
    assert second.get_json()["error"] == "already_reversed"
    assert second.get_json()["message"]
    assert state(session) == before


def test_other_points_payout_and_missing_ids_are_404(client, tokens, paid, session):
    before = state(session)
    for payout_id in (paid["b"]["payout_id"], 999_999, 2**63 - 1, 2**63, 2**70, 10**40):
        response = reverse(client, tokens["supervisor"], payout_id, {"reason": "Trả nhầm người"})
        assert response.status_code == 404, (payout_id, response.status_code)
        assert response.get_json()["error"] in ("payout_not_found", "not_found")
    # Point B's payout and a missing one answer alike (no disclosure).
    assert (
        reverse(
            client, tokens["supervisor"], paid["b"]["payout_id"], {"reason": "xxxxx"}
        ).get_json()
        == reverse(client, tokens["supervisor"], 999_999, {"reason": "xxxxx"}).get_json()
    )
    for path in ("0", "-1", "abc", "1.5"):
        response = client.post(
            f"/api/v1/payouts/{path}/reversal",
            json={"reason": "Trả nhầm người"},
            headers=tokens["supervisor"],
        )
        assert response.status_code == 404, (path, response.status_code)
    assert state(session) == before


@pytest.mark.parametrize("role", ["clerk", "agent", "delivery", "auditor", "admin"])
def test_only_a_supervisor_reverses(client, tokens, paid, session, role):
    headers = tokens[role]  # signing in is audited: before the snapshot
    before = state(session)
    response = reverse(client, headers, paid["a"]["payout_id"], {"reason": "Trả nhầm người"})
    assert response.status_code == 403
    assert response.get_json()["error"] == "forbidden"
    assert state(session) == before


BAD_REASON_BODIES = [
    None,
    "",
    "not json",
    "[]",
    "{}",
    '{"reason": null}',
    '{"reason": 12345}',
    '{"reason": true}',
    '{"reason": ["Trả nhầm người"]}',
    '{"reason": ""}',
    '{"reason": "    "}',
    '{"reason": "abcd"}',
    '{"reason": "' + "x" * 501 + '"}',
    '{"reason": "' + "x" * 100_000 + '"}',
    '{"reason": "Trả nhầm\\u0000 người"}',
    '{"reason": "Trả nhầm\\u0007 người"}',
]


def test_bad_reasons_are_400_and_change_nothing(client, tokens, paid, session):
    url = f"/api/v1/payouts/{paid['a']['payout_id']}/reversal"
    headers = tokens["supervisor"]
    before = state(session)
    for raw in BAD_REASON_BODIES:
        if raw is None:
            response = client.post(url, headers=headers)
        else:
            response = client.post(url, data=raw, content_type="application/json", headers=headers)
        assert response.status_code == 400, (raw[:40] if raw else raw, response.status_code)
        body = response.get_json()
        assert body["error"] in ("invalid_request", "reason_required"), body
        assert state(session) == before, raw


def test_the_page_still_says_already_reversed(app, client, tokens, paid, session):
    """Reversed over the API, the counter page's reverse shows its message, not an error."""
    payout_id = paid["a"]["payout_id"]
    assert (
        reverse(client, tokens["supervisor"], payout_id, {"reason": "Trả nhầm người"}).status_code
        == 200
    )
    page_client = app.test_client()
    login(page_client, "supervisor1")
    result_url = f"/counter/payouts/{payout_id}"
    page = page_client.get(result_url).get_data(as_text=True)
    response = page_client.post(
        f"/counter/payouts/{payout_id}/reverse",
        data={"csrf_token": csrf_from(page), "reason": "Trả nhầm người"},
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "Lần chi trả này đã bị hủy trước đó." in response.get_data(as_text=True)


def test_openapi_describes_the_new_endpoints(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    cash = spec["paths"]["/api/v1/cash-float"]
    assert set(cash) == {"get", "put"}
    assert cash["put"]["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CashFloatRequest"
    }
    assert "422" in cash["put"]["responses"] and "security" in cash["get"]
    reversal = spec["paths"]["/api/v1/payouts/{payout_id}/reversal"]["post"]
    assert set(reversal["responses"]) >= {"200", "400", "401", "403", "404", "409"}
    body = spec["components"]["schemas"]["CashFloatBody"]
    assert set(body["required"]) == {
        "point",
        "date",
        "advance",
        "paid_cash",
        "remaining",
        "payouts",
    }
    assert spec["components"]["schemas"]["CashFloatRequest"]["properties"]["advance"] == {
        **spec["components"]["schemas"]["CashFloatRequest"]["properties"]["advance"],
        "type": "integer",
        "minimum": 0,
    }
