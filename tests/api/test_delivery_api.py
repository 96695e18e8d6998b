"""Home delivery over the API (API.md): devices, routes that reserve, and the offline sync."""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import func, select

from terminal.models import (
    AuditEvent,
    Entitlement,
    EntitlementStatus,
    Failure,
    HomePayout,
    Payout,
    PayoutLine,
    Receipt,
    Verification,
    Visit,
)
from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary, set_float

VN = timezone(timedelta(hours=7))


def ref() -> str:
    """Return a client reference as a tablet makes one."""
    return "t-" + secrets.token_hex(12)


def now_vn(minutes: int = 0) -> str:
    """Return a time in Vietnam, ISO 8601 with its offset."""
    return (datetime.now(VN) + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def signature() -> str:
    """Return a small real PNG, base64, as the tablet's canvas gives it."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), "white").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture
def people(world, session):
    """Four cash beneficiaries of point A (one with a proxy), one account holder, one at B."""
    a = world.point_a.communes[0]
    return {
        "hoa": make_beneficiary(session, "TTH0000001", commune=a, id_number="046153060816"),
        "lan": make_beneficiary(
            session,
            "TTH0000002",
            commune=a,
            full_name="Trần Thị Lan",
            id_number="046160000002",
            periods=(("2021-09", 0), ("2021-10", 0)),
        ),
        "tam": make_beneficiary(
            session,
            "TTH0000005",
            commune=a,
            full_name="Võ Văn Tâm",
            id_number="046160000005",
            proxy={"full_name": "Võ Thị Hạnh", "id_number": "046195000001"},
        ),
        "son": make_beneficiary(
            session, "TTH0000006", commune=a, full_name="Lê Văn Sơn", id_number="046160000006"
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


@pytest.fixture
def sup(client, world):
    """The supervisor of point A's Authorization header."""
    return bearer(api_token(client, world.users["supervisor"].username))


@pytest.fixture
def device(client, world, sup):
    """A tablet registered for point A's delivery user: its id and header."""
    response = client.post(
        "/api/v1/devices", json={"name": "Máy tính bảng 1", "username": "delivery1"}, headers=sup
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    return body["device_id"], bearer(body["token"])


@pytest.fixture
def route(client, people, sup, device):
    """A route of four people for the delivery user, and the tablet's copy of it."""
    response = client.post(
        "/api/v1/routes",
        json={
            "username": "delivery1",
            "period": "2021-10",
            "beneficiary_codes": ["TTH0000001", "TTH0000002", "TTH0000005", "TTH0000006"],
        },
        headers=sup,
    )
    assert response.status_code == 201, response.get_json()
    current = client.get("/api/v1/routes/current", headers=device[1])
    assert current.status_code == 200
    return {"created": response.get_json(), "current": current.get_json()}


def person_of(route, code):
    return next(p for p in route["current"]["people"] if p["code"] == code)


def payout_item(route, code, **extra):
    """A payout of a route person's whole due, as the tablet queues it."""
    person = person_of(route, code)
    item = {
        "client_ref": ref(),
        "beneficiary_code": code,
        "entitlement_ids": [e["id"] for e in person["entitlements"]],
        "collector": "beneficiary",
        "verified_by": "id_number",
        "paid_at": now_vn(-5),
        "signature_png": signature(),
        "lat": 16.2587,
        "lon": 107.8512,
    }
    item.update(extra)
    return item


def sync(client, device, payouts=(), visits=()):
    response = client.post(
        "/api/v1/sync", json={"payouts": list(payouts), "visits": list(visits)}, headers=device[1]
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def counter_pay(client, code, id_number, ids, clerk="clerk1"):
    """Verify a beneficiary at the counter and pay entitlements in cash; return the answer."""
    header = bearer(api_token(client, clerk))
    verified = client.post(
        "/api/v1/verifications",
        json={"beneficiary_code": code, "collector": "beneficiary", "id_number": id_number},
        headers=header,
    ).get_json()
    return client.post(
        "/api/v1/payouts",
        json={
            "verification_id": verified["verification_id"],
            "entitlement_ids": ids,
            "channel": "cash",
        },
        headers={**header, "Idempotency-Key": ref()},
    )


def count(session, model, *where):
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


# ---- devices ----------------------------------------------------------------------


def test_a_registered_tablet_opens_only_the_tablet_endpoints(client, device, people):
    _, header = device
    me = client.get("/api/v1/devices/current", headers=header)
    assert me.status_code == 200
    assert me.get_json()["user"]["username"] == "delivery1"
    assert client.get("/api/v1/routes/current", headers=header).get_json()["error"] == "no_route"
    # The device token is not a user token: the roster and the counter stay shut.
    assert client.get("/api/v1/beneficiaries?q=hoa", headers=header).status_code == 401
    assert client.get("/api/v1/cash-float", headers=header).status_code == 401


def test_the_delivery_users_own_token_is_not_a_device_token(client, world, route):
    user_token = bearer(api_token(client, "delivery1"))
    response = client.post("/api/v1/sync", json={"payouts": []}, headers=user_token)
    assert response.status_code == 403
    assert response.get_json()["error"] == "device_token_required"
    assert client.get("/api/v1/routes/current", headers=user_token).status_code == 403


@pytest.mark.parametrize(
    ("username", "status", "error"),
    [
        ("clerk1", 422, "not_delivery_user"),
        ("deliveryb", 404, "user_not_found"),
        ("nobody", 404, "user_not_found"),
    ],
)
def test_a_tablet_is_only_for_a_delivery_user_of_the_point(client, sup, username, status, error):
    response = client.post(
        "/api/v1/devices", json={"name": "Tablet", "username": username}, headers=sup
    )
    assert response.status_code == status
    assert response.get_json()["error"] == error


@pytest.mark.parametrize("role", ["clerk", "delivery", "auditor", "admin"])
def test_only_supervisors_register_tablets(client, world, role):
    header = bearer(api_token(client, world.users[role].username))
    response = client.post(
        "/api/v1/devices", json={"name": "Tablet", "username": "delivery1"}, headers=header
    )
    assert response.status_code == 403


def test_a_revoked_tablet_is_refused_at_once(client, device, sup, session):
    device_id, header = device
    assert client.delete(f"/api/v1/devices/{device_id}", headers=sup).status_code == 204
    assert client.get("/api/v1/devices/current", headers=header).status_code == 401
    assert client.post("/api/v1/sync", json={"payouts": []}, headers=header).status_code == 401
    assert client.delete(f"/api/v1/devices/{device_id}", headers=sup).status_code == 204
    listed = client.get("/api/v1/devices", headers=sup).get_json()["items"]
    assert [d["state"] for d in listed] == ["revoked"]
    assert count(session, AuditEvent, AuditEvent.action == "device.revoked") == 1


def test_another_points_supervisor_cannot_see_or_revoke_the_tablet(client, world, device):
    other = bearer(api_token(client, world.users_b["supervisor"].username))
    assert client.delete(f"/api/v1/devices/{device[0]}", headers=other).status_code == 404
    assert client.get("/api/v1/devices", headers=other).get_json()["items"] == []
    assert client.get("/api/v1/devices/current", headers=device[1]).status_code == 200


def test_a_tablet_signs_itself_out(client, device):
    assert client.delete("/api/v1/devices/current", headers=device[1]).status_code == 204
    assert client.get("/api/v1/devices/current", headers=device[1]).status_code == 401


# ---- routes -----------------------------------------------------------------------


def test_the_route_carries_salted_hashes_never_id_numbers(client, route):
    current = route["current"]
    assert route["created"]["reserved"] == 5  # Lan has September too
    assert route["created"]["people"] == 4
    salt = current["salt"]
    hoa = person_of(route, "TTH0000001")
    assert hoa["id_hash"] == hashlib.sha256((salt + "046153060816").encode()).hexdigest()
    lan = person_of(route, "TTH0000002")
    assert [e["period"] for e in lan["entitlements"]] == ["2021-09", "2021-10"]
    tam = person_of(route, "TTH0000005")
    assert (
        tam["proxies"][0]["id_hash"] == hashlib.sha256((salt + "046195000001").encode()).hexdigest()
    )
    text = str(current)
    for number in ("046153060816", "046160000002", "046195000001"):
        assert number not in text


def test_a_reserved_entitlement_is_refused_at_the_counter(client, world, route, session):
    set_float(session, "HTBD")
    entitlement = person_of(route, "TTH0000001")["entitlements"][0]["id"]
    response = counter_pay(client, "TTH0000001", "046153060816", [entitlement])
    assert response.status_code == 409
    body = response.get_json()
    assert body["error"] == "reserved_for_delivery"
    assert body["delivery_user"] == "delivery1"
    assert count(session, Payout) == 0


def test_a_route_is_all_or_nothing(client, people, sup, session):
    response = client.post(
        "/api/v1/routes",
        json={
            "username": "delivery1",
            "period": "2021-10",
            "beneficiary_codes": ["TTH0000001", "TTH0000003", "TTH0000004", "NOPE"],
        },
        headers=sup,
    )
    assert response.status_code == 422
    body = response.get_json()
    assert body["error"] == "route_people_invalid"
    assert {p["code"]: p["problem"] for p in body["problems"]} == {
        "TTH0000003": "paid_by_account",
        "TTH0000004": "not_found",  # another point's commune looks like no one
        "NOPE": "not_found",
    }
    assert count(session, Entitlement, Entitlement.reserved_route_id.is_not(None)) == 0


def test_a_person_is_on_one_route_at_a_time(client, world, route, sup, session):
    from tests.factories import make_user

    make_user(session, "delivery2", "delivery", point="HTBD")
    response = client.post(
        "/api/v1/routes",
        json={"username": "delivery2", "period": "2021-10", "beneficiary_codes": ["TTH0000001"]},
        headers=sup,
    )
    assert response.status_code == 422
    assert response.get_json()["problems"] == [
        {"code": "TTH0000001", "problem": "on_another_route"}
    ]


def test_more_people_join_the_same_route(client, route, sup, people):
    first = route["created"]["route_id"]
    client.delete(f"/api/v1/routes/{first}/people/TTH0000006", headers=sup)
    response = client.post(
        "/api/v1/routes",
        json={"username": "delivery1", "period": "2021-10", "beneficiary_codes": ["TTH0000006"]},
        headers=sup,
    )
    assert response.status_code == 201
    assert response.get_json()["route_id"] == first
    assert response.get_json()["reserved"] == 1


def test_releasing_a_person_frees_their_entitlements(client, route, sup, device, session):
    route_id = route["created"]["route_id"]
    response = client.delete(f"/api/v1/routes/{route_id}/people/TTH0000001", headers=sup)
    assert response.status_code == 204
    again = client.delete(f"/api/v1/routes/{route_id}/people/TTH0000001", headers=sup)
    assert again.status_code == 204
    missing = client.delete(f"/api/v1/routes/{route_id}/people/TTH0000003", headers=sup)
    assert missing.status_code == 404
    codes = [
        p["code"]
        for p in client.get("/api/v1/routes/current", headers=device[1]).get_json()["people"]
    ]
    assert "TTH0000001" not in codes
    entitlement = person_of(route, "TTH0000001")["entitlements"][0]["id"]
    session.rollback()
    assert session.get(Entitlement, entitlement).reserved_route_id is None


# ---- sync -------------------------------------------------------------------------


def test_three_synced_payouts_are_applied_exactly_once(client, app, route, device, session):
    items = [payout_item(route, code) for code in ("TTH0000001", "TTH0000002", "TTH0000006")]
    first = sync(client, device, items)["results"]
    assert [r["status"] for r in first] == ["applied"] * 3
    assert all(r["receipt_no"] and r["payout_id"] for r in first)
    assert first[1]["amount"] == 1_080_000
    again = sync(client, device, items)["results"]
    assert [r["status"] for r in again] == ["duplicate"] * 3
    assert [r["payout_id"] for r in again] == [r["payout_id"] for r in first]
    assert count(session, Payout) == 3
    assert count(session, PayoutLine) == 4
    payout = session.get(Payout, first[0]["payout_id"])
    assert payout.channel.value == "cash_home"
    assert payout.client_ref == items[0]["client_ref"]
    details = session.get(HomePayout, payout.id)
    assert details.signature_png.startswith(b"\x89PNG")
    assert (details.lat, details.lon) == (16.2587, 107.8512)
    assert details.verified_by.value == "id_number"
    # The payout's time is when the money was handed over, not when it synced.
    assert abs((payout.paid_at - datetime.fromisoformat(items[0]["paid_at"])).total_seconds()) < 1
    # The PDF receipt is made when the payout reaches the server.
    receipt = session.scalar(select(Receipt).where(Receipt.payout_id == payout.id))
    assert receipt.file_path and Path(receipt.file_path).exists()
    assert count(session, Visit, Visit.outcome == "paid") == 3


def test_a_proxy_collects_at_home(client, route, device, session):
    tam = person_of(route, "TTH0000005")
    item = payout_item(
        route,
        "TTH0000005",
        collector="proxy",
        proxy_id=tam["proxies"][0]["id"],
        verified_by="id_qr",
    )
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "applied"
    session.rollback()
    payout = session.get(Payout, result["payout_id"])
    assert payout.collector_type.value == "proxy"
    assert payout.proxy_id == tam["proxies"][0]["id"]
    assert session.get(Verification, payout.verification_id).method.value == "id_qr"


def test_paid_elsewhere_meanwhile_is_a_conflict_and_a_case(client, route, sup, device, session):
    set_float(session, "HTBD")
    route_id = route["created"]["route_id"]
    item = payout_item(route, "TTH0000001")
    # The supervisor releases Hòa and the counter pays her while the tablet is offline.
    client.delete(f"/api/v1/routes/{route_id}/people/TTH0000001", headers=sup)
    counter = counter_pay(client, "TTH0000001", "046153060816", item["entitlement_ids"])
    assert counter.status_code == 201
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "conflict"
    assert result["error"] == "possible_double_payment"
    session.rollback()
    case = session.get(Failure, result["failure_id"])
    assert case.reason.value == "possible_double_payment"
    assert case.status.value == "open"
    assert case.is_case
    assert count(session, Payout) == 1
    (again,) = sync(client, device, [item])["results"]
    assert again["status"] == "duplicate"
    assert again["failure_id"] == result["failure_id"]
    assert count(session, Failure, Failure.reason == "possible_double_payment") == 1


def test_a_partly_paid_item_pays_the_rest_and_opens_a_case(client, route, sup, device, session):
    set_float(session, "HTBD")
    route_id = route["created"]["route_id"]
    item = payout_item(route, "TTH0000002")  # September and October
    client.delete(f"/api/v1/routes/{route_id}/people/TTH0000002", headers=sup)
    september = item["entitlement_ids"][0]
    counter_pay(client, "TTH0000002", "046160000002", [september])
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "conflict"
    assert result["entitlement_ids"] == [september]
    assert result["payout_id"] and result["amount"] == 540_000
    lines = session.scalars(select(PayoutLine.entitlement_id)).all()
    assert sorted(lines) == sorted(item["entitlement_ids"])  # each paid once


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"signature_png": "bm90IGEgcG5n"}, "signature_invalid"),
        ({"paid_at": "2099-01-01T00:00:00+07:00"}, "paid_at_invalid"),
        ({"paid_at": "2026-12-02T09:00:00"}, "paid_at_invalid"),
        ({"verified_by": "otp"}, "verified_by_invalid"),
        ({"collector": "proxy", "proxy_id": 999}, "proxy_not_authorized"),
        ({"entitlement_ids": [999999]}, "entitlement_not_found"),
        ({"lat": "north", "lon": 1.0}, "position_invalid"),
        ({"lat": 1e300, "lon": 1.0}, "position_invalid"),
        ({"lat": 16.2, "lon": None}, "position_invalid"),
        ({"lat": 91, "lon": 1}, "position_invalid"),
        ({"surprise": 1}, "invalid_item"),
    ],
)
def test_a_bad_item_is_rejected_with_a_case_and_pays_nothing(
    client, route, device, session, change, error
):
    item = payout_item(route, "TTH0000001", **change)
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "rejected"
    assert result["error"] == error
    assert result["failure_id"]
    assert count(session, Payout) == 0
    (again,) = sync(client, device, [item])["results"]
    assert again["status"] == "duplicate" and again["first_status"] == "rejected"


def test_nan_is_not_json_and_refuses_the_request_writing_nothing(client, route, device, session):
    # A tablet's JSON.stringify never writes NaN; a body holding one is malformed.
    item = payout_item(route, "TTH0000001", lat=float("nan"), lon=1.0)
    response = client.post("/api/v1/sync", json={"payouts": [item]}, headers=device[1])
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert count(session, Payout) == 0 and count(session, Failure) == 0


def test_one_bad_item_does_not_hold_back_the_others(client, route, device, session):
    good = payout_item(route, "TTH0000001")
    results = sync(client, device, ["not an object", {"client_ref": "short"}, good])["results"]
    assert [r["status"] for r in results] == ["rejected", "rejected", "applied"]
    assert results[1]["error"] == "client_ref_invalid"
    assert count(session, Payout) == 1


def test_another_points_beneficiary_is_rejected(client, route, device, people, session):
    item = payout_item(route, "TTH0000001", beneficiary_code="TTH0000004")
    (result,) = sync(client, device, [item])["results"]
    assert result["error"] == "beneficiary_not_found"
    assert count(session, Payout) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"payouts": "x"},
        {"payouts": [{}] * 51},
        [],
    ],
)
def test_a_malformed_sync_is_a_400(client, device, body):
    response = client.post("/api/v1/sync", json=body, headers=device[1])
    assert response.status_code == 400


# ---- visits -----------------------------------------------------------------------


def visit(code, outcome, minutes=-10, **extra):
    return {
        "client_ref": ref(),
        "beneficiary_code": code,
        "outcome": outcome,
        "at": now_vn(minutes),
        **extra,
    }


def test_absent_twice_tells_the_person_to_collect_at_the_post_office(
    client, route, device, session
):
    first = sync(client, device, visits=[visit("TTH0000006", "absent", -60)])["visits"][0]
    assert first["status"] == "applied" and "case" not in first
    second = sync(client, device, visits=[visit("TTH0000006", "absent")])["visits"][0]
    assert second["case"] == "collect_at_post_office"
    session.rollback()
    case = session.get(Failure, second["failure_id"])
    assert case.reason.value == "recipient_absent"
    # Released from the route: the post office may pay them now.
    codes = [
        p["code"]
        for p in client.get("/api/v1/routes/current", headers=device[1]).get_json()["people"]
    ]
    assert "TTH0000006" not in codes
    assert count(session, Visit, Visit.outcome == "absent") == 2


def test_reported_dead_and_refused_open_cases(client, route, device, session):
    answers = sync(
        client,
        device,
        visits=[
            visit("TTH0000006", "deceased", note="Gia đình báo đã mất ngày 01/12"),
            visit("TTH0000002", "refused"),
            visit("TTH0000001", "paid"),
        ],
    )["visits"]
    assert [a["status"] for a in answers] == ["applied", "applied", "rejected"]
    session.rollback()
    reasons = {session.get(Failure, a["failure_id"]).reason.value for a in answers[:2]}
    assert reasons == {"recipient_deceased", "other"}


def test_a_payout_settles_the_absence_case(client, route, sup, device, session):
    sync(client, device, visits=[visit("TTH0000006", "absent", -60), visit("TTH0000006", "absent")])
    set_float(session, "HTBD")
    entitlement = person_of(route, "TTH0000006")["entitlements"][0]["id"]
    paid = counter_pay(client, "TTH0000006", "046160000006", [entitlement])
    assert paid.status_code == 201
    session.rollback()
    case = session.scalar(select(Failure).where(Failure.reason == "recipient_absent"))
    assert case.status.value == "resolved"


def test_entitlements_stay_paid_once(client, route, device, session):
    items = [payout_item(route, "TTH0000001"), payout_item(route, "TTH0000001")]
    results = sync(client, device, items)["results"]
    assert [r["status"] for r in results] == ["applied", "conflict"]
    session.rollback()
    paid = session.scalar(
        select(func.count())
        .select_from(Entitlement)
        .where(Entitlement.status == EntitlementStatus.PAID)
    )
    assert paid == 1


def test_a_payout_synced_after_the_day_closed_is_a_change_not_a_rewrite(
    client, route, sup, device, session
):
    set_float(session, "HTBD")
    item = payout_item(route, "TTH0000001", paid_at=now_vn(-30))  # paid before the closing
    closed = client.post("/api/v1/daybook/close", json={"returned": 100_000_000}, headers=sup)
    assert closed.status_code == 201, closed.get_json()
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "applied"
    book = client.get("/api/v1/daybook", headers=sup).get_json()
    assert book["closing"]["figures"]["payouts"] == 0  # the closed document keeps what it knew
    assert [c["payout_id"] for c in book["changes"]] == [result["payout_id"]]
    assert book["current"]["payouts"] == 1
