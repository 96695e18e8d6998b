"""RELIABILITY S19: six kinds of tampering, the database's guards, and signed checkpoints.

The chain catches an edit, a deletion, an insertion or a reordering anywhere; the
head row catches a cut tail; a checkpoint kept outside catches what only someone
with the database's keys can do: cut the tail together with the head, or rewrite
the tail with every hash recomputed. Clean logs, growing after a checkpoint, never
raise an alarm.
"""

from __future__ import annotations

import json
import random

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import select, text

from terminal.db import write_transaction
from terminal.models import AuditAction, AuditEvent
from terminal.services.audit import (
    _timestamp,
    canonical_json,
    checkpoint_signed,
    event_hash,
    make_checkpoint,
    read_checkpoint,
    record_event,
    verify_against,
    verify_chain,
)
from terminal.services.receipt_tokens import load_public_key, public_key_pem
from tests.audit_tamper import guards_off
from tests.conftest import SECRET, api_token, bearer

KINDS = ("edit", "delete", "insert", "reorder", "truncate_tail", "rewrite_tail")
FIELDS = ("at", "actor", "action", "object_type", "object_id", "data", "prev_hash", "hash")


def _fill(session, n, start=0):
    for i in range(start, start + n):
        with write_transaction(session):
            record_event(
                session,
                actor="clerk1",
                action=AuditAction.PAYOUT_RECORDED,
                object_type="payout",
                object_id=i,
                data={"amount_vnd": 540000 + i, "receipt_no": f"HTBD-2026-{i:06d}"},
            )


def _key():
    return load_public_key(public_key_pem(SECRET))


def _events(session):
    return list(session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def _tamper(session, kind, seq, total):
    """Do one kind of tampering at sequence number ``seq`` as an intruder would."""
    with write_transaction(session), guards_off(session.connection()) as conn:
        if kind == "edit":
            conn.execute(
                text("UPDATE audit_events SET data = :d WHERE seq = :s"),
                {"d": canonical_json({"amount_vnd": 1, "receipt_no": "forged"}), "s": seq},
            )
        elif kind == "delete":
            conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})
        elif kind == "insert":
            for later in range(total, seq - 1, -1):
                conn.execute(
                    text("UPDATE audit_events SET seq = :n WHERE seq = :o"),
                    {"n": later + 1, "o": later},
                )
            conn.execute(
                text(
                    "INSERT INTO audit_events (seq, at, actor, action, object_type, object_id, "
                    "data, prev_hash, hash) SELECT :s, at, 'intruder', action, object_type, "
                    "'x', '{}', prev_hash, hash FROM audit_events WHERE seq = :n"
                ),
                {"s": seq, "n": seq + 1},
            )
        elif kind == "reorder":
            other = seq + 1 if seq < total else seq - 1
            rows = {
                r.seq: r
                for r in conn.execute(
                    text(
                        f"SELECT seq, {', '.join(FIELDS)} FROM audit_events WHERE seq IN (:a, :b)"
                    ),
                    {"a": seq, "b": other},
                )
            }
            for mine, theirs in ((seq, other), (other, seq)):
                values = {f: getattr(rows[theirs], f) for f in FIELDS}
                conn.execute(
                    text(
                        f"UPDATE audit_events SET {', '.join(f'{f} = :{f}' for f in FIELDS)} "
                        "WHERE seq = :seq"
                    ),
                    {**values, "seq": mine},
                )
        elif kind == "truncate_tail":
            # The intruder cuts the tail and moves the head back, so the chain is whole.
            conn.execute(text("DELETE FROM audit_events WHERE seq >= :s"), {"s": seq})
            last = conn.execute(
                text("SELECT seq, hash FROM audit_events WHERE seq = :p"), {"p": seq - 1}
            ).first()
            conn.execute(
                text("UPDATE audit_head SET last_seq = :s, last_hash = :h WHERE id = 1"),
                {"s": last.seq, "h": last.hash},
            )
        elif kind == "rewrite_tail":
            _rewrite_tail(conn, seq)


def _rewrite_tail(conn, seq):
    """Change event ``seq`` and recompute every hash after it, head included."""
    rows = list(
        conn.execute(
            text(f"SELECT seq, {', '.join(FIELDS)} FROM audit_events WHERE seq >= :s ORDER BY seq"),
            {"s": seq},
        )
    )
    prev = rows[0].prev_hash
    for row in rows:
        data = row.data
        if row.seq == seq:
            data = canonical_json({"amount_vnd": 1, "receipt_no": "forged"})
        at = row.at
        digest = event_hash(
            prev_hash=prev,
            seq=row.seq,
            at=at if not isinstance(at, str) else _parse_sqlite_time(at),
            actor=row.actor,
            action=row.action,
            object_type=row.object_type,
            object_id=row.object_id,
            data=data,
        )
        conn.execute(
            text("UPDATE audit_events SET data = :d, prev_hash = :p, hash = :h WHERE seq = :s"),
            {"d": data, "p": prev, "h": digest, "s": row.seq},
        )
        prev = digest
    conn.execute(text("UPDATE audit_head SET last_hash = :h WHERE id = 1"), {"h": prev})


def _parse_sqlite_time(value):
    from datetime import UTC, datetime

    parsed = datetime.fromisoformat(value)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@pytest.mark.parametrize("round_", range(3))
@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_of_tampering_is_caught_and_located(session, kind, round_):
    total = 40
    _fill(session, total)
    checkpoint = make_checkpoint(session, SECRET)
    assert checkpoint.seq == total
    rng = random.Random(f"{kind}-{round_}")
    seq = rng.randrange(2, total)  # anywhere but the very first event
    assert verify_against(session, checkpoint, _key()).ok  # no false alarm before
    _tamper(session, kind, seq, total)
    session.expire_all()

    chain = verify_chain(session)
    report = verify_against(session, checkpoint, _key())
    assert not report.ok, kind
    if kind in ("truncate_tail", "rewrite_tail"):
        # The chain alone is whole again: only the kept checkpoint tells.
        assert chain.ok
        assert str(checkpoint.seq if kind == "rewrite_tail" else seq - 1) in report.reason
    else:
        assert not chain.ok
        # Located: the first bad sequence number is where the tampering was.
        assert chain.first_bad_seq in (seq, seq + 1), (kind, seq, chain)
        assert f"sequence {chain.first_bad_seq}" in report.reason


@pytest.mark.parametrize("round_", range(5))
def test_a_clean_log_growing_after_its_checkpoints_never_raises_an_alarm(session, round_):
    rng = random.Random(round_)
    kept = []
    written = 0
    for _ in range(4):
        n = rng.randrange(0, 12)
        _fill(session, n, start=written)
        written += n
        kept.append(make_checkpoint(session, SECRET))
    for checkpoint in kept:
        report = verify_against(session, checkpoint, _key())
        assert report.ok, report.reason
        assert report.chain.events == written


def test_a_checkpoint_altered_or_signed_by_someone_else_is_refused(session):
    _fill(session, 5)
    good = make_checkpoint(session, SECRET)
    assert checkpoint_signed(good, _key())
    altered = read_checkpoint({**good.as_dict(), "seq": 4})
    assert not checkpoint_signed(altered, _key())
    foreign = make_checkpoint(session, "another-terminal-" + "y" * 32)
    report = verify_against(session, foreign, _key())
    assert not report.ok and "signature" in report.reason


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"seq": "5", "hash": "a" * 64, "at": None, "signature": "x"},
        {"seq": True, "hash": "a" * 64, "at": None, "signature": "x"},
        {"seq": -1, "hash": "a" * 64, "at": None, "signature": "x"},
        {"seq": 5, "hash": "short", "at": None, "signature": "x"},
        {"seq": 5, "hash": "a" * 64, "at": None},
    ],
)
def test_a_malformed_checkpoint_says_what_is_wrong(data):
    with pytest.raises(ValueError, match="checkpoint"):
        read_checkpoint(data)


def test_the_database_refuses_to_change_or_delete_an_event(session):
    _fill(session, 3)
    for statement in (
        "UPDATE audit_events SET actor = 'intruder' WHERE seq = 2",
        "DELETE FROM audit_events WHERE seq = 3",
        "DELETE FROM audit_events",
    ):
        with (
            pytest.raises(sa_exc.DatabaseError, match="append-only"),
            write_transaction(session),
        ):
            session.execute(text(statement))
    if session.get_bind().dialect.name == "postgresql":
        with (
            pytest.raises(sa_exc.DatabaseError, match="append-only"),
            write_transaction(session),
        ):
            session.execute(text("TRUNCATE audit_events"))
    session.expire_all()
    assert [e.actor for e in _events(session)] == ["clerk1"] * 3
    assert verify_chain(session).ok


def test_the_checkpoint_api_signs_the_head_and_checks_a_kept_one(client, world, session):
    auditor = bearer(api_token(client, world.users["auditor"].username))
    _fill(session, 6)
    kept = client.get("/api/v1/audit/checkpoint", headers=auditor)
    assert kept.status_code == 200
    body = kept.get_json()
    assert set(body) == {"seq", "hash", "at", "signature"}
    head = _events(session)[-1]
    assert body["seq"] == head.seq and body["hash"] == head.hash
    assert body["at"].endswith("+07:00")
    # Anyone with the public key checks it offline.
    pem = client.get("/api/v1/receipts/public-key").get_data(as_text=True)
    assert checkpoint_signed(read_checkpoint(body), load_public_key(pem))

    check = client.post("/api/v1/audit/checkpoint/verify", json=body, headers=auditor)
    assert check.get_json()["ok"] is True
    with write_transaction(session), guards_off(session.connection()) as conn:
        _rewrite_tail(conn, 3)
    check = client.post("/api/v1/audit/checkpoint/verify", json=body, headers=auditor).get_json()
    assert check["ok"] is False and f"event {body['seq']}" in check["reason"]
    assert client.get("/api/v1/audit/verify", headers=auditor).get_json()["ok"] is True

    for bad in ("", "not json", json.dumps({"seq": 1})):
        refused = client.post(
            "/api/v1/audit/checkpoint/verify",
            data=bad,
            headers={**auditor, "Content-Type": "application/json"},
        )
        assert refused.status_code == 400, bad
        assert refused.get_json()["error"] == "invalid_request"
    clerk = bearer(api_token(client, world.users["clerk"].username))
    assert client.get("/api/v1/audit/checkpoint", headers=clerk).status_code == 403


def test_timestamps_hash_the_same_way_they_are_stored(session):
    _fill(session, 1)
    event = _events(session)[0]
    assert _timestamp(event.at).endswith("Z")
