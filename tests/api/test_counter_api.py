"""Search, verification and payout through the JSON API, as API.md says."""

from __future__ import annotations

import uuid
from datetime import date

import pytest
from sqlalchemy import func, select

from terminal.models import AuditEvent, Entitlement, Failure, Payout, PayoutLine, Verification
from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary, set_float

QR = "046153060816|186153060|Lê Thị Hương|12101953|Nữ|Thôn 2, Thủy Dương, Hương Thủy|01012021"


@pytest.fixture
def people(world, session):
    commune = world.point_a.communes[0]
    other = world.point_b.communes[0]
    hoa = make_beneficiary(
        session, "TTH0000001", commune=commune, periods=(("2021-09", 0), ("2021-10", 1_080_000))
    )
    proxied = make_beneficiary(
        session,
        "TTH0000002",
        commune=commune,
        full_name="Nguyễn Thị Hoa",
        id_number="046160000001",
        born=date(1960, 5, 1),
        method="account",
        provider="viettel_pay",
        proxy={"full_name": "Trần Văn Tư", "id_number": "046080000002", "relationship": "Con"},
    )
    elsewhere = make_beneficiary(
        session, "TTH0000003", commune=other, full_name="Nguyễn Thị Hoà", id_number="046160000009"
    )
    set_float(session, "HTBD")
    return {"hoa": hoa, "proxied": proxied, "elsewhere": elsewhere}


@pytest.fixture
def clerk(client, world):
    return bearer(api_token(client, "clerk1"))


def verify(client, headers, **body):
    return client.post("/api/v1/verifications", json=body, headers=headers)


def pay(client, headers, key=None, **body):
    return client.post(
        "/api/v1/payouts",
        json=body,
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


@pytest.mark.parametrize(
    "q", ["nguyen thi hoa", "Nguyễn Thị Hoa", "NGUYỄN THỊ HOA", "hoa", "nguyen"]
)
def test_search_by_name_with_or_without_accents(client, clerk, people, q):
    body = client.get("/api/v1/beneficiaries", query_string={"q": q}, headers=clerk).get_json()
    codes = [item["code"] for item in body["items"]]
    assert "TTH0000002" in codes
    assert "TTH0000003" not in codes  # another point's commune


@pytest.mark.parametrize(
    "q", ["046160000001", "46160000001", "TTH0000002", "tth0000002", "046080000002"]
)
def test_search_by_id_code_or_proxy_id(client, clerk, people, q):
    body = client.get("/api/v1/beneficiaries", query_string={"q": q}, headers=clerk).get_json()
    assert [item["code"] for item in body["items"]] == ["TTH0000002"]


def test_search_items_are_masked_and_show_what_is_due(client, clerk, people):
    body = client.get(
        "/api/v1/beneficiaries", query_string={"q": "TTH0000001"}, headers=clerk
    ).get_json()
    item = body["items"][0]
    assert item["id_number_masked"] == "********0816"
    assert "046153060816" not in str(body)
    assert item["due_count"] == 2 and item["due_amount"] == 2_160_000
    expected = {
        "code",
        "full_name",
        "date_of_birth",
        "gender",
        "category",
        "id_number_masked",
        "commune",
        "village",
        "payment_method",
        "provider",
        "status",
    }
    assert expected <= set(item)


def test_search_pages_with_a_cursor(client, clerk, world, session):
    for n in range(5):
        make_beneficiary(
            session,
            f"TTH10000{n:02d}",
            commune=world.point_a.communes[0],
            full_name=f"Phạm Văn {['An', 'Bình', 'Cường', 'Dũng', 'Em'][n]}",
            id_number=None,
        )
    first = client.get(
        "/api/v1/beneficiaries", query_string={"q": "pham", "limit": 2}, headers=clerk
    ).get_json()
    second = client.get(
        "/api/v1/beneficiaries",
        query_string={"q": "pham", "limit": 2, "cursor": first["next_cursor"]},
        headers=clerk,
    ).get_json()
    names = [i["full_name"] for i in first["items"] + second["items"]]
    assert names == ["Phạm Văn An", "Phạm Văn Bình", "Phạm Văn Cường", "Phạm Văn Dũng"]


def test_detail_has_proxies_and_entitlements(client, clerk, people):
    body = client.get("/api/v1/beneficiaries/TTH0000002", headers=clerk).get_json()
    assert body["proxies"][0]["full_name"] == "Trần Văn Tư"
    assert body["proxies"][0]["id_number_masked"] == "********0002"
    assert body["proxies"][0]["status"] == "active"
    assert body["entitlements"][0] == {
        **body["entitlements"][0],
        "period": "2021-10",
        "amount": 540000,
        "status": "due",
    }


def test_other_points_beneficiary_looks_missing(client, clerk, people):
    response = client.get("/api/v1/beneficiaries/TTH0000003", headers=clerk)
    assert response.status_code == 404
    missing = client.get("/api/v1/beneficiaries/NOPE", headers=clerk)
    assert (
        missing.get_json() == {**missing.get_json(), "error": "not_found"}
        or missing.status_code == 404
    )


def test_full_flow_by_typed_id(client, clerk, people, session):
    verified = verify(
        client,
        clerk,
        beneficiary_code="TTH0000001",
        collector="beneficiary",
        id_number="046153060816",
    )
    assert verified.status_code == 201, verified.get_json()
    v = verified.get_json()
    assert v["verified"] is True and v["method"] == "id_number"
    assert v["collector"] == {"type": "beneficiary", "full_name": "Lê Thị Hương"}
    detail = client.get("/api/v1/beneficiaries/TTH0000001", headers=clerk).get_json()
    ids = [e["id"] for e in detail["entitlements"] if e["status"] == "due"]
    paid = pay(
        client, clerk, verification_id=v["verification_id"], entitlement_ids=ids, channel="cash"
    )
    assert paid.status_code == 201, paid.get_json()
    body = paid.get_json()
    assert body["amount"] == 2_160_000
    assert body["receipt_no"] == f"HTBD-{date.today().year}-000001"
    assert sorted(body["entitlement_ids"]) == sorted(ids)
    assert body["receipt_pdf"] == f"/api/v1/receipts/{body['receipt_no']}.pdf"
    assert body["receipt_verify_url"].startswith("http://127.0.0.1:5000/r/")
    session.expire_all()
    assert (
        session.scalar(select(func.count(Entitlement.id)).where(Entitlement.status == "paid")) == 2
    )
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert "payout.recorded" in actions and "verification.succeeded" in actions


def test_proxy_by_qr_and_collector_in_payout(client, clerk, people):
    qr = "046080000002||Tran Van Tu|01011980|Nam|Thủy Dương|01012021\r\n"
    verified = verify(
        client,
        clerk,
        beneficiary_code="TTH0000002",
        collector="proxy",
        proxy_id=people["proxied"].proxies[0].id,
        id_qr=qr,
    )
    assert verified.status_code == 201, verified.get_json()
    assert verified.get_json()["method"] == "id_qr"
    detail = client.get("/api/v1/beneficiaries/TTH0000002", headers=clerk).get_json()
    paid = pay(
        client,
        clerk,
        verification_id=verified.get_json()["verification_id"],
        entitlement_ids=[detail["entitlements"][0]["id"]],
        channel="account",
        provider_ref="VTP-123456",
    )
    assert paid.status_code == 201
    assert paid.get_json()["collector"] == {"type": "proxy", "full_name": "Trần Văn Tư"}
    assert paid.get_json()["channel"] == "account"


def test_beneficiary_by_qr_with_birth_date_check(client, clerk, people):
    ok = verify(client, clerk, beneficiary_code="TTH0000001", collector="beneficiary", id_qr=QR)
    assert ok.status_code == 201
    wrong_birth = QR.replace("12101953", "12101954")
    refused = verify(
        client, clerk, beneficiary_code="TTH0000001", collector="beneficiary", id_qr=wrong_birth
    )
    assert refused.status_code == 422 and refused.get_json()["reason"] == "id_mismatch"


@pytest.mark.parametrize(
    "body, reason",
    [
        ({"collector": "beneficiary", "id_number": "046153060817"}, "id_mismatch"),
        ({"collector": "beneficiary", "id_qr": "not a card"}, "qr_invalid"),
        ({"collector": "beneficiary", "id_qr": "046153060816|x"}, "qr_invalid"),
        (
            {"collector": "proxy", "proxy_id": 999999, "id_number": "046080000002"},
            "proxy_not_authorized",
        ),
    ],
)
def test_refusals_are_422_and_recorded(client, clerk, people, session, body, reason):
    response = verify(client, clerk, beneficiary_code="TTH0000001", **body)
    assert response.status_code == 422
    payload = response.get_json()
    assert payload["error"] == "verification_failed" and payload["reason"] == reason
    failure = session.get(Failure, payload["failure_id"])
    assert failure.reason.value == reason and failure.status.value == "open"
    assert session.scalar(select(func.count(Verification.id))) == 0


def test_expired_proxy_and_inactive_beneficiary(client, clerk, world, session):
    commune = world.point_a.communes[0]
    old = make_beneficiary(
        session,
        "TTH0000010",
        commune=commune,
        id_number="046160000010",
        proxy={"valid_until": date(2020, 12, 31), "id_number": "046080000011"},
    )
    make_beneficiary(
        session, "TTH0000011", commune=commune, id_number="046160000012", status="deceased"
    )
    expired = verify(
        client,
        clerk,
        beneficiary_code="TTH0000010",
        collector="proxy",
        proxy_id=old.proxies[0].id,
        id_number="046080000011",
    )
    assert expired.get_json()["reason"] == "proxy_expired"
    dead = verify(
        client,
        clerk,
        beneficiary_code="TTH0000011",
        collector="beneficiary",
        id_number="046160000012",
    )
    assert dead.get_json()["reason"] == "beneficiary_inactive"


def test_a_child_only_through_a_guardian(client, clerk, world, session):
    commune = world.point_a.communes[0]
    child = make_beneficiary(
        session,
        "TTH0000020",
        commune=commune,
        category="orphan",
        born=date(2015, 7, 23),
        id_number=None,
        proxy={"id_number": "046080000021", "relationship": "Cô"},
    )
    alone = verify(
        client,
        clerk,
        beneficiary_code="TTH0000020",
        collector="beneficiary",
        id_number="046080000021",
    )
    assert alone.get_json()["reason"] == "proxy_not_authorized"
    aunt = verify(
        client,
        clerk,
        beneficiary_code="TTH0000020",
        collector="proxy",
        proxy_id=child.proxies[0].id,
        id_number="046080000021",
    )
    assert aunt.get_json()["reason"] == "proxy_not_authorized"


def test_auditors_and_admins_cannot_pay(client, world, people):
    for role in ("auditor1", "admin1"):
        headers = bearer(api_token(client, role))
        assert (
            verify(
                client,
                headers,
                beneficiary_code="TTH0000001",
                collector="beneficiary",
                id_number="046153060816",
            ).status_code
            == 403
        )
        assert (
            pay(client, headers, verification_id=1, entitlement_ids=[1], channel="cash").status_code
            == 403
        )


def _verified(client, headers, code="TTH0000001", number="046153060816"):
    response = verify(
        client, headers, beneficiary_code=code, collector="beneficiary", id_number=number
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()["verification_id"]


def _due_ids(client, headers, code="TTH0000001"):
    detail = client.get(f"/api/v1/beneficiaries/{code}", headers=headers).get_json()
    return [e["id"] for e in detail["entitlements"] if e["status"] == "due"]


def test_same_key_same_body_replays_the_first_response(client, clerk, people, session):
    v = _verified(client, clerk)
    ids = _due_ids(client, clerk)
    first = pay(client, clerk, "key-1", verification_id=v, entitlement_ids=ids, channel="cash")
    again = pay(
        client,
        clerk,
        "key-1",
        verification_id=v,
        entitlement_ids=list(reversed(ids)),
        channel="cash",
    )
    assert first.status_code == again.status_code == 201
    assert first.get_json() == again.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert session.scalar(select(func.count(Payout.id))) == 1


def test_new_key_for_a_paid_entitlement_is_409_already_paid(client, clerk, people):
    v = _verified(client, clerk)
    ids = _due_ids(client, clerk)
    first = pay(client, clerk, verification_id=v, entitlement_ids=ids, channel="cash").get_json()
    second = pay(client, clerk, verification_id=v, entitlement_ids=ids[:1], channel="cash")
    assert second.status_code == 409
    body = second.get_json()
    assert body["error"] == "already_paid" and body["entitlement_id"] == ids[0]
    assert body["receipt_no"] == first["receipt_no"]


def test_same_key_other_body_is_422(client, clerk, people):
    v = _verified(client, clerk)
    ids = _due_ids(client, clerk)
    pay(client, clerk, "key-2", verification_id=v, entitlement_ids=ids, channel="cash")
    other = pay(client, clerk, "key-2", verification_id=v, entitlement_ids=ids[:1], channel="cash")
    assert other.status_code == 422 and other.get_json()["error"] == "idempotency_key_reused"


@pytest.mark.parametrize("key", [None, "", "a" * 256, "bad key with spaces", "ключ"])
def test_missing_or_malformed_key_is_400(client, clerk, people, key):
    headers = dict(clerk)
    if key is not None:
        headers["Idempotency-Key"] = key
    response = client.post(
        "/api/v1/payouts",
        json={"verification_id": 1, "entitlement_ids": [1], "channel": "cash"},
        headers=headers,
    )
    assert response.status_code == 400


def test_keys_are_scoped_per_user(client, clerk, people, world, session):
    other = bearer(api_token(client, "supervisor1"))
    v1 = _verified(client, clerk)
    ids = _due_ids(client, clerk)
    pay(client, clerk, "shared-key", verification_id=v1, entitlement_ids=ids[:1], channel="cash")
    v2 = _verified(client, other)
    response = pay(
        client, other, "shared-key", verification_id=v2, entitlement_ids=ids[1:], channel="cash"
    )
    assert response.status_code == 201
    assert response.get_json()["entitlement_ids"] == ids[1:]


def test_someone_elses_or_expired_verification(client, clerk, people, session):
    from terminal.models import utcnow

    other = bearer(api_token(client, "supervisor1"))
    v = _verified(client, other)
    ids = _due_ids(client, clerk)
    assert (
        pay(client, clerk, verification_id=v, entitlement_ids=ids, channel="cash").status_code
        == 404
    )
    mine = _verified(client, clerk)
    row = session.get(Verification, mine)
    row.expires_at = utcnow()
    session.commit()
    expired = pay(client, clerk, verification_id=mine, entitlement_ids=ids, channel="cash")
    assert expired.status_code == 422 and expired.get_json()["error"] == "verification_expired"
    assert session.scalar(select(func.count(Payout.id))) == 0


def test_account_needs_provider_ref_and_entitlements_must_be_theirs(client, clerk, people):
    v = _verified(client, clerk)
    ids = _due_ids(client, clerk)
    assert (
        pay(client, clerk, verification_id=v, entitlement_ids=ids, channel="account").status_code
        == 400
    )
    others = _due_ids(client, clerk, "TTH0000002")
    foreign = pay(client, clerk, verification_id=v, entitlement_ids=others, channel="cash")
    assert foreign.status_code == 404


def test_insufficient_cash_is_refused_and_recorded(client, clerk, world, session):
    commune = world.point_a.communes[0]
    make_beneficiary(session, "TTH0000030", commune=commune, id_number="046160000030")
    set_float(session, "HTBD", 100_000)
    v = _verified(client, clerk, "TTH0000030", "046160000030")
    response = pay(
        client,
        clerk,
        verification_id=v,
        entitlement_ids=_due_ids(client, clerk, "TTH0000030"),
        channel="cash",
    )
    assert response.status_code == 422 and response.get_json()["error"] == "insufficient_cash"
    failure = session.scalars(select(Failure).where(Failure.reason == "insufficient_cash")).one()
    assert failure.status.value == "open"
    assert session.scalar(select(func.count(Payout.id))) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"verification_id": "1", "entitlement_ids": [1], "channel": "cash"},
        {"verification_id": 1, "entitlement_ids": "1", "channel": "cash"},
        {"verification_id": 1, "entitlement_ids": [], "channel": "cash"},
        {"verification_id": 1, "entitlement_ids": [1.5], "channel": "cash"},
        {"verification_id": 1, "entitlement_ids": [1], "channel": "gold"},
        {"verification_id": 10**30, "entitlement_ids": [1], "channel": "cash"},
        {"verification_id": -1, "entitlement_ids": [1], "channel": "cash"},
        {
            "verification_id": 1,
            "entitlement_ids": [1],
            "channel": "cash",
            "provider_ref": "x" * 10000,
        },
        {"verification_id": True, "entitlement_ids": [1], "channel": "cash"},
    ],
)
def test_malformed_payout_bodies_are_400_and_write_nothing(client, clerk, people, session, body):
    response = client.post(
        "/api/v1/payouts", json=body, headers={**clerk, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert response.status_code == 400, response.get_json()
    assert session.scalar(select(func.count(PayoutLine.id))) == 0


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"beneficiary_code": "TTH0000001"},
        {"beneficiary_code": "TTH0000001", "collector": "neighbour", "id_number": "1"},
        {"beneficiary_code": 5, "collector": "beneficiary", "id_number": "1"},
        {"beneficiary_code": "x" * 10000, "collector": "beneficiary", "id_number": "1"},
        {"beneficiary_code": "TTH0000001", "collector": "beneficiary", "id_qr": "x" * 10000},
    ],
)
def test_malformed_verification_bodies_are_400(client, clerk, people, body):
    assert verify(client, clerk, **body).status_code == 400


def test_unknown_beneficiary_is_404(client, clerk, people):
    response = verify(
        client, clerk, beneficiary_code="NOPE000", collector="beneficiary", id_number="046153060816"
    )
    assert response.status_code == 404


def test_payout_log_and_csv(client, clerk, people, world):
    v = _verified(client, clerk)
    paid = pay(
        client, clerk, verification_id=v, entitlement_ids=_due_ids(client, clerk), channel="cash"
    ).get_json()
    log = client.get("/api/v1/payouts", headers=clerk).get_json()
    assert [item["receipt_no"] for item in log["items"]] == [paid["receipt_no"]]
    other_point = bearer(api_token(client, "clerkb"))
    assert client.get("/api/v1/payouts", headers=other_point).get_json()["items"] == []
    auditor = bearer(api_token(client, "auditor1"))
    assert len(client.get("/api/v1/payouts", headers=auditor).get_json()["items"]) == 1
    # Exports are for auditors only (DESIGN rule 8).
    refused = client.get("/api/v1/payouts", headers={**clerk, "Accept": "text/csv"})
    assert refused.status_code == 403 and refused.get_json()["error"] == "export_forbidden"
    # Close the streamed response, as a server does: that ends its database cursor.
    with client.get("/api/v1/payouts", headers={**auditor, "Accept": "text/csv"}) as streamed:
        csv_text = streamed.get_data(as_text=True)
    assert paid["receipt_no"] in csv_text and "Lê Thị Hương" in csv_text
