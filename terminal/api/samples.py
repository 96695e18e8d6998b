"""``/api/v1/samples``: payment verification by sampling, for auditors' own tools.

The same service as the pages (``services.sampling``): draw a sample, read it with
what is needed to reach each person, record each person's answer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from flask import g
from pydantic import BaseModel, Field

from terminal.api import endpoint, parse_body, reply
from terminal.api.schemas import ErrorBody, Strict
from terminal.db import get_session
from terminal.money import MAX_AMOUNT
from terminal.services import sampling

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


class SampleCreate(Strict):
    """What to sample: a period, a point or a commune, a size or a percentage."""

    period: str = Field(min_length=1, max_length=7, examples=["2021-10"])
    point: str | None = Field(default=None, max_length=16)
    commune: int | str | None = Field(default=None, description="a commune's id or exact name")
    size: int | None = Field(default=None, description=f"1 to {sampling.MAX_SIZE}")
    percent: int | None = Field(default=None, description="1 to 100, rounded up")
    seed: str | None = Field(default=None, max_length=64, description="to redraw a sample")


class SampleAnswerCreate(Strict):
    """What the person says they received."""

    answer: Literal["in_full", "not_received", "other_amount"]
    reported: int | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="đồng")
    note: str | None = Field(default=None, max_length=500)


class SampleItemBody(BaseModel):
    """One sampled payout, who to reach, and the answer if there is one."""

    item_id: int
    payout_id: int
    receipt_no: str | None
    paid_at: datetime
    amount: int
    channel: str
    payout_status: str
    point: str
    staff: str
    beneficiary_code: str
    beneficiary_name: str
    commune: str
    village: str
    address: str
    phone: str
    id_number: str = Field(description="masked")
    collector_type: str
    proxy_name: str
    proxy_relationship: str
    answer: str | None
    reported: int | None
    difference: int | None
    note: str
    answered_by: str
    answered_at: datetime | None
    failure_id: int | None


class SampleBody(BaseModel):
    """A sample with its progress and its payouts."""

    id: int
    period: str
    point: str | None
    commune: str | None
    requested_size: int | None
    requested_percent: int | None
    population: int
    size: int
    answered: int
    discrepancies: int
    seed: str
    created_by: str
    created_at: datetime
    items: list[SampleItemBody]


def _body(sample: Any) -> SampleBody:
    """Return a sample as the API shows it."""
    session = get_session()
    summary = sampling.summary_of(session, g.user, sample)
    return SampleBody(
        id=summary.id,
        period=summary.period,
        point=summary.point,
        commune=summary.commune,
        requested_size=summary.requested_size,
        requested_percent=summary.requested_percent,
        population=summary.population,
        size=summary.size,
        answered=summary.answered,
        discrepancies=summary.discrepancies,
        seed=sample.seed,
        created_by=summary.created_by,
        created_at=summary.created_at,
        items=[SampleItemBody(**row) for row in sampling.rows(session, g.user, sample)],
    )


@endpoint(
    "/samples",
    "POST",
    summary="Draw a random sample of a period's payouts at a point or in a commune (auditors)",
    permission="sample",
    body=SampleCreate,
    responses={201: SampleBody, 422: ErrorBody, **ERRORS},
)
def create_sample() -> Any:
    """Draw and record a sample; the same seed draws the same payouts."""
    data = parse_body(SampleCreate)
    sample = sampling.draw_sample(
        get_session(),
        g.user,
        period=data.period,
        point_code=data.point,
        commune=data.commune,
        size=data.size,
        percent=data.percent,
        seed=data.seed,
    )
    return reply(_body(sample), 201)


@endpoint(
    "/samples/<int:sample_id>",
    "GET",
    summary="A sample: its payouts, who to reach, the answers so far (auditors)",
    permission="sample",
    responses={200: SampleBody, **ERRORS},
)
def get_sample(sample_id: int) -> Any:
    """Return a sample with its payouts and answers."""
    return reply(_body(sampling.get_sample(get_session(), g.user, sample_id)))


@endpoint(
    "/samples/<int:sample_id>/items/<int:item_id>/answer",
    "POST",
    summary="Record what a sampled person received; anything but in full opens a case",
    permission="sample",
    body=SampleAnswerCreate,
    responses={200: SampleItemBody, 409: ErrorBody, **ERRORS},
)
def answer_sample_item(sample_id: int, item_id: int) -> Any:
    """Record one answer (final: a second answer is 409 already_answered)."""
    data = parse_body(SampleAnswerCreate)
    session = get_session()
    sampling.get_sample(session, g.user, sample_id)
    sampling.record_answer(
        session,
        g.user,
        item_id=item_id,
        sample_id=sample_id,
        answer=data.answer,
        reported_vnd=data.reported,
        note=data.note,
    )
    sample = sampling.get_sample(session, g.user, sample_id)
    row = next(r for r in sampling.rows(session, g.user, sample) if r["item_id"] == item_id)
    return reply(SampleItemBody(**row))
