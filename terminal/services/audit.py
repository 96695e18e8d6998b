"""The audit trail: one append (for one event or an import's many), one verification.

Each event's hash covers its content and the previous event's hash, so editing,
deleting, inserting or reordering any past event breaks the chain from there on.
The head row (last sequence number and hash) is locked by every writer, which
serialises appends on PostgreSQL; on SQLite the writer already holds the
database's write lock (BEGIN IMMEDIATE). Actions are ``AuditAction`` members; the
stored and hashed text is the member's value, so chains written before the enum verify.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from terminal.db import WRITE_OPTION
from terminal.models import AuditAction, AuditEvent, AuditHead, utcnow
from terminal.schema import GENESIS_HASH


def canonical_json(data: Mapping[str, Any]) -> str:
    """Serialise data the one way that is hashed: sorted keys, no spaces, UTF-8 text."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _timestamp(at: datetime) -> str:
    """Format an event time the way it is hashed (UTC, microseconds)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    *,
    prev_hash: str,
    seq: int,
    at: datetime,
    actor: str,
    action: str,
    object_type: str,
    object_id: str,
    data: str,
) -> str:
    """Return the SHA-256 chaining hash of one event."""
    body = canonical_json(
        {
            "seq": seq,
            "at": _timestamp(at),
            "actor": actor,
            "action": action,
            "object_type": object_type,
            "object_id": object_id,
            "data": data,
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{body}".encode()).hexdigest()


@dataclass(frozen=True)
class EventData:
    """One event to append with record_events."""

    action: AuditAction
    object_type: str
    object_id: object
    data: Mapping[str, Any]


def record_event(
    session: Session,
    *,
    actor: str,
    action: AuditAction,
    object_type: str,
    object_id: object,
    data: Mapping[str, Any] | None = None,
) -> int:
    """Append an event to the chain inside the caller's write transaction; return its seq."""
    return _append(session, actor, [EventData(action, object_type, object_id, data or {})])


def record_events(session: Session, *, actor: str, events: Sequence[EventData]) -> int:
    """Append many events at once (an import's changes), chained in the given order.

    Returns how many were appended.
    """
    if not events:
        return 0
    _append(session, actor, events)
    return len(events)


# Built once: statements of the hot path, run on the session's connection (no ORM
# objects, so nothing to flush or expire; the head row is only read and moved here).
_HEAD = AuditHead.__table__
_READ_HEAD = select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    _HEAD.update()
    .where(_HEAD.c.id == 1)
    .values(last_seq=bindparam("new_seq"), last_hash=bindparam("new_hash"))
)
_INSERT_EVENTS = AuditEvent.__table__.insert()


def _append(session: Session, actor: str, events: Sequence[EventData]) -> int:
    """Chain events after the head, insert them and move the head; return the last seq.

    The one place the chain grows: every event of a call shares the call's time and actor.
    """
    bind = session.connection()
    if bind.dialect.name == "sqlite" and not bind.get_execution_options().get(WRITE_OPTION):
        # A deferred SQLite transaction could fork the chain; writers must begin_write().
        raise RuntimeError("appending to the audit trail needs a write transaction (begin_write)")
    # Resolve every action before touching the chain: an unknown one is a programming
    # error, and the text hashed must be the plain value ("payout.recorded").
    actions = [AuditAction(item.action).value for item in events]
    seq, prev = bind.execute(_READ_HEAD).one()
    # Microsecond precision is what both databases keep, so the hash reproduces.
    at = utcnow()
    who = actor[:64]
    rows = []
    for item, action in zip(events, actions, strict=True):
        seq += 1
        payload = canonical_json(dict(item.data))
        object_id = str(item.object_id)[:64]
        digest = event_hash(
            prev_hash=prev,
            seq=seq,
            at=at,
            actor=who,
            action=action,
            object_type=item.object_type,
            object_id=object_id,
            data=payload,
        )
        rows.append(
            {
                "seq": seq,
                "at": at,
                "actor": who,
                "action": action,
                "object_type": item.object_type,
                "object_id": object_id,
                "data": payload,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    bind.execute(_INSERT_EVENTS, rows)
    bind.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
    return seq


@dataclass(frozen=True)
class ChainReport:
    """The result of verifying the chain."""

    ok: bool
    events: int
    first_bad_seq: int | None


_EVENTS = AuditEvent.__table__
_CHAIN_COLUMNS = select(
    _EVENTS.c.seq,
    _EVENTS.c.at,
    _EVENTS.c.actor,
    _EVENTS.c.action,
    _EVENTS.c.object_type,
    _EVENTS.c.object_id,
    _EVENTS.c.data,
    _EVENTS.c.prev_hash,
    _EVENTS.c.hash,
).order_by(_EVENTS.c.seq)


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Recompute every hash in order and report the first event that does not match.

    Plain rows, streamed (a server-side cursor on PostgreSQL): a million events
    are checked without holding them, and without building an object per event.
    The head is read first and the chain up to it: on PostgreSQL each statement sees
    what had committed when it began, so a payout appended meanwhile must not look
    like a chain longer than its head (a false alarm on a busy day, RELIABILITY S10).
    """
    head = session.execute(_HEAD.select().where(_HEAD.c.id == 1)).first()
    upto = head.last_seq if head is not None else 0
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0
    chain = _CHAIN_COLUMNS.where(_EVENTS.c.seq <= upto)
    rows = session.execute(chain.execution_options(yield_per=batch, stream_results=True))
    for event in rows:
        count += 1
        recomputed = event_hash(
            prev_hash=event.prev_hash,
            seq=event.seq,
            at=event.at,
            actor=event.actor,
            action=event.action,
            object_type=event.object_type,
            object_id=event.object_id,
            data=event.data,
        )
        if (
            event.seq != expected_seq
            or event.prev_hash != expected_prev
            or event.hash != recomputed
        ):
            return ChainReport(ok=False, events=count, first_bad_seq=min(event.seq, expected_seq))
        expected_prev = event.hash
        expected_seq += 1
    last_seq = expected_seq - 1
    if head is None or head.last_seq != last_seq or head.last_hash != expected_prev:
        # Events cut from the end: the head still remembers how long the chain was.
        return ChainReport(ok=False, events=count, first_bad_seq=last_seq + 1)
    # Events past the head read first were appended since, and the head has moved past
    # them (it moves in their transaction), or were slipped in after the head.
    beyond = session.scalar(select(func.max(_EVENTS.c.seq)).where(_EVENTS.c.seq > upto))
    if beyond is not None:
        moved = session.scalar(select(_HEAD.c.last_seq).where(_HEAD.c.id == 1))
        if moved is None or beyond > moved:
            return ChainReport(ok=False, events=count, first_bad_seq=last_seq + 1)
    return ChainReport(ok=True, events=count, first_bad_seq=None)


def record_export(
    session: Session,
    *,
    actor: str,
    kind: str,
    fmt: str,
    filters: Mapping[str, Any] | None = None,
    rows: int | None = None,
) -> int:
    """Record that someone exported (DESIGN rule 8: exports of personal data leave a trace).

    ``kind`` names what was exported (``payouts``, ``failures``, ``period``,
    ``coverage``, ``samples``...), ``filters`` what part of it; ``rows`` is the count
    when known before the file is sent (a streamed export records its filters first).
    Runs in its own write transaction, committed before the first byte goes out.
    """
    from terminal.db import write_transaction

    data: dict[str, Any] = {"kind": kind, "format": fmt}
    data["filters"] = {k: v for k, v in (filters or {}).items() if v not in (None, "")}
    if rows is not None:
        data["rows"] = rows
    with write_transaction(session):
        seq = record_event(
            session,
            actor=actor,
            action=AuditAction.EXPORT_WRITTEN,
            object_type="export",
            object_id=kind,
            data=data,
        )
    # A security event for the application log too (RELIABILITY S23), when it came over
    # the network: the command line tells its operator itself. The filters stay in the
    # audit trail only: they may hold a searched name or number.
    from flask import has_request_context

    if has_request_context():
        logging.getLogger("terminal").info(
            "export written: kind=%s format=%s by=%s event=%s", kind, fmt, actor, seq
        )
    return seq


# ---- signed checkpoints ----------------------------------------------------------------
#
# A chain proves that nothing was changed in the middle of the log, but whoever can
# write to the database can rewrite the whole tail and recompute every hash after it.
# A checkpoint is the head (sequence number and hash) signed with the receipt key: an
# auditor keeps it outside the terminal, and later proves the log still extends it.

CHECKPOINT_CONTEXT = b"payout-terminal audit checkpoint v1\n"


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, signed (API.md: seq, hash, at, signature)."""

    seq: int
    hash: str
    at: str | None
    signature: str

    def as_dict(self) -> dict[str, Any]:
        """Return the checkpoint as the API serves it and the file keeps it."""
        return {"seq": self.seq, "hash": self.hash, "at": self.at, "signature": self.signature}


def _checkpoint_message(seq: int, digest: str, at: str | None) -> bytes:
    """Return the bytes a checkpoint signs (a context prefix keeps them apart from receipts)."""
    body = canonical_json({"seq": seq, "hash": digest, "at": at})
    return CHECKPOINT_CONTEXT + body.encode()


def make_checkpoint(session: Session, secret_key: str) -> Checkpoint:
    """Sign the chain's current head with the receipt key.

    The head row and the last event must agree (the cheap part of a verification);
    the whole chain is not recomputed here: that is ``verify_chain``'s job, and the
    checkpoint is worth keeping only from a log that verified.
    """
    from terminal.clock import to_local
    from terminal.services.receipt_tokens import _b64, signing_key

    head = session.execute(select(_HEAD.c.last_seq, _HEAD.c.last_hash).where(_HEAD.c.id == 1))
    last_seq, last_hash = head.one()
    at = None
    if last_seq:
        event = session.execute(
            select(_EVENTS.c.at, _EVENTS.c.hash).where(_EVENTS.c.seq == last_seq)
        ).first()
        if event is None or event.hash != last_hash:
            raise BrokenChain(last_seq)
        at = to_local(event.at).isoformat()
    message = _checkpoint_message(last_seq, last_hash, at)
    signature = _b64(signing_key(secret_key).sign(message))
    return Checkpoint(seq=last_seq, hash=last_hash, at=at, signature=signature)


class BrokenChain(Exception):
    """The head does not match the events: no checkpoint is signed over a broken log."""

    def __init__(self, seq: int) -> None:
        super().__init__(f"audit chain broken at sequence {seq}")
        self.seq = seq


@dataclass(frozen=True)
class CheckpointReport:
    """Whether the log still extends a kept checkpoint, and if not, why."""

    ok: bool
    reason: str
    chain: ChainReport | None = None
    # What was found, for a page to say in its own words: ok, signature, broken,
    # short (events cut from the end), rewritten (the checkpoint's event differs).
    kind: str = "ok"


def read_checkpoint(data: Any) -> Checkpoint:
    """Return a checkpoint from its JSON form; ValueError says what is wrong with it."""
    if not isinstance(data, Mapping):
        raise ValueError("a checkpoint is a JSON object with seq, hash, at and signature")
    seq, digest, at, signature = (data.get(k) for k in ("seq", "hash", "at", "signature"))
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq <= 2**62:
        raise ValueError("the checkpoint's seq is not a sequence number")
    if not isinstance(digest, str) or len(digest) != 64:
        raise ValueError("the checkpoint's hash is not a SHA-256 hex digest")
    if at is not None and (not isinstance(at, str) or len(at) > 64):
        raise ValueError("the checkpoint's at is not a time")
    if not isinstance(signature, str) or len(signature) > 200:
        raise ValueError("the checkpoint has no signature")
    return Checkpoint(seq=seq, hash=digest, at=at, signature=signature)


def checkpoint_signed(checkpoint: Checkpoint, public_key: Any) -> bool:
    """Tell whether a checkpoint's signature is the terminal's (Ed25519 public key)."""
    from cryptography.exceptions import InvalidSignature

    from terminal.services.receipt_tokens import _unb64

    try:
        signature = _unb64(checkpoint.signature)
        public_key.verify(
            signature, _checkpoint_message(checkpoint.seq, checkpoint.hash, checkpoint.at)
        )
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def verify_against(session: Session, checkpoint: Checkpoint, public_key: Any) -> CheckpointReport:
    """Prove the log is intact and still extends a kept checkpoint.

    Catches what the chain alone cannot: a tail cut off together with the head, or a
    tail rewritten with every hash recomputed (the event at the checkpoint's
    sequence number no longer has the signed hash).
    """
    if not checkpoint_signed(checkpoint, public_key):
        return CheckpointReport(
            False, "the checkpoint's signature is not valid: not ours, or altered"
        )
    chain = verify_chain(session)
    if not chain.ok:
        return CheckpointReport(
            False, f"audit chain broken at sequence {chain.first_bad_seq}", chain, "broken"
        )
    if checkpoint.seq == 0:
        return CheckpointReport(True, f"intact: {chain.events} events, extends checkpoint 0", chain)
    row = session.execute(select(_EVENTS.c.hash).where(_EVENTS.c.seq == checkpoint.seq)).first()
    if row is None:
        return CheckpointReport(
            False,
            f"the log ends at sequence {chain.events}, before the checkpoint's {checkpoint.seq}: "
            "events were removed from the end",
            chain,
            "short",
        )
    if row.hash != checkpoint.hash:
        return CheckpointReport(
            False,
            f"event {checkpoint.seq} differs from the checkpoint: the log was rewritten "
            f"at or before sequence {checkpoint.seq}",
            chain,
            "rewritten",
        )
    return CheckpointReport(
        True, f"intact: {chain.events} events, extends checkpoint {checkpoint.seq}", chain
    )


# ---- reading the trail ---------------------------------------------------------------


@dataclass(frozen=True)
class EventFilter:
    """Which events an auditor reads: by action, object and actor."""

    action: str | None = None
    object_type: str | None = None
    object_id: str | None = None
    actor: str | None = None


def event_page(
    session: Session,
    filters: EventFilter,
    *,
    before: int | None = None,
    after: int | None = None,
    limit: int = 50,
) -> tuple[list[AuditEvent], int | None, int | None]:
    """Return a page of events, newest first, and the seq cursors of the older and newer pages.

    Keyset by sequence number, so the millionth event costs what the first does.
    """
    query = select(AuditEvent)
    if filters.action:
        query = query.where(AuditEvent.action == filters.action)
    if filters.object_type:
        query = query.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        query = query.where(AuditEvent.object_id == filters.object_id)
    if filters.actor:
        query = query.where(AuditEvent.actor == filters.actor)
    if after is not None:
        # The newer page: read upwards from the cursor, then show newest first.
        rows = list(
            session.scalars(
                query.where(AuditEvent.seq > after).order_by(AuditEvent.seq).limit(limit + 1)
            )
        )
        newer = rows[limit - 1].seq if len(rows) > limit else None
        rows = list(reversed(rows[:limit]))
        older = rows[-1].seq if rows else None
        return rows, older, newer
    if before is not None:
        query = query.where(AuditEvent.seq < before)
    rows = list(session.scalars(query.order_by(AuditEvent.seq.desc()).limit(limit + 1)))
    older = rows[limit - 1].seq if len(rows) > limit else None
    rows = rows[:limit]
    newer = rows[0].seq if rows and before is not None else None
    return rows, older, newer
