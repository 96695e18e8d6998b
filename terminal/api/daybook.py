"""``/api/v1/daybook``: a point's daily settlement, and the supervisor's closing of a day.

What the day book's pages show and do, for tablets and scripts. The service reads
and writes (with the audit event); these handlers parse, call and answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from flask import g
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from terminal.api import endpoint, parse_body, parse_query, reply
from terminal.api.schemas import DAY_OR_EMPTY, ErrorBody, IsoDate, Strict
from terminal.clock import check_day
from terminal.db import get_session
from terminal.money import MAX_AMOUNT
from terminal.services import daybook

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


# A day asked for: ISO text only, and within 2000-01-01..2100-12-31 (terminal/clock.py).
BoundedDay = Annotated[IsoDate, AfterValidator(check_day)]


def _empty_as_none(value: object) -> object:
    """Read an empty query value (``?date=``) as not given."""
    return None if value == "" else value


class DaybookQuery(BaseModel):
    """Which point and day: the caller's point and today in Vietnam by default."""

    model_config = ConfigDict(extra="ignore")

    point: Annotated[str | None, BeforeValidator(_empty_as_none)] = Field(
        default=None, max_length=16, description="point code; auditors must give one"
    )
    date: Annotated[BoundedDay | None, BeforeValidator(_empty_as_none), DAY_OR_EMPTY] = None


class DaybookPayout(BaseModel):
    """One payout of the day."""

    payout_id: int
    receipt_no: str
    paid_at: datetime
    beneficiary_code: str
    beneficiary_name: str
    amount: int
    channel: str = Field(description="cash, cash_home or account")
    collector: str = Field(description="beneficiary or proxy")
    collector_name: str
    staff: str
    status: str = Field(description="completed, pending or reversed")
    reversed_at: datetime | None


class DaybookChannel(BaseModel):
    """The standing payouts of one channel."""

    channel: str
    count: int
    amount: int


class DaybookFigures(BaseModel):
    """What the day adds up to; ``difference`` is advance - cash paid - returned."""

    payouts: int
    cash_paid: int
    account_paid: int
    total: int
    total_in_words: str
    advance: int | None
    returned: int | None
    difference: int | None


class DaybookClosing(BaseModel):
    """Who closed the day, when, and the figures it closed on."""

    closed_at: datetime
    closed_by: str
    note: str | None
    figures: DaybookFigures


class DaybookChange(BaseModel):
    """A payout made or reversed after the day was closed."""

    kind: str = Field(description="payout or reversal")
    at: datetime
    payout_id: int
    receipt_no: str
    channel: str
    amount: int


class DaybookBody(BaseModel):
    """A point's daily settlement (bảng kê chi trả)."""

    point: str
    date: IsoDate
    closed: bool
    figures: DaybookFigures = Field(description="at closing when closed, else as of now")
    current: DaybookFigures = Field(description="the day as it stands now")
    by_channel: list[DaybookChannel]
    payouts: list[DaybookPayout]
    closing: DaybookClosing | None
    changes: list[DaybookChange] = Field(description="after closing: reversals, new payouts")


class CloseDayRequest(Strict):
    """Close a day of the supervisor's point with the cash counted back."""

    returned: int = Field(ge=0, le=MAX_AMOUNT, description="cash handed back, whole đồng")
    date: BoundedDay | None = Field(default=None, description="YYYY-MM-DD; today if none")
    note: str | None = Field(default=None, max_length=500)


def _figures(figures: daybook.Figures) -> DaybookFigures:
    """Return a settlement's figures as the API shows them."""
    from terminal.money import vnd_in_words

    return DaybookFigures(
        payouts=figures.payouts,
        cash_paid=figures.cash_paid_vnd,
        account_paid=figures.account_paid_vnd,
        total=figures.total_vnd,
        total_in_words=vnd_in_words(figures.total_vnd),
        advance=figures.advance_vnd,
        returned=figures.returned_vnd,
        difference=figures.difference_vnd,
    )


def _body(result: daybook.Settlement) -> DaybookBody:
    """Return a settlement as the API shows it."""
    closing = result.closing
    return DaybookBody(
        point=result.point.code,
        date=result.day,
        closed=result.closed,
        figures=_figures(result.figures),
        current=_figures(result.current),
        by_channel=[
            DaybookChannel(channel=t.channel.value, count=t.count, amount=t.amount_vnd)
            for t in result.by_channel
        ],
        payouts=[
            DaybookPayout(
                payout_id=r.payout_id,
                receipt_no=r.receipt_no,
                paid_at=r.paid_at,
                beneficiary_code=r.beneficiary_code,
                beneficiary_name=r.beneficiary_name,
                amount=r.amount_vnd,
                channel=r.channel.value,
                collector=r.collector.value,
                collector_name=r.collector_name,
                staff=r.staff,
                status=r.status.value,
                reversed_at=r.reversed_at,
            )
            for r in result.rows
        ],
        closing=(
            DaybookClosing(
                closed_at=closing.closed_at,
                closed_by=closing.closed_by,
                note=closing.note or None,
                figures=_figures(closing.figures),
            )
            if closing
            else None
        ),
        changes=[
            DaybookChange(
                kind=c.kind,
                at=c.at,
                payout_id=c.row.payout_id,
                receipt_no=c.row.receipt_no,
                channel=c.row.channel.value,
                amount=c.cash_vnd + c.account_vnd,
            )
            for c in result.changes
        ],
    )


@endpoint(
    "/daybook",
    "GET",
    summary="A point's daily settlement: payouts, totals by channel, cash float, closing",
    permission="audit",
    query=DaybookQuery,
    responses={200: DaybookBody, **ERRORS},
)
def get_daybook() -> Any:
    """Show a point's settlement of a day (supervisors: their own point only)."""
    query = parse_query(DaybookQuery)
    result = daybook.settlement(get_session(), g.user, point=query.point, day=query.date)
    return reply(_body(result))


@endpoint(
    "/daybook/close",
    "POST",
    summary="Close a day of the supervisor's point with the cash counted back (audited)",
    permission="supervise",
    body=CloseDayRequest,
    responses={201: DaybookBody, **ERRORS, 409: ErrorBody, 422: ErrorBody},
)
def close_daybook() -> Any:
    """Close the day; a second closing is 409 ``already_closed``, a future day 422."""
    data = parse_body(CloseDayRequest)
    session = get_session()
    row = daybook.close_day(
        session, g.user, returned_vnd=data.returned, day=data.date, note=data.note
    )
    return reply(_body(daybook.settlement(session, g.user, day=row.business_date)), 201)
