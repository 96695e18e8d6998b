"""Failed attempts: every refusal recorded with a reason, as a follow-up case.

A failure is written in its own committed transaction, so the record survives
whatever happens to the request that saw it (DESIGN rule 5). What went wrong is
stored as a code with parameters (``detail_code``, ``detail_params``), never as an
English sentence, so each reader sees it in their own language; ``detail`` keeps
only what a person typed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import (
    AuditAction,
    Channel,
    Entitlement,
    Failure,
    FailureReason,
    FailureStatus,
    User,
)
from terminal.services.audit import record_event
from terminal.text import clean_text

log = logging.getLogger("terminal")

# Failed agent transactions are settled or reversed within T+5 (RELIABILITY.md).
FOLLOW_UP_DAYS = 5

# Service refusals that are failed attempts at paying someone, and their reason.
REFUSAL_REASONS: dict[str, FailureReason] = {
    "insufficient_cash": FailureReason.INSUFFICIENT_CASH,
}


def follow_up_due(day: date) -> date:
    """Return when a case opened on a day must be settled."""
    return day + timedelta(days=FOLLOW_UP_DAYS)


def params_of(failure: Failure) -> dict[str, Any]:
    """Return a failure's detail parameters."""
    if not failure.detail_params:
        return {}
    try:
        value = json.loads(failure.detail_params)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def log_failure(
    session: Session,
    *,
    user: User | None,
    reason: FailureReason,
    detail_code: str | None = None,
    params: Mapping[str, Any] | None = None,
    detail: str = "",
    beneficiary_id: int | None = None,
    entitlement_id: int | None = None,
    channel: Channel | None = None,
    provider_ref: str | None = None,
) -> Failure:
    """Record a failed attempt in its own committed transaction, with its audit event."""
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        if entitlement_id is not None and beneficiary_id is None:
            # A case about an entitlement is about its beneficiary (a payout finds
            # the cases it settles through the beneficiary).
            beneficiary_id = session.scalar(
                select(Entitlement.beneficiary_id).where(Entitlement.id == entitlement_id)
            )
        failure = Failure(
            beneficiary_id=beneficiary_id,
            entitlement_id=entitlement_id,
            reason=reason,
            detail=clean_text(detail)[:1000],
            detail_code=detail_code,
            detail_params=json.dumps(dict(params), ensure_ascii=False, sort_keys=True)
            if params
            else None,
            channel=channel,
            provider_ref=provider_ref,
            point_id=user.payout_point_id if user else None,
            user_id=user.id if user else None,
            status=FailureStatus.OPEN,
            due_by=follow_up_due(today_local()),
            note="",
        )
        session.add(failure)
        session.flush()
        record_event(
            session,
            actor=user.username if user else "system",
            action=AuditAction.FAILURE_RECORDED,
            object_type="failure",
            object_id=failure.id,
            data={
                "reason": reason.value,
                "detail_code": detail_code,
                "beneficiary_id": beneficiary_id,
                "entitlement_id": entitlement_id,
                "channel": channel.value if channel else None,
            },
        )
    log.info("failure recorded: id=%s reason=%s", failure.id, reason.value)
    return failure
