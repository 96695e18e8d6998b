"""``/api/v1/failures``: failed attempts and the follow-up queue (API.md, "Failures").

Staff report failures and read their point's; the point's supervisor works them;
auditors read all. The services decide scope and write the audit events.
"""

from __future__ import annotations

from typing import Any

from flask import g

from terminal.api import endpoint, parse_body, parse_query, reply
from terminal.api.schemas import (
    ErrorBody,
    FailureCreate,
    FailureCreated,
    FailureDetail,
    FailureList,
    FailureQuery,
    FailureUpdate,
)
from terminal.db import get_session
from terminal.models import Channel, FailureReason, FailureStatus
from terminal.services import followup

ERRORS = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


@endpoint(
    "/failures",
    "POST",
    summary="Report a failed attempt at paying someone: it opens a follow-up case",
    permission="counter",
    body=FailureCreate,
    responses={201: FailureCreated, **ERRORS},
)
def create_failure() -> Any:
    """Record a failure reported by staff of the beneficiary's point."""
    data = parse_body(FailureCreate)
    failure = followup.report(
        get_session(),
        g.user,
        beneficiary_code=data.beneficiary_code.strip().upper(),
        reason=FailureReason(data.reason),
        entitlement_id=data.entitlement_id,
        detail=data.detail or "",
        channel=Channel(data.channel) if data.channel else None,
        provider_ref=data.provider_ref,
    )
    return reply(
        FailureCreated(
            id=failure.id, status=failure.status.value, case=failure.is_case, due_by=failure.due_by
        ),
        201,
    )


@endpoint(
    "/failures",
    "GET",
    summary="Failures the caller may see, newest first, with filters and a cursor",
    permission="follow_up",
    query=FailureQuery,
    responses={200: FailureList, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody},
)
def list_failures() -> Any:
    """List failures: staff their point's, auditors every point's."""
    query = parse_query(FailureQuery)
    filters = followup.FailureFilter(
        status=FailureStatus(query.status) if query.status else None,
        reason=FailureReason(query.reason) if query.reason else None,
        point_code=query.point,
        commune=query.commune,
        overdue=query.overdue,
        case=query.case,
    )
    items, cursor = followup.page(
        get_session(), g.user, filters, after=query.cursor, limit=query.limit
    )
    return reply(FailureList(items=items, next_cursor=cursor))


def _detail(failure: Any) -> FailureDetail:
    return FailureDetail(**followup.item_of(failure), thread=followup.thread(failure))


@endpoint(
    "/failures/<int:failure_id>",
    "PATCH",
    summary="Work a case (point supervisor): status, a note for its thread, its owner",
    permission="supervise",
    body=FailureUpdate,
    responses={200: FailureDetail, 422: ErrorBody, **ERRORS},
)
def update_failure(failure_id: int) -> Any:
    """Change a case's status, add a note, or give it an owner (audited)."""
    data = parse_body(FailureUpdate)
    changes: dict[str, Any] = {}
    if "assignee" in data.model_fields_set:
        changes["assignee"] = data.assignee
    failure = followup.update(
        get_session(),
        g.user,
        failure_id,
        status=FailureStatus(data.status) if data.status else None,
        note=data.note,
        **changes,
    )
    return reply(_detail(failure))
