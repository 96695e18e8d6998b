"""``/api/v1/cash-float`` and ``/payouts/{id}/reversal``: running a day without the pages.

What a supervisor does on the counter's cash and result pages, for tablets and
scripts (API.md, "Running a day without the pages"). The services do the work and
write the audit events; these handlers parse, call and answer.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import g
from sqlalchemy.orm import Session

from terminal.api import endpoint, parse_body, parse_query, reply
from terminal.api.schemas import (
    AdvanceBelowPaidBody,
    CashFloatBody,
    CashFloatQuery,
    CashFloatRequest,
    ErrorBody,
    ReversalRequest,
    ReversalResponse,
)
from terminal.db import get_session
from terminal.formatting import to_local
from terminal.models import PayoutPoint
from terminal.services import cash, payouts
from terminal.services.errors import Forbidden, NotFound

# Ids are 64-bit signed integers in both databases; a larger one cannot name a payout
# (and SQLite's driver would overflow on it).
MAX_ID = 2**63 - 1


def _own_point(user: Any) -> PayoutPoint:
    """Return the caller's payout point; staff without one have no cash to show."""
    if user.payout_point is None:
        raise Forbidden("this account belongs to no payout point", code="point_required")
    point: PayoutPoint = user.payout_point
    return point


def cash_float_body(session: Session, point: PayoutPoint, day: date) -> CashFloatBody:
    """Return a point's cash of a day as the API shows it."""
    position = cash.cash_position(session, point.id, day)
    return CashFloatBody(
        point=point.code,
        date=day,
        advance=position.advance_vnd,
        paid_cash=position.paid_vnd,
        remaining=position.remaining_vnd,
        payouts=position.payouts,
    )


@endpoint(
    "/cash-float",
    "GET",
    summary="The caller's point's cash of a day: advance, cash paid, what is left",
    permission="counter",
    query=CashFloatQuery,
    responses={200: CashFloatBody, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody},
)
def get_cash_float() -> Any:
    """Show the cash of the caller's point on a day (today in Vietnam by default)."""
    query = parse_query(CashFloatQuery)
    point = _own_point(g.user)
    day = cash.check_cash_day(query.date)
    return reply(cash_float_body(get_session(), point, day))


@endpoint(
    "/cash-float",
    "PUT",
    summary="Record a day's cash advance of the supervisor's point (audited)",
    permission="supervise",
    body=CashFloatRequest,
    responses={
        200: CashFloatBody,
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        422: AdvanceBelowPaidBody,
    },
)
def put_cash_float() -> Any:
    """Record the advance; less than the cash already paid that day is refused (422
    ``advance_below_paid``), and so is any change once the day is closed (422 ``day_closed``).
    """
    data = parse_body(CashFloatRequest)
    point = _own_point(g.user)
    session = get_session()
    row = cash.set_cash_float(session, g.user, advance_vnd=data.advance, day=data.date)
    return reply(cash_float_body(session, point, row.business_date))


@endpoint(
    "/payouts/<int:payout_id>/reversal",
    "POST",
    summary="Reverse a payout of the supervisor's point: entitlements due again (audited)",
    permission="supervise",
    body=ReversalRequest,
    responses={
        200: ReversalResponse,
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        404: ErrorBody,
        409: ErrorBody,
    },
)
def create_reversal(payout_id: int) -> Any:
    """Reverse a payout with a reason; a second reversal is a 409 ``already_reversed``."""
    if not 1 <= payout_id <= MAX_ID:
        raise NotFound("no such payout", code="payout_not_found")
    data = parse_body(ReversalRequest)
    payout = payouts.reverse_payout(get_session(), g.user, payout_id, reason=data.reason)
    assert payout.reversed_at is not None
    return reply(
        ReversalResponse(
            payout_id=payout.id,
            status="reversed",
            entitlement_ids=[line.entitlement_id for line in payout.lines],
            receipt_no=payout.receipt.receipt_no if payout.receipt else None,
            amount=payout.amount_vnd,
            reversed_at=to_local(payout.reversed_at),
        )
    )
