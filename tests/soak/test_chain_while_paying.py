"""The audit chain verified while others append to it: no false alarm, no blind spot.

Found by the soak (tests/soak/test_mixed_load.py): on PostgreSQL each statement sees
what had committed when it began, so an auditor's verification that read the events
and then the head reported a clean chain as broken whenever a payout was recorded in
between. The head is now read first; these tests make that interleaving happen on
purpose, on both databases, and prove an event slipped in past the head is still
caught (RELIABILITY S10, S19).
"""

from __future__ import annotations

from sqlalchemy import select, text

from terminal.db import new_session, write_transaction
from terminal.models import AuditAction, AuditEvent
from terminal.services.audit import record_event, verify_chain


def _append(session, n: int) -> None:
    with write_transaction(session):
        record_event(
            session,
            actor="clerk1",
            action=AuditAction.PAYOUT_RECORDED,
            object_type="payout",
            object_id=n,
            data={"receipt_no": f"HTBD-2026-{n:06d}", "amount_vnd": 540_000},
        )


def test_a_payout_recorded_during_verification_is_no_false_alarm(app, session, monkeypatch):
    for n in range(5):
        _append(session, n)
    other = new_session(app)  # another worker, paying while the auditor verifies
    execute = session.execute
    appended: list[int] = []

    def execute_then_pay(statement, *args, **kwargs):
        result = execute(statement, *args, **kwargs)
        if not appended:
            _append(other, 99)
            appended.append(99)
        return result

    monkeypatch.setattr(session, "execute", execute_then_pay)
    session.rollback()
    try:
        report = verify_chain(session)
    finally:
        monkeypatch.undo()
        other.close()
    assert appended
    assert report.ok, report
    session.rollback()
    assert verify_chain(session).ok and verify_chain(session).events == 6


def test_an_event_slipped_in_past_the_head_is_caught(session):
    for n in range(5):
        _append(session, n)
    with write_transaction(session):
        session.execute(
            text(
                "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, "
                "data, prev_hash, hash) SELECT seq + 1, at, 'intruder', action, object_type, "
                "'x', data, hash, hash FROM audit_events WHERE seq = 5"
            )
        )
    assert session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc())) == 6
    report = verify_chain(session)
    assert not report.ok and report.first_bad_seq == 6, report
