"""The hash-chained audit trail: appends, verification and tampering of every kind."""

from __future__ import annotations

import json
import random
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import insert, select, text, update

from terminal.db import write_transaction
from terminal.models import AuditAction, AuditEvent, AuditHead
from terminal.services.audit import (
    EventData,
    event_hash,
    record_event,
    record_events,
    verify_chain,
)

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
    with write_transaction(session):
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
