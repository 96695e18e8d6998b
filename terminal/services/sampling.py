"""Payment verification by sampling: the check that catches skimming at agent points.

An auditor draws a random sample of a period's payouts at one point or in one
commune, then visits or calls each person and records what they say they got: in
full, nothing, or another amount. Anything but "in full" opens a follow-up case at
the payout's point, so the point's supervisor chases it like any other case.

A draw is reproducible: ``random.Random(seed)`` over the population's payout ids
in id order, the seed recorded with the sample, so anyone can redraw it and check
the auditor did not pick the payouts by hand. Answers are final: a correction goes
through the follow-up case, never by answering again.
"""

from __future__ import annotations

import json
import logging
import random
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from terminal.clock import to_local, today_local
from terminal.db import write_transaction
from terminal.models import (
    Area,
    AreaLevel,
    AuditAction,
    Beneficiary,
    CollectorType,
    Entitlement,
    Failure,
    FailureNote,
    FailureReason,
    FailureStatus,
    PaymentSample,
    PaymentSampleItem,
    Payout,
    PayoutLine,
    PayoutPoint,
    PayoutStatus,
    Period,
    SampleAnswer,
    User,
    utcnow,
)
from terminal.models.base import MAX_ID
from terminal.money import InvalidAmount, parse_vnd
from terminal.policy import Permission, require
from terminal.services.audit import EventData, record_events
from terminal.services.errors import Conflict, InvalidInput, NotFound, Refused
from terminal.services.failures import follow_up_due
from terminal.services.roster import parse_period
from terminal.text import clean_text, mask_id, mask_phone

log = logging.getLogger("terminal")

# A sample is visited or called one person at a time: a few hundred is a month's work.
MAX_SIZE = 500
MAX_NOTE = 500
# Seeds are printed on the sample and typed back to redraw it: short visible ASCII.
SEED_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
DETAIL_CODES = {
    SampleAnswer.NOT_RECEIVED: "sampling.not_received",
    SampleAnswer.OTHER_AMOUNT: "sampling.other_amount",
}
LIST_LIMIT = 200


# ---- drawing ------------------------------------------------------------------------


def _whole(value: int | str | None, what: str) -> int | None:
    """Return a typed whole number (or None when blank), refusing anything else."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a whole number", code="sample_size_invalid")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise InvalidInput(f"{what} must be a whole number", code="sample_size_invalid")
    return int(text)


def sample_size(population: int, *, size: int | None, percent: int | None) -> int:
    """Return how many payouts a sample of a population draws.

    A size larger than the population takes it all; a percentage rounds up, so a
    sample is never empty.
    """
    # Integer arithmetic: -(-a // b) is a / b rounded up, without a float in sight.
    wanted = -(-population * percent // 100) if percent is not None else (size or 0)
    return max(1, min(wanted, population))


def _checked_numbers(
    size: int | str | None, percent: int | str | None
) -> tuple[int | None, int | None]:
    """Return the size or the percentage asked for: exactly one, within bounds."""
    size_ = _whole(size, "the size")
    percent_ = _whole(percent, "the percentage")
    if (size_ is None) == (percent_ is None):
        raise InvalidInput(
            "give either a number of payouts or a percentage", code="sample_size_required"
        )
    if size_ is not None and not 1 <= size_ <= MAX_SIZE:
        raise InvalidInput(
            f"the size must be 1 to {MAX_SIZE}", code="sample_size_invalid", max=MAX_SIZE
        )
    if percent_ is not None and not 1 <= percent_ <= 100:
        raise InvalidInput("the percentage must be 1 to 100", code="sample_percent_invalid")
    return size_, percent_


def _checked_seed(seed: str | None) -> str:
    """Return the seed given (checked) or a new random one."""
    if seed is None or not str(seed).strip():
        return secrets.token_hex(8)
    text = str(seed).strip()
    if not SEED_RE.fullmatch(text):
        raise InvalidInput(
            "the seed is 1 to 64 letters, digits or . _ : -", code="sample_seed_invalid"
        )
    return text


def _commune(session: Session, commune: int | str) -> Area:
    """Return a commune by id (or a text of digits) or by exact name, or refuse."""
    text = str(commune).strip()
    if text.isascii() and text.isdigit() and len(text) <= 18:
        area = session.get(Area, int(text)) if 1 <= int(text) <= MAX_ID else None
        if area is not None and area.level is AreaLevel.COMMUNE:
            return area
    else:
        from terminal.text import fold

        found = list(
            session.scalars(
                select(Area)
                .where(Area.level == AreaLevel.COMMUNE, Area.name_key == fold(text[:120]))
                .limit(2)
            )
        )
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise InvalidInput(
                "two communes have this name: choose one by id", code="commune_ambiguous"
            )
    raise NotFound("no such commune", code="commune_not_found")


def _scope(
    session: Session, point_code: str | None, commune: int | str | None
) -> tuple[PayoutPoint | None, Area | None]:
    """Return the point or the commune sampled: exactly one of them."""
    point_code = (point_code or "").strip() or None
    commune = None if commune is None or not str(commune).strip() else commune
    if (point_code is None) == (commune is None):
        raise InvalidInput("choose a payout point or a commune", code="sample_scope_required")
    if point_code is not None:
        from terminal.services.places import get_point

        return get_point(session, point_code[:16]), None
    assert commune is not None
    return None, _commune(session, commune)


def population_query(period_id: int, *, point_id: int | None, commune_id: int | None) -> Any:
    """Return the query of the payout ids a sample draws from, in id order.

    The period's completed payouts that paid an entitlement of the period through a
    line still live, at the point or to people of the commune (where they live, not
    where they were paid).
    """
    of_period = (
        select(PayoutLine.payout_id)
        .join(Entitlement, Entitlement.id == PayoutLine.entitlement_id)
        .where(Entitlement.period_id == period_id, PayoutLine.reversed_at.is_(None))
    )
    query = select(Payout.id).where(
        Payout.status == PayoutStatus.COMPLETED, Payout.id.in_(of_period)
    )
    if point_id is not None:
        query = query.where(Payout.point_id == point_id)
    if commune_id is not None:
        query = query.where(
            Payout.beneficiary_id.in_(
                select(Beneficiary.id).where(Beneficiary.commune_id == commune_id)
            )
        )
    return query.order_by(Payout.id)


def draw(population: Sequence[int], size: int, seed: str) -> list[int]:
    """Return the payout ids a seed draws from a population (ids in id order)."""
    return sorted(random.Random(seed).sample(list(population), size))


def draw_sample(
    session: Session,
    user: User,
    *,
    period: str,
    point_code: str | None = None,
    commune: int | str | None = None,
    size: int | str | None = None,
    percent: int | str | None = None,
    seed: str | None = None,
) -> PaymentSample:
    """Draw and record a sample of a period's payouts at a point or in a commune (audited)."""
    require(user, Permission.SAMPLE)
    code = parse_period(period)
    size_, percent_ = _checked_numbers(size, percent)
    seed_ = _checked_seed(seed)
    actor_id, actor = user.id, user.username
    with write_transaction(session):
        period_row = session.scalar(select(Period).where(Period.code == code))
        if period_row is None:
            raise NotFound("no such payment period", code="period_not_found")
        point, area = _scope(session, point_code, commune)
        ids = list(
            session.scalars(
                population_query(
                    period_row.id,
                    point_id=point.id if point else None,
                    commune_id=area.id if area else None,
                )
            )
        )
        if not ids:
            raise Refused(
                "no completed payout of this period to sample here", code="sample_population_empty"
            )
        count = sample_size(len(ids), size=size_, percent=percent_)
        if count > MAX_SIZE:
            raise Refused(
                f"the sample would have {count} payouts; at most {MAX_SIZE}",
                code="sample_too_large",
                size=count,
                max=MAX_SIZE,
            )
        drawn = draw(ids, count, seed_)
        sample = PaymentSample(
            period=code,
            point_id=point.id if point else None,
            commune_id=area.id if area else None,
            requested_size=size_,
            requested_percent=percent_,
            population=len(ids),
            seed=seed_,
            created_by_id=actor_id,
        )
        session.add(sample)
        session.flush()
        session.add_all(PaymentSampleItem(sample_id=sample.id, payout_id=i) for i in drawn)
        session.flush()
        record_events(
            session,
            actor=actor,
            events=[
                EventData(
                    AuditAction.SAMPLE_DRAWN,
                    "payment_sample",
                    sample.id,
                    {
                        "period": code,
                        "point": point.code if point else None,
                        "commune_id": area.id if area else None,
                        "commune": area.name if area else None,
                        "requested_size": size_,
                        "requested_percent": percent_,
                        "population": len(ids),
                        "size": count,
                        "seed": seed_,
                        "payout_ids": drawn,
                    },
                )
            ],
        )
    log.info("sample drawn: id=%s size=%s population=%s", sample.id, count, len(ids))
    return sample


# ---- answering --------------------------------------------------------------------


def _reported(value: int | str | None) -> int | None:
    """Return an amount the person says they got (whole đồng, 0 allowed), or None."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return parse_vnd(value, allow_zero=True)
    except InvalidAmount as exc:
        raise InvalidInput(str(exc), code="amount_invalid") from None


def _checked_answer(
    answer: SampleAnswer | str | None, reported: int | None, paid: int
) -> tuple[SampleAnswer, int]:
    """Return the answer and the amount it says the person got, or refuse a contradiction."""
    try:
        kind = SampleAnswer(answer) if answer is not None else None
    except ValueError:
        kind = None
    if kind is None:
        raise InvalidInput(
            "the answer is in_full, not_received or other_amount", code="sample_answer_invalid"
        )
    if kind is SampleAnswer.OTHER_AMOUNT:
        if reported is None:
            raise InvalidInput(
                "give the amount the person says they received", code="sample_amount_required"
            )
        if reported == paid:
            raise InvalidInput(
                "that is the amount paid: answer 'in full'", code="sample_amount_same"
            )
        return kind, reported
    expected = paid if kind is SampleAnswer.IN_FULL else 0
    # One amount box serves the three buttons: an amount typed then "in full" or
    # "not received" is a slip, not an answer to guess at.
    if reported is not None and reported != expected:
        raise InvalidInput(
            "the amount typed contradicts the answer", code="sample_amount_contradicts"
        )
    return kind, expected


def get_sample(session: Session, user: User, sample_id: int) -> PaymentSample:
    """Return a sample, or NotFound."""
    require(user, Permission.SAMPLE)
    sample = session.get(PaymentSample, sample_id) if 1 <= sample_id <= MAX_ID else None
    if sample is None:
        raise NotFound("no such sample", code="sample_not_found")
    return sample


def record_answer(
    session: Session,
    user: User,
    *,
    item_id: int,
    answer: SampleAnswer | str | None,
    reported_vnd: int | str | None = None,
    note: str | None = None,
    sample_id: int | None = None,
) -> PaymentSampleItem:
    """Record what a sampled person says they received (audited); open a case if not in full.

    ``sample_id``, when given, must be the item's sample (a page's URL names both).
    """
    require(user, Permission.SAMPLE)
    reported = _reported(reported_vnd)
    text = clean_text(note or "")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters", code="sample_note_invalid")
    actor_id, actor = user.id, user.username
    with write_transaction(session):
        item = (
            session.scalar(
                select(PaymentSampleItem).where(PaymentSampleItem.id == item_id).with_for_update()
            )
            if 1 <= item_id <= MAX_ID
            else None
        )
        if item is None or (sample_id is not None and item.sample_id != sample_id):
            raise NotFound("no such sampled payout", code="sample_item_not_found")
        if item.answer is not None:
            raise Conflict(
                "this payout was already answered; correct it through its case",
                code="already_answered",
                failure_id=item.failure_id,
            )
        payout = session.get(Payout, item.payout_id)
        assert payout is not None  # a foreign key
        kind, amount = _checked_answer(answer, reported, payout.amount_vnd)
        now = utcnow()
        item.answer = kind
        item.reported_vnd = amount
        item.note = text or None
        item.answered_by_id = actor_id
        item.answered_at = now
        events: list[EventData] = []
        if kind is not SampleAnswer.IN_FULL:
            failure = _open_case(session, item, payout, kind, amount, actor_id, text)
            item.failure_id = failure.id
            events.append(
                EventData(
                    AuditAction.FAILURE_RECORDED,
                    "failure",
                    failure.id,
                    {
                        "reason": failure.reason.value,
                        "detail_code": failure.detail_code,
                        "beneficiary_id": failure.beneficiary_id,
                        "entitlement_id": failure.entitlement_id,
                        "channel": failure.channel.value if failure.channel else None,
                        "case": True,
                        "sample_id": item.sample_id,
                    },
                )
            )
        session.flush()
        events.append(
            EventData(
                AuditAction.SAMPLE_ANSWERED,
                "payment_sample_item",
                item.id,
                {
                    "sample_id": item.sample_id,
                    "payout_id": payout.id,
                    "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
                    "answer": kind.value,
                    "paid_vnd": payout.amount_vnd,
                    "reported_vnd": amount,
                    "failure_id": item.failure_id,
                    "note": bool(text),
                },
            )
        )
        record_events(session, actor=actor, events=events)
    log.info("sample answered: item=%s answer=%s case=%s", item.id, kind.value, item.failure_id)
    return item


def _open_case(
    session: Session,
    item: PaymentSampleItem,
    payout: Payout,
    kind: SampleAnswer,
    reported: int,
    actor_id: int,
    note: str,
) -> Failure:
    """Open the follow-up case of a discrepancy, at the payout's point.

    Not ``log_failure``: that commits on its own and files the case at the user's
    point, and an auditor has none; here the case must land at the point that paid,
    in the answer's own transaction. The case names the entitlement paid, so a later
    payout to the same person does not close it (cases without an entitlement close
    on the person's next payout); it closes when that entitlement is paid again after
    a reversal, or by hand.
    """
    sample = session.get(PaymentSample, item.sample_id)
    assert sample is not None
    entitlement_id = session.scalar(
        select(PayoutLine.entitlement_id)
        .join(Entitlement, Entitlement.id == PayoutLine.entitlement_id)
        .join(Period, Period.id == Entitlement.period_id)
        .where(PayoutLine.payout_id == payout.id, Period.code == sample.period)
        .order_by(PayoutLine.id)
        .limit(1)
    )
    params = {
        "sample_id": sample.id,
        "period": sample.period,
        "receipt_no": payout.receipt.receipt_no if payout.receipt else "—",
        "amount": payout.amount_vnd,
        "reported": reported,
    }
    failure = Failure(
        is_case=True,
        beneficiary_id=payout.beneficiary_id,
        entitlement_id=entitlement_id,
        reason=FailureReason.OTHER,
        detail="",
        detail_code=DETAIL_CODES[kind],
        detail_params=json.dumps(params, ensure_ascii=False, sort_keys=True),
        channel=payout.channel,
        provider_ref=payout.provider_ref,
        point_id=payout.point_id,
        user_id=actor_id,
        status=FailureStatus.OPEN,
        due_by=follow_up_due(today_local(), FailureReason.OTHER),
        note=note,
    )
    session.add(failure)
    session.flush()
    if note:
        # The auditor's words start the case's thread, signed.
        session.add(FailureNote(failure_id=failure.id, user_id=actor_id, text=note))
    return failure


# ---- reading ----------------------------------------------------------------------


@dataclass(frozen=True)
class SampleSummary:
    """One sample as the list shows it."""

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
    created_by: str
    created_at: datetime

    @property
    def done(self) -> bool:
        """Tell whether every sampled payout has its answer."""
        return self.answered == self.size


def _counts(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int, int]]:
    """Return per sample: items, answered, answered other than in full."""
    if not ids:
        return {}
    rows = session.execute(
        select(
            PaymentSampleItem.sample_id,
            func.count(PaymentSampleItem.id),
            func.count(PaymentSampleItem.answer),
            func.count(PaymentSampleItem.failure_id),
        )
        .where(PaymentSampleItem.sample_id.in_(ids))
        .group_by(PaymentSampleItem.sample_id)
    )
    return {sample_id: (total, answered, bad) for sample_id, total, answered, bad in rows}


def list_samples(session: Session, user: User, *, limit: int = LIST_LIMIT) -> list[SampleSummary]:
    """Return the latest samples, newest first, with their progress."""
    require(user, Permission.SAMPLE)
    samples = list(
        session.scalars(select(PaymentSample).order_by(PaymentSample.id.desc()).limit(limit))
    )
    counts = _counts(session, [s.id for s in samples])
    return [_summary(session, s, counts.get(s.id, (0, 0, 0))) for s in samples]


def _counts_of(session: Session, sample: PaymentSample) -> tuple[int, int, int]:
    """Return a sample's items, answered and discrepancies."""
    return _counts(session, [sample.id]).get(sample.id, (0, 0, 0))


def _summary(
    session: Session, sample: PaymentSample, counts: tuple[int, int, int]
) -> SampleSummary:
    """Return a sample's list row."""
    point = session.get(PayoutPoint, sample.point_id) if sample.point_id else None
    area = session.get(Area, sample.commune_id) if sample.commune_id else None
    author = session.get(User, sample.created_by_id)
    total, answered, bad = counts
    return SampleSummary(
        id=sample.id,
        period=sample.period,
        point=point.code if point else None,
        commune=area.name if area else None,
        requested_size=sample.requested_size,
        requested_percent=sample.requested_percent,
        population=sample.population,
        size=total,
        answered=answered,
        discrepancies=bad,
        created_by=author.username if author else "",
        created_at=to_local(sample.created_at),
    )


def summary_of(session: Session, user: User, sample: PaymentSample) -> SampleSummary:
    """Return a sample's progress."""
    require(user, Permission.SAMPLE)
    return _summary(session, sample, _counts_of(session, sample))


def rows(session: Session, user: User, sample: PaymentSample) -> list[dict[str, Any]]:
    """Return a sample's payouts with what the auditor needs to reach each person.

    The phone is shown in full: the auditor's task is to call the person (DESIGN
    rule 8, "as much as the task needs"). ID numbers stay masked: a visit checks
    the card in hand, it needs only the last digits to be sure of the person.
    """
    require(user, Permission.SAMPLE)
    items = list(
        session.scalars(
            select(PaymentSampleItem)
            .where(PaymentSampleItem.sample_id == sample.id)
            .order_by(PaymentSampleItem.id)
        )
    )
    payouts = {
        p.id: p
        for p in session.scalars(select(Payout).where(Payout.id.in_([i.payout_id for i in items])))
    }
    users = {
        u.id: u.username
        for u in session.scalars(
            select(User).where(User.id.in_({i.answered_by_id for i in items if i.answered_by_id}))
        )
    }
    result = []
    for item in items:
        payout = payouts[item.payout_id]
        person = payout.beneficiary
        proxy = payout.proxy if payout.collector_type is CollectorType.PROXY else None
        result.append(
            {
                "item_id": item.id,
                "payout_id": payout.id,
                "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
                "paid_at": to_local(payout.paid_at),
                "amount": payout.amount_vnd,
                "channel": payout.channel.value,
                "payout_status": payout.status.value,
                "point": payout.point.code,
                "staff": payout.user.username,
                "beneficiary_code": person.code,
                "beneficiary_name": person.full_name,
                "commune": person.commune.name,
                "village": person.village,
                "address": person.address,
                "phone": person.phone or "",
                "id_number": mask_id(person.id_number),
                "collector_type": payout.collector_type.value,
                "proxy_name": proxy.full_name if proxy else "",
                "proxy_relationship": proxy.relationship_label if proxy else "",
                "answer": item.answer.value if item.answer else None,
                "reported": item.reported_vnd,
                "difference": (
                    item.reported_vnd - payout.amount_vnd if item.reported_vnd is not None else None
                ),
                "note": item.note or "",
                "answered_by": users.get(item.answered_by_id or 0, ""),
                "answered_at": to_local(item.answered_at) if item.answered_at else None,
                "failure_id": item.failure_id,
            }
        )
    return result


# ---- export -------------------------------------------------------------------------

EXPORT_COLUMNS = (
    "sample_id",
    "period",
    "scope",
    "seed",
    "item_id",
    "receipt_no",
    "paid_at",
    "point",
    "staff",
    "beneficiary_code",
    "beneficiary_name",
    "commune",
    "village",
    "phone",
    "collector_type",
    "proxy_name",
    "amount",
    "answer",
    "reported",
    "difference",
    "note",
    "answered_by",
    "answered_at",
    "case",
)


def export(session: Session, user: User, sample: PaymentSample, fmt: str) -> tuple[bytes, int]:
    """Return a sample with its answers as CSV or XLSX, and its row count.

    The export is the record of the check, kept and passed on: phones are masked
    there (the page, where the auditor calls, shows them in full).
    """
    from terminal.services.followup import table_export

    require(user, Permission.SAMPLE)
    if fmt not in ("csv", "xlsx"):
        raise InvalidInput("the format is csv or xlsx", code="invalid_request")
    summary = summary_of(session, user, sample)
    scope = summary.point or summary.commune or ""
    lines = rows(session, user, sample)

    def cells(row: dict[str, Any]) -> list[Any]:
        return [
            sample.id,
            sample.period,
            scope,
            sample.seed,
            row["item_id"],
            row["receipt_no"] or "",
            row["paid_at"].strftime("%d/%m/%Y %H:%M"),
            row["point"],
            row["staff"],
            row["beneficiary_code"],
            row["beneficiary_name"],
            row["commune"],
            row["village"],
            mask_phone(row["phone"]),
            row["collector_type"],
            row["proxy_name"],
            row["amount"],
            row["answer"] or "",
            "" if row["reported"] is None else row["reported"],
            "" if row["difference"] is None else row["difference"],
            row["note"],
            row["answered_by"],
            row["answered_at"].strftime("%d/%m/%Y %H:%M") if row["answered_at"] else "",
            row["failure_id"] or "",
        ]

    body = table_export(f"sample-{sample.id}", EXPORT_COLUMNS, map(cells, lines), fmt)
    return body, len(lines)


def choices(session: Session) -> dict[str, list[tuple[str, str]]]:
    """Return what the draw form offers: periods (newest first), points, communes."""
    periods = [(c, c) for c in session.scalars(select(Period.code).order_by(Period.code.desc()))]
    points = [
        (p.code, f"{p.code} · {p.name}")
        for p in session.scalars(select(PayoutPoint).order_by(PayoutPoint.code))
    ]
    communes = [
        (str(a.id), f"{a.name} · {a.district_name}")
        for a in session.scalars(
            select(Area).where(Area.level == AreaLevel.COMMUNE).order_by(Area.name_key, Area.id)
        )
    ]
    return {"periods": periods, "points": points, "communes": communes}
