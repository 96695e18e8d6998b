"""``/api/v1/audit``: the audit trail for auditors (API.md, "Audit and reports").

Events come exactly as stored and hashed, so an auditor's own tool can recompute
the chain; ``/audit/verify`` recomputes it here.
"""

from __future__ import annotations

import json
from typing import Any

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
from terminal.services.audit import verify_chain

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
