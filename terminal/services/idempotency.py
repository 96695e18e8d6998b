"""Idempotency keys: a retried request gets its first answer, never a second effect.

Keys are scoped per user (another user's identical key is another key) and kept
with the response they got. Two ways to hold a key:

- ``claim`` inside the caller's write transaction, for operations that complete in
  one transaction (a payout): the key row commits with the effect or vanishes with
  its rollback, so an error leaves nothing to release and a concurrent request with
  the same key waits on the key's unique index, then reads the answer;
- ``claim_key`` committed on its own, for operations that span several
  transactions or a provider's network call: the key stays ``in_progress`` until
  ``finish_alone`` or ``release_key``, and one left behind by a request that died is
  taken over after ``STALE_IN_PROGRESS``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from terminal.db import write_transaction
from terminal.models import IdempotencyRecord, IdempotencyState, User, utcnow
from terminal.services.errors import Conflict, InvalidInput, Refused

KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request still "in progress" after this long died before finishing (the worker
# timeout is shorter): its key may be taken over by a retry.
STALE_IN_PROGRESS = timedelta(seconds=90)


@dataclass(frozen=True)
class StoredResponse:
    """The response a key already got."""

    status: int
    body: dict[str, Any]


class KeyReused(Refused):
    """The key was used for another request."""

    code = "idempotency_key_reused"


class InProgress(Conflict):
    """The key's first request is still being processed."""

    code = "request_in_progress"


def check_key(key: str | None) -> str:
    """Return a usable Idempotency-Key or refuse a missing or malformed one."""
    if key is None or key == "":
        raise InvalidInput("the Idempotency-Key header is required", code="idempotency_key_missing")
    if not KEY_RE.match(key):
        raise InvalidInput(
            "the Idempotency-Key must be 1-255 visible ASCII characters",
            code="idempotency_key_invalid",
        )
    return key


def digest(body: Mapping[str, Any]) -> str:
    """Return the SHA-256 of a normalised request body, to recognise a retry of it."""
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _insert(session: Session) -> Any:
    """Return the dialect's INSERT that knows ON CONFLICT."""
    return postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert


_TABLE = IdempotencyRecord.__table__
# Built once per dialect (the hot path of every payment); the values come with each call.
_CLAIMS: dict[str, Any] = {}
_FINISH = _TABLE.update().where(_TABLE.c.id == bindparam("record_id"))


def _claim_statement(session: Session) -> Any:
    """Return the dialect's INSERT of a key that yields its id, or nothing if taken."""
    dialect = session.get_bind().dialect.name
    statement = _CLAIMS.get(dialect)
    if statement is None:
        statement = _CLAIMS[dialect] = (
            _insert(session)(_TABLE)
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
            .returning(_TABLE.c.id)
        )
    return statement


def claim(session: Session, user_id: int, key: str, request_hash: str) -> int | StoredResponse:
    """Inside the caller's write transaction: take a key, or return what it already got.

    Refuses a key used for another request (422) and one whose first request is
    still running (409).
    """
    new_id = (
        session.connection()
        .execute(
            _claim_statement(session),
            {
                "user_id": user_id,
                "key": key,
                "request_hash": request_hash,
                "state": IdempotencyState.IN_PROGRESS,
                "created_at": utcnow(),
            },
        )
        .scalar()
    )
    if new_id is not None:
        return int(new_id)
    record = session.scalar(
        select(IdempotencyRecord)
        .where(IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key)
        .with_for_update()
        # The row as it is now, not as this session last saw it (``finish`` writes
        # without the ORM).
        .execution_options(populate_existing=True)
    )
    if record is None:  # deleted between the two statements: the next try inserts it
        raise InProgress("the first request with this key is still being processed")
    if record.request_hash != request_hash:
        raise KeyReused("this Idempotency-Key was used for another request")
    if record.state is IdempotencyState.DONE:
        return StoredResponse(record.status_code or 200, json.loads(record.response_body or "{}"))
    if utcnow() - record.created_at < STALE_IN_PROGRESS:
        raise InProgress("the first request with this key is still being processed")
    # Its first request died before finishing (else it would be done): take it over.
    record.created_at = utcnow()
    session.flush()
    return record.id


def claim_key(session: Session, user: User, key: str, request_hash: str) -> int | StoredResponse:
    """Claim a key in a transaction of its own (for operations that span several)."""
    for _attempt in range(2):
        try:
            with write_transaction(session):
                return claim(session, user.id, key, request_hash)
        except IntegrityError:
            continue  # another process inserted it at the same moment: read it
    raise InProgress("the first request with this key is still being processed")


def finish(session: Session, record_id: int, status: int, body: Mapping[str, Any]) -> None:
    """Store a key's response inside the caller's transaction."""
    session.connection().execute(
        _FINISH,
        {
            "record_id": record_id,
            "state": IdempotencyState.DONE,
            "status_code": status,
            "response_body": json.dumps(dict(body), ensure_ascii=False),
            "completed_at": utcnow(),
        },
    )


def store_refusal(
    session: Session,
    user_id: int,
    key: str,
    request_hash: str,
    status: int,
    body: Mapping[str, Any],
) -> None:
    """Remember a refusal as a key's answer, in a transaction of its own.

    The refused request's own transaction was rolled back with its claim; a request
    with the same key that got in meanwhile keeps its answer.
    """
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        now = utcnow()
        session.execute(
            _insert(session)(IdempotencyRecord)
            .values(
                user_id=user_id,
                key=key,
                request_hash=request_hash,
                state=IdempotencyState.DONE,
                status_code=status,
                response_body=json.dumps(dict(body), ensure_ascii=False),
                created_at=now,
                completed_at=now,
            )
            .on_conflict_do_nothing(index_elements=["user_id", "key"])
        )


def finish_alone(session: Session, record_id: int, status: int, body: Mapping[str, Any]) -> None:
    """Store a key's response in a transaction of its own (keys held by ``claim_key``)."""
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        finish(session, record_id, status, body)


def release_key(session: Session, record_id: int) -> None:
    """Forget a key held by ``claim_key`` after an unexpected error, so a retry may run."""
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id,
                IdempotencyRecord.state == IdempotencyState.IN_PROGRESS,
            )
        )


def stored(session: Session, user: User, key: str) -> StoredResponse | None:
    """Return the answer a key got, or None while it is unknown or still running."""
    record = session.scalar(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == key[:255]
        )
    )
    if record is None or record.state is not IdempotencyState.DONE:
        return None
    return StoredResponse(record.status_code or 200, json.loads(record.response_body or "{}"))
