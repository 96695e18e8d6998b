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

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from terminal.clock import day_bounds, today_local
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

# Attempts: a wrong card or a missing paper at the counter is usually set right on the
# spot, so one is only on record. The third of a person's attempts in a day, or one a
# person escalates (logs it by hand or through the API), is a case. Every other
# reason is work from the start: someone went unpaid for a reason outside the counter.
ATTEMPT_REASONS = frozenset(
    {
        FailureReason.ID_MISMATCH,
        FailureReason.QR_INVALID,
        FailureReason.PROXY_NOT_AUTHORIZED,
        FailureReason.PROXY_EXPIRED,
    }
)
ATTEMPTS_MAKING_A_CASE = 3

# Days to settle a case, per reason (the rest: FOLLOW_UP_DAYS). Money that may have
# left an account and a terminal error are chased the next day.
DEADLINE_DAYS: dict[FailureReason, int] = {
    FailureReason.PROVIDER_TIMEOUT: 1,
    FailureReason.SYSTEM_ERROR: 1,
    FailureReason.CREDITED_NOT_WITHDRAWABLE: 2,
    FailureReason.OTP_NOT_RECEIVED: 2,
    FailureReason.INSUFFICIENT_CASH: 1,
    FailureReason.RECIPIENT_DECEASED: 10,
}


def deadline_days(reason: FailureReason) -> int:
    """Return how many days a case of a reason has before it is overdue."""
    return DEADLINE_DAYS.get(reason, FOLLOW_UP_DAYS)


def follow_up_due(day: date, reason: FailureReason | None = None) -> date:
    """Return when a case opened on a day must be settled."""
    return day + timedelta(days=FOLLOW_UP_DAYS if reason is None else deadline_days(reason))


def _attempts_today(session: Session, beneficiary_id: int) -> int:
    """Return how many attempts were recorded today (Vietnam) for a person."""
    start, end = day_bounds(today_local())
    return int(
        session.scalar(
            select(func.count(Failure.id)).where(
                Failure.beneficiary_id == beneficiary_id,
                Failure.reason.in_(ATTEMPT_REASONS),
                Failure.created_at >= start,
                Failure.created_at < end,
            )
        )
        or 0
    )


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
    escalated: bool = False,
) -> Failure:
    """Record a failed attempt in its own committed transaction, with its audit event.

    It opens a follow-up case unless it is an attempt (``ATTEMPT_REASONS``) that is
    neither escalated nor the person's third of the day.
    """
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        failure = add_failure(
            session,
            user=user,
            reason=reason,
            detail_code=detail_code,
            params=params,
            detail=detail,
            beneficiary_id=beneficiary_id,
            entitlement_id=entitlement_id,
            channel=channel,
            provider_ref=provider_ref,
            escalated=escalated,
        )
    log.info("failure recorded: id=%s reason=%s", failure.id, reason.value)
    return failure


def add_failure(
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
    escalated: bool = False,
    point_id: int | None = None,
) -> Failure:
    """Add a failure and its audit event inside the caller's write transaction.

    For a failure that belongs with other writes (a tablet's synced item and the
    case it opens commit together); ``log_failure`` is the one-off form.
    """
    if entitlement_id is not None and beneficiary_id is None:
        # A case about an entitlement is about its beneficiary (a payout finds
        # the cases it settles through the beneficiary).
        beneficiary_id = session.scalar(
            select(Entitlement.beneficiary_id).where(Entitlement.id == entitlement_id)
        )
    is_case = escalated or reason not in ATTEMPT_REASONS
    if not is_case and beneficiary_id is not None:
        is_case = _attempts_today(session, beneficiary_id) + 1 == ATTEMPTS_MAKING_A_CASE
    failure = Failure(
        is_case=is_case,
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
        point_id=point_id if point_id is not None else (user.payout_point_id if user else None),
        user_id=user.id if user else None,
        status=FailureStatus.OPEN,
        due_by=follow_up_due(today_local(), reason),
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
            "case": is_case,
        },
    )
    return failure
