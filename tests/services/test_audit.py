"""The hash-chained audit trail: appends, verification and tampering of every kind."""

from __future__ import annotations

import random

import pytest
from sqlalchemy import text

from terminal.db import write_transaction
from terminal.models import AuditEvent
from terminal.services.audit import record_event, verify_chain


def _fill(session, n):
    for i in range(n):
        with write_transaction(session):
            record_event(
                session,
                actor="tester",
                action="test.event",
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
        record_event(session, actor="x", action="y", object_type="z", object_id=1)
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
