"""``/api/v1/audit``: the audit trail for auditors (API.md, "Audit and reports").

Events come exactly as stored and hashed, so an auditor's own tool can recompute
the chain; ``/audit/verify`` recomputes it here.
"""

from __future__ import annotations

import json
from typing import Any

from flask import current_app, request
from pydantic import BaseModel
from sqlalchemy import select

from terminal.api import endpoint, parse_query, reply
from terminal.api.schemas import (
    AuditEventItem,
    AuditEventList,
    AuditQuery,
    AuditVerifyBody,
    ErrorBody,
)
from terminal.clock import to_local
from terminal.db import get_session
from terminal.models import AuditEvent
from terminal.services import receipts
from terminal.services.audit import (
    BrokenChain,
    make_checkpoint,
    read_checkpoint,
    verify_against,
    verify_chain,
)
from terminal.services.errors import Conflict, InvalidInput
from terminal.services.receipt_tokens import load_public_key

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody}


@endpoint(
    "/audit/events",
    "GET",
    summary="The audit trail in sequence order, after a sequence number (auditors)",
    permission="audit_trail",
    query=AuditQuery,
    responses={200: AuditEventList, **ERRORS},
)
def list_audit_events() -> Any:
    """Return up to ``limit`` events after ``after``, as stored and hashed."""
    query = parse_query(AuditQuery)
    events = list(
        get_session().scalars(
            select(AuditEvent)
            .where(AuditEvent.seq > query.after)
            .order_by(AuditEvent.seq)
            .limit(query.limit)
        )
    )
    items = [
        AuditEventItem(
            seq=e.seq,
            at=to_local(e.at),
            actor=e.actor,
            action=e.action,
            object_type=e.object_type,
            object_id=e.object_id,
            data=json.loads(e.data) if e.data else None,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )
        for e in events
    ]
    next_after = events[-1].seq if len(events) == query.limit else None
    return reply(AuditEventList(items=items, next_after=next_after))


@endpoint(
    "/audit/verify",
    "GET",
    summary="Recompute the audit hash chain: intact, or the first bad sequence number",
    permission="audit_trail",
    responses={200: AuditVerifyBody, 401: ErrorBody, 403: ErrorBody},
)
def verify_audit_chain() -> Any:
    """Check every event's hash and link, in order."""
    report = verify_chain(get_session())
    return reply(
        AuditVerifyBody(ok=report.ok, events=report.events, first_bad_seq=report.first_bad_seq)
    )


class CheckpointBody(BaseModel):
    """The chain's head signed with the receipt key: keep it, check the log against it later."""

    seq: int
    hash: str
    at: str | None
    signature: str


class CheckpointCheckBody(BaseModel):
    """Whether the log is intact and still extends the checkpoint sent."""

    ok: bool
    reason: str
    events: int | None
    first_bad_seq: int | None


@endpoint(
    "/audit/checkpoint",
    "GET",
    summary="A signed checkpoint of the audit chain's head, to keep outside the terminal",
    permission="audit_trail",
    responses={200: CheckpointBody, 401: ErrorBody, 403: ErrorBody, 409: ErrorBody},
)
def get_audit_checkpoint() -> Any:
    """Sign the head (sequence number and hash) with the receipt key."""
    try:
        checkpoint = make_checkpoint(get_session(), current_app.config["SECRET_KEY"])
    except BrokenChain as exc:
        raise Conflict(str(exc), code="audit_chain_broken") from None
    return reply(CheckpointBody(**checkpoint.as_dict()))


@endpoint(
    "/audit/checkpoint/verify",
    "POST",
    summary="Check that the log is intact and still extends a kept checkpoint",
    permission="audit_trail",
    body=CheckpointBody,
    responses={200: CheckpointCheckBody, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody},
)
def verify_audit_checkpoint() -> Any:
    """Verify the chain and find the checkpoint's event with the signed hash."""
    raw = request.get_data(cache=True)
    try:
        checkpoint = read_checkpoint(json.loads(raw) if raw.strip() else None)
    except (ValueError, RecursionError) as exc:
        message = str(exc) if not isinstance(exc, json.JSONDecodeError) else "not JSON"
        raise InvalidInput(message, code="invalid_request") from None
    key = load_public_key(receipts.public_key(current_app))
    report = verify_against(get_session(), checkpoint, key)
    chain = report.chain
    return reply(
        CheckpointCheckBody(
            ok=report.ok,
            reason=report.reason,
            events=chain.events if chain else None,
            first_bad_seq=chain.first_bad_seq if chain else None,
        )
    )
