"""The hash-chained audit trail: appends, verification and tampering of every kind."""

from __future__ import annotations

import json
import random
import re
import uuid
from datetime import date, datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update

from terminal.db import write_transaction
from terminal.models import AuditAction, AuditEvent, AuditHead, Payout
from terminal.services import auth as auth_service
from terminal.services.audit import (
    EventData,
    event_hash,
    record_event,
    record_events,
    verify_chain,
)
from terminal.services.roster import close_period, import_roster
from terminal.services.roster_file import write_roster_csv
from terminal.synthetic import generate, synthetic_people
from terminal.text import cccd_birth_digits
from tests.audit_tamper import guards_off
from tests.conftest import api_token, bearer, csrf_from, login

# Events written by record_event and record_events as they were before actions became an
# enum (commit 99772b3): the chains already in databases look like this.
CHAIN_V1 = Path(__file__).resolve().parents[1] / "data" / "audit_chain_v1.json"


def _fill(session, n):
    for i in range(n):
        with write_transaction(session):
            record_event(
                session,
                actor="tester",
                action=AuditAction.RECEIPT_REPRINTED,
                object_type="thing",
                object_id=i,
                data={"i": i, "name": "Nguyễn Thị Hoa", "amount_vnd": 540000 * i},
            )


def test_clean_chain_verifies(session):
    _fill(session, 30)
    report = verify_chain(session)
    assert report.ok and report.events == 30 and report.first_bad_seq is None


def test_empty_chain_verifies(session):
    assert verify_chain(session).ok


def test_record_event_refuses_a_deferred_sqlite_transaction(session):
    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with pytest.raises(RuntimeError):
        record_event(
            session, actor="x", action=AuditAction.AUTH_LOGIN, object_type="z", object_id=1
        )
    session.rollback()


def _tamper(session, kind, position, total):
    seq = position + 1
    sql = {
        "edit": f"UPDATE audit_events SET actor = 'intruder' WHERE seq = {seq}",
        "delete": f"DELETE FROM audit_events WHERE seq = {seq}",
        "truncate": f"DELETE FROM audit_events WHERE seq >= {seq}",
    }
    with write_transaction(session), guards_off(session.connection()):
        if kind in sql:
            session.execute(text(sql[kind]))
        elif kind == "insert":
            # Shift the tail up by one and slip a forged event into the gap.
            for later in range(total, seq - 1, -1):
                session.execute(
                    text(f"UPDATE audit_events SET seq = {later + 1} WHERE seq = {later}")
                )
            session.execute(
                text(
                    "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, "
                    "data, prev_hash, hash) SELECT :seq, at, 'intruder', action, object_type, "
                    "'x', '{}', prev_hash, hash FROM audit_events WHERE seq = :next"
                ),
                {"seq": seq, "next": seq + 1},
            )
        elif kind == "reorder":
            a, b = seq, seq % total + 1 if seq < total else seq - 1
            ra, rb = session.get(AuditEvent, a), session.get(AuditEvent, b)
            fields = (
                "at",
                "actor",
                "action",
                "object_type",
                "object_id",
                "data",
                "prev_hash",
                "hash",
            )
            va = {f: getattr(ra, f) for f in fields}
            vb = {f: getattr(rb, f) for f in fields}
            for f in fields:
                setattr(ra, f, vb[f])
                setattr(rb, f, va[f])
            session.flush()


@pytest.mark.parametrize("kind", ["edit", "delete", "insert", "reorder", "truncate"])
def test_tampering_is_detected(session, kind):
    total = 12
    _fill(session, total)
    position = random.Random(kind).randrange(0, total - 1)
    _tamper(session, kind, position, total)
    session.expire_all()
    report = verify_chain(session)
    assert not report.ok
    assert report.first_bad_seq is not None and report.first_bad_seq <= position + 2


# ---- one append, actions as an enum ----------------------------------------------------------


def _load_chain_v1(session):
    """Put the pre-enum chain into the database as it would be there, head included."""
    rows = json.loads(CHAIN_V1.read_text(encoding="utf-8"))
    for row in rows:
        row["at"] = datetime.fromisoformat(row["at"])
    with write_transaction(session):
        session.execute(insert(AuditEvent), rows)
        session.execute(
            update(AuditHead)
            .where(AuditHead.id == 1)
            .values(last_seq=rows[-1]["seq"], last_hash=rows[-1]["hash"])
        )
    return rows


def test_a_chain_written_before_the_enum_still_verifies_and_grows(session):
    rows = _load_chain_v1(session)
    assert verify_chain(session).ok
    for row in rows:
        # The member hashes exactly as the text it stands for.
        fields = {k: row[k] for k in ("prev_hash", "seq", "at", "actor", "object_type", "data")}
        action = AuditAction(row["action"])
        assert event_hash(**fields, action=action, object_id=row["object_id"]) == row["hash"]
    with write_transaction(session):
        record_event(
            session,
            actor="clerk",
            action=AuditAction.PAYOUT_RECORDED,
            object_type="payout",
            object_id=4,
            data={"receipt_no": "HTBD-2021-000002", "amount_vnd": 540_000},
        )
        record_events(
            session,
            actor="admin",
            events=[
                EventData(AuditAction.BENEFICIARY_UPDATED, "beneficiary", 1, {"fields": ["phone"]}),
                EventData(AuditAction.PERIOD_CLOSED, "period", 1, {"period": "2021-11"}),
            ],
        )
    report = verify_chain(session)
    assert report.ok and report.events == len(rows) + 3
    first_new = session.get(AuditEvent, len(rows) + 1)
    assert first_new.prev_hash == rows[-1]["hash"]


def test_the_stored_action_is_the_plain_text(session):
    with write_transaction(session):
        seq = record_event(
            session,
            actor="supervisor",
            action=AuditAction.CASH_FLOAT_SET,
            object_type="cash_float",
            object_id=1,
            data={"advance_vnd": [None, 500_000_000]},
        )
    session.expire_all()
    event = session.get(AuditEvent, seq)
    assert type(event.action) is str and event.action == "cash_float.set"
    # Recomputed from plain strings only, as any outside checker of the chain would.
    assert event.hash == event_hash(
        prev_hash=event.prev_hash,
        seq=event.seq,
        at=event.at,
        actor=str(event.actor),
        action="cash_float.set",
        object_type=str(event.object_type),
        object_id=str(event.object_id),
        data=str(event.data),
    )
    raw = session.execute(text("SELECT action FROM audit_events WHERE seq = :s"), {"s": seq})
    assert raw.scalar_one() == "cash_float.set"


def test_one_event_and_many_go_through_the_same_append(session):
    with write_transaction(session):
        first = record_event(
            session, actor="a", action=AuditAction.AUTH_LOGIN, object_type="user", object_id=1
        )
        appended = record_events(
            session,
            actor="b",
            events=[
                EventData(AuditAction.USER_UPDATED, "user", 1, {"active": [True, False]}),
                EventData(AuditAction.AUTH_LOGOUT, "user", 1, {}),
            ],
        )
        assert record_events(session, actor="b", events=[]) == 0
        last = record_event(
            session, actor="c", action=AuditAction.AUTH_LOGIN, object_type="user", object_id=2
        )
    assert (first, appended, last) == (1, 2, 4)
    events = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [e.action for e in events] == [
        "auth.login",
        "user.updated",
        "auth.logout",
        "auth.login",
    ]
    assert [e.actor for e in events] == ["a", "b", "b", "c"]
    assert verify_chain(session).ok


@pytest.mark.parametrize("action", ["payout.paid", "PAYOUT.RECORDED", ""])
def test_an_action_outside_the_enum_is_refused_before_anything_is_written(session, action):
    with pytest.raises(ValueError), write_transaction(session):
        record_events(
            session,
            actor="x",
            events=[
                EventData(AuditAction.AUTH_LOGIN, "user", 1, {}),
                EventData(action, "user", 1, {}),  # type: ignore[arg-type]
            ],
        )
    session.rollback()
    assert session.scalar(select(AuditHead.last_seq)) == 0
    assert session.scalars(select(AuditEvent)).all() == []


def _roster_people(world):
    """Return three active people of point A's first commune, as roster rows."""
    commune = world.point_a.communes[0]
    rows = []
    for person in synthetic_people(
        40,
        seed=13,
        districts=[(commune.parent.name, [commune.name])],
        code_start=42,
        today=date(2021, 10, 1),
    ):
        if person["status"] == "active" and person["proxy_name"] is None:
            rows.append(person)
    rows = rows[:3]
    # The one who will be paid: in cash, with a CCCD that fits the row.
    digits = cccd_birth_digits(rows[2]["gender"], rows[2]["birth_year"])
    rows[2].update(
        payment_method="cash",
        provider="post",
        account_no=None,
        id_number=f"046{digits}000777",
        arrears_vnd=0,
    )
    return rows


def test_every_action_a_day_leaves_in_the_database_is_an_audit_action(
    app, client, session, world, tmp_path
):
    # Set-up through the services: points and users (the world), a generation, two imports
    # of the month's roster (the second stops one person, re-phones one and changes one's
    # arrears), a user changed, a period closed.
    generate(session, beneficiaries=30, first_period="2021-09")
    people = _roster_people(world)
    write_roster_csv(people, tmp_path / "october.csv")
    import_roster(session, tmp_path / "october.csv", period="2021-10", actor="admin1")
    people[0]["status"] = "suspended"
    people[1]["phone"] = "0912345678"
    people[2]["arrears_vnd"] = people[2]["monthly_vnd"]
    write_roster_csv(people, tmp_path / "october-2.csv")
    import_roster(session, tmp_path / "october-2.csv", period="2021-10", actor="admin1")
    auth_service.update_user(session, world.users["auditor"].id, actor="admin1", full_name="Kiểm")
    close_period(session, "2021-09", actor_id=world.users["admin"].id, actor="admin1")

    # A counter's day over the API and the pages: the float, a failure, a verification, a
    # payout, its reprint and its reversal, signing in and out.
    supervisor = app.test_client()
    assert login(supervisor, "supervisor1", "not-the-password").status_code == 401
    for _ in range(6):  # five wrong passwords lock the name: the sixth try is refused
        client.post("/api/v1/tokens", json={"username": "auditor1", "password": "wrong"})
    assert login(supervisor, "supervisor1").status_code == 302
    page = supervisor.get("/counter/cash").get_data(as_text=True)
    response = supervisor.post(
        "/counter/cash", data={"csrf_token": csrf_from(page), "advance": "50000000"}
    )
    assert response.status_code in (200, 302, 303), response.get_data(as_text=True)[:300]
    clerk = bearer(api_token(client, "clerk1"))
    code = people[2]["code"]
    page = supervisor.get(f"/counter/b/{code}").get_data(as_text=True)
    failure = supervisor.post(
        f"/counter/b/{code}/failure",
        data={
            "csrf_token": csrf_from(page),
            "reason": "otp_not_received",
            "detail": "Không có OTP",
        },
    )
    assert failure.status_code == 303, failure.get_data(as_text=True)[:300]
    follow_up = bearer(api_token(client, "supervisor1"))
    case = client.get("/api/v1/failures", headers=follow_up).get_json()["items"][0]
    worked = client.patch(
        f"/api/v1/failures/{case['id']}",
        json={"status": "in_progress", "note": "Gọi lại thứ Hai"},
        headers=follow_up,
    )
    assert worked.status_code == 200, worked.get_json()
    verified = client.post(
        "/api/v1/verifications",
        json={
            "beneficiary_code": code,
            "collector": "beneficiary",
            "id_number": people[2]["id_number"],
        },
        headers=clerk,
    )
    assert verified.status_code == 201, verified.get_json()
    detail = client.get(f"/api/v1/beneficiaries/{code}", headers=clerk).get_json()
    paid = client.post(
        "/api/v1/payouts",
        json={
            "verification_id": verified.get_json()["verification_id"],
            "entitlement_ids": [e["id"] for e in detail["entitlements"] if e["status"] == "due"],
            "channel": "cash",
        },
        headers={**clerk, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert paid.status_code == 201, paid.get_json()
    payout_id = paid.get_json()["payout_id"]
    assert client.delete("/api/v1/tokens/current", headers=clerk).status_code == 204

    result_url = f"/counter/payouts/{payout_id}"
    page = supervisor.get(result_url).get_data(as_text=True)
    reprint = supervisor.post(
        result_url + "/reprint", data={"csrf_token": csrf_from(page.split("/reprint")[1])}
    )
    assert reprint.status_code == 200
    page = supervisor.get(result_url).get_data(as_text=True)
    reversed_ = supervisor.post(
        result_url + "/reverse",
        data={"csrf_token": csrf_from(page), "reason": "Trả nhầm người nhận"},
    )
    assert reversed_.status_code == 303
    page = supervisor.get("/").get_data(as_text=True)
    token = re.search(r'action="/logout".*?value="([^"]+)"', page, re.S)
    assert token is not None
    assert supervisor.post("/logout", data={"csrf_token": token.group(1)}).status_code == 302

    session.rollback()
    session.expire_all()
    assert session.get(Payout, payout_id).status.value == "reversed"
    found = set(session.scalars(select(AuditEvent.action).distinct()))
    members = {action.value for action in AuditAction}
    assert found <= members, found - members
    # The day touched most of the vocabulary, so the check above means something.
    assert found >= members - {
        "auth.idle_timeout",
        "auth.session_expired",
        "auth.account_disabled",
        "point.updated",
        # A provider's withdrawals and settlement files: their events are checked
        # against the sandbox in tests/providers.
        "withdrawal.started",
        "withdrawal.pending",
        "withdrawal.failed",
        "withdrawal.released",
        "settlement.imported",
        # Each checked where it is made: exports (tests/reports/test_exports.py), the day's
        # closing (tests/reports/test_day_closing.py), samples (tests/reports/test_sampling.py).
        "export.written",
        "day.closed",
        "sample.drawn",
        "sample.answered",
        # Home delivery's, checked in tests/api/test_delivery_api.py.
        "device.registered",
        "device.revoked",
        "route.assigned",
        "route.released",
        "visit.recorded",
        "sync.conflict",
        # Written by `payout-terminal backup`, checked in tests/test_backup.py.
        "backup.written",
    }, members - found
    assert verify_chain(session).ok
