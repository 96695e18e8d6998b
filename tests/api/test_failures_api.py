"""The failure API of API.md ("Failures", "More for auditors"): report, list, work.

Staff report and read their point's failures, the point's supervisor works them,
auditors read every point's and change nothing; attempts become cases by the rule
of services.failures; a payout settles its person's open cases.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import AuditEvent, Entitlement, Failure, FailureNote, FailureReason, utcnow
from terminal.services import failures, verifications
from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary, set_float

REASONS = [reason.value for reason in FailureReason if reason.value != "beneficiary_inactive"]
REASONS.remove("qr_invalid")  # not one of API.md's reasons (the counter records it itself)
REASONS.remove("possible_double_payment")  # opened by a tablet's sync, never reported


@pytest.fixture
def people(world, session):
    here = make_beneficiary(session, "TTH0000001", commune=world.point_a.communes[0])
    there = make_beneficiary(
        session, "TTH0000003", commune=world.point_b.communes[0], id_number="046160000009"
    )
    set_float(session, "HTBD")
    return {"here": here, "there": there}


@pytest.fixture
def tokens(client, world):
    names = {
        "clerk": "clerk1",
        "supervisor": "supervisor1",
        "auditor": "auditor1",
        "admin": "admin1",
        "clerk_b": "clerkb",
        "supervisor_b": "supervisorb",
    }
    return {role: bearer(api_token(client, name)) for role, name in names.items()}


def entitlement_of(session, person):
    return session.scalar(select(Entitlement.id).where(Entitlement.beneficiary_id == person.id))


def report(client, headers, **body):
    return client.post("/api/v1/failures", json=body, headers=headers)


@pytest.mark.parametrize("reason", REASONS)
def test_every_reason_of_the_contract_can_be_reported_and_listed(client, tokens, people, reason):
    created = report(
        client, tokens["clerk"], beneficiary_code="TTH0000001", reason=reason, detail="ghi chú"
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["status"] == "open" and body["case"] is True  # reported by a person
    listed = client.get(f"/api/v1/failures?reason={reason}", headers=tokens["auditor"]).get_json()
    assert [item["id"] for item in listed["items"]] == [body["id"]]
    item = listed["items"][0]
    assert item["beneficiary_code"] == "TTH0000001"
    assert item["beneficiary_name"] != "Lê Thị Hương"  # masked in lists
    assert item["point"] == "HTBD" and item["commune"] == "Thủy Dương"
    assert item["age_days"] == 0 and item["overdue"] is False and item["owner"] is None
    assert (
        item["due_by"]
        == (today_local() + timedelta(failures.deadline_days(FailureReason(reason)))).isoformat()
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"beneficiary_code": "TTH0000001"},
        {"beneficiary_code": "TTH0000001", "reason": "nope"},
        {"beneficiary_code": "TTH0000001", "reason": "other", "entitlement_id": 0},
        {"beneficiary_code": "TTH0000001", "reason": "other", "entitlement_id": 2**64},
        {"beneficiary_code": "TTH0000001", "reason": "other", "channel": "gold"},
        {"beneficiary_code": "TTH0000001", "reason": "other", "detail": "x" * 1001},
        {"beneficiary_code": "TTH0000001", "reason": "other", "detail": 5},
        {"beneficiary_code": "", "reason": "other"},
    ],
)
def test_bad_reports_are_400_and_write_nothing(client, tokens, people, session, body):
    response = report(client, tokens["clerk"], **body)
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]
    assert session.scalar(select(Failure.id)) is None


def test_reports_stay_within_the_point(client, tokens, people, session):
    elsewhere = report(client, tokens["clerk"], beneficiary_code="TTH0000003", reason="other")
    assert elsewhere.status_code == 404
    unknown = report(client, tokens["clerk"], beneficiary_code="TTH9999999", reason="other")
    assert unknown.status_code == 404
    foreign_entitlement = report(
        client,
        tokens["clerk"],
        beneficiary_code="TTH0000001",
        reason="other",
        entitlement_id=entitlement_of(session, people["there"]),
    )
    assert foreign_entitlement.status_code == 404
    assert foreign_entitlement.get_json()["error"] == "entitlement_not_found"
    for role in ("auditor", "admin"):
        assert (
            report(client, tokens[role], beneficiary_code="TTH0000001", reason="other").status_code
            == 403
        )
    assert session.scalar(select(Failure.id)) is None


def test_each_role_lists_what_it_may_see(client, tokens, people):
    mine = report(client, tokens["clerk"], beneficiary_code="TTH0000001", reason="other")
    theirs = report(client, tokens["clerk_b"], beneficiary_code="TTH0000003", reason="other")
    ids = mine.get_json()["id"], theirs.get_json()["id"]

    def listed(role, query=""):
        response = client.get(f"/api/v1/failures{query}", headers=tokens[role])
        return response.status_code, [item["id"] for item in response.get_json().get("items", [])]

    assert listed("clerk") == (200, [ids[0]])
    assert listed("supervisor_b") == (200, [ids[1]])
    assert listed("auditor") == (200, [ids[1], ids[0]])
    assert listed("auditor", "?point=plvt") == (200, [ids[1]])
    assert listed("auditor", "?commune=thuy duong") == (200, [ids[0]])
    assert listed("admin")[0] == 403


def test_the_cursor_pages_through_everything_once(client, tokens, people):
    made = [
        report(client, tokens["clerk"], beneficiary_code="TTH0000001", reason="other").get_json()[
            "id"
        ]
        for _ in range(7)
    ]
    seen, cursor = [], None
    while True:
        query = "?limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(f"/api/v1/failures{query}", headers=tokens["auditor"]).get_json()
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made, reverse=True)


@pytest.mark.parametrize(
    "query",
    [
        "?cursor=abc",
        "?cursor=99999999999999999999999",
        "?limit=0",
        "?limit=501",
        "?status=x",
        "?overdue=maybe",
    ],
)
def test_bad_list_queries_are_400(client, tokens, people, query):
    response = client.get(f"/api/v1/failures{query}", headers=tokens["auditor"])
    assert response.status_code == 400, response.get_json()


def test_the_supervisor_works_a_case_and_the_audit_trail_says_so(client, tokens, people, session):
    case_id = report(
        client, tokens["clerk"], beneficiary_code="TTH0000001", reason="recipient_absent"
    ).get_json()["id"]
    url = f"/api/v1/failures/{case_id}"
    # Staff and auditors read but do not work.
    for role in ("clerk", "auditor"):
        assert (
            client.patch(url, json={"status": "in_progress"}, headers=tokens[role]).status_code
            == 403
        )
    # Another point's supervisor does not see it.
    assert (
        client.patch(
            url, json={"status": "in_progress"}, headers=tokens["supervisor_b"]
        ).status_code
        == 404
    )
    worked = client.patch(
        url,
        json={
            "status": "in_progress",
            "note": "Gọi điện: vắng nhà, hẹn thứ Hai",
            "assignee": "clerk1",
        },
        headers=tokens["supervisor"],
    )
    assert worked.status_code == 200, worked.get_json()
    body = worked.get_json()
    assert (body["status"], body["owner"], body["notes"]) == ("in_progress", "clerk1", 1)
    assert body["thread"][0]["author"] == "supervisor1"
    again = client.patch(url, json={"note": "Đã hẹn lại"}, headers=tokens["supervisor"]).get_json()
    assert [n["text"] for n in again["thread"]] == ["Gọi điện: vắng nhà, hẹn thứ Hai", "Đã hẹn lại"]
    cleared = client.patch(
        url, json={"assignee": None, "status": "cancelled"}, headers=tokens["supervisor"]
    ).get_json()
    assert (cleared["owner"], cleared["status"]) == (None, "cancelled")
    # An owner from another point, a bad status or an empty note changes nothing.
    for body, code in (
        ({"assignee": "clerkb"}, 422),
        ({"assignee": "nobody"}, 422),
        ({"status": "done"}, 400),
        ({"note": "   "}, 400),
        ({"note": "x" * 2001}, 400),
        ({"status": 3}, 400),
    ):
        response = client.patch(url, json=body, headers=tokens["supervisor"])
        assert response.status_code == code, (body, response.get_json())
    assert (
        client.patch(
            "/api/v1/failures/999999", json={"status": "open"}, headers=tokens["supervisor"]
        ).status_code
        == 404
    )
    session.expire_all()
    assert len(session.scalars(select(FailureNote)).all()) == 2
    updates = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "failure.updated")
    ).all()
    assert len(updates) == 3


def test_overdue_cases_age_and_are_listed(client, tokens, people, session):
    case_id = report(
        client, tokens["clerk"], beneficiary_code="TTH0000001", reason="other"
    ).get_json()["id"]
    with write_transaction(session):
        session.execute(
            update(Failure)
            .where(Failure.id == case_id)
            .values(
                due_by=today_local() - timedelta(days=1),
                created_at=utcnow() - timedelta(days=6),
            )
        )
    overdue = client.get("/api/v1/failures?overdue=true", headers=tokens["auditor"]).get_json()[
        "items"
    ]
    assert [(i["id"], i["overdue"], i["age_days"]) for i in overdue] == [(case_id, True, 6)]
    client.patch(
        f"/api/v1/failures/{case_id}", json={"status": "resolved"}, headers=tokens["supervisor"]
    )
    assert (
        client.get("/api/v1/failures?overdue=true", headers=tokens["auditor"]).get_json()["items"]
        == []
    )


def test_wrong_cards_are_attempts_until_the_third_of_the_day(client, tokens, people, session):
    user = tokens["clerk"]
    for _ in range(4):
        response = client.post(
            "/api/v1/verifications",
            json={
                "beneficiary_code": "TTH0000001",
                "collector": "beneficiary",
                "id_number": "046999999999",
            },
            headers=user,
        )
        assert response.status_code == 422
    session.expire_all()
    rows = session.scalars(select(Failure).order_by(Failure.id)).all()
    assert [(f.reason, f.is_case) for f in rows] == [
        ("id_mismatch", False),
        ("id_mismatch", False),
        ("id_mismatch", True),
        ("id_mismatch", False),
    ]
    cases = client.get("/api/v1/failures?case=true", headers=tokens["auditor"]).get_json()["items"]
    assert [item["id"] for item in cases] == [rows[2].id]
    attempts = client.get("/api/v1/failures?case=false", headers=tokens["auditor"]).get_json()[
        "items"
    ]
    assert len(attempts) == 3
    # A supervisor working an attempt makes it a case.
    worked = client.patch(
        f"/api/v1/failures/{rows[0].id}", json={"note": "Sai thẻ"}, headers=tokens["supervisor"]
    )
    assert worked.get_json()["case"] is True


def test_a_payout_resolves_its_open_cases(client, tokens, people, session):
    person = people["here"]
    entitlement = entitlement_of(session, person)
    case_id = report(
        client,
        tokens["clerk"],
        beneficiary_code="TTH0000001",
        reason="otp_not_received",
        entitlement_id=entitlement,
    ).get_json()["id"]
    verified = client.post(
        "/api/v1/verifications",
        json={"beneficiary_code": "TTH0000001", "id_number": person.id_number},
        headers=tokens["clerk"],
    ).get_json()
    paid = client.post(
        "/api/v1/payouts",
        json={
            "verification_id": verified["verification_id"],
            "entitlement_ids": [entitlement],
            "channel": "cash",
        },
        headers={**tokens["clerk"], "Idempotency-Key": str(uuid.uuid4())},
    ).get_json()
    case = client.get("/api/v1/failures?status=resolved", headers=tokens["clerk"]).get_json()
    assert [(c["id"], c["resolved_payout_id"]) for c in case["items"]] == [
        (case_id, paid["payout_id"])
    ]


def test_the_spec_names_the_failure_endpoints(client):
    paths = client.get("/api/v1/openapi.json").get_json()["paths"]
    assert {"post", "get"} <= set(paths["/api/v1/failures"])
    assert {"patch"} <= set(paths["/api/v1/failures/{failure_id}"])


def test_verification_refusals_are_not_lost(session, world, people):
    with pytest.raises(verifications.VerificationFailed):
        verifications.verify_collector(
            session, world.users["clerk"], beneficiary_code="TTH0000001", id_number="046000000000"
        )
    session.rollback()
    assert session.scalar(select(Failure.reason)) == "id_mismatch"
