"""The day book of a point: its daily settlement (bảng kê chi trả), the day's closing,
and the signed payout list of a commune (danh sách chi trả).

The settlement lists a point's payouts of one Vietnam day with their totals by
channel and the cash float: advance, cash paid, cash handed back, difference. The
supervisor closes the day: a ``DayClosing`` keeps the figures it closed on, with its
audit event, and from then on the day changes only through reversals and new
payouts, which the settlement shows apart as changes since closing. The cash
float's advance of a closed day is refused (``services.cash.refuse_closed_day``).

Staff are held to their own point (``policy.sees_point``); auditors read every
point and close nothing. Another point's day looks like an unknown point.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from terminal.clock import FIRST_DAY, day_bounds, to_local, today_local
from terminal.db import write_transaction
from terminal.models import (
    Area,
    AreaLevel,
    AuditAction,
    Beneficiary,
    BeneficiaryStatus,
    CashFloat,
    Channel,
    CollectorType,
    DayClosing,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    HomePayout,
    Payout,
    PayoutPoint,
    PayoutStatus,
    Period,
    PeriodStatus,
    User,
    utcnow,
)
from terminal.money import MAX_AMOUNT
from terminal.policy import Permission, commune_scope, point_of, require, sees_point
from terminal.services.audit import record_event
from terminal.services.cash import CASH_CHANNELS, lock_point_day
from terminal.services.errors import Conflict, InvalidInput, NotFound, Refused
from terminal.services.failures import follow_up_due
from terminal.services.roster import parse_period
from terminal.text import clean_text

log = logging.getLogger("terminal")

MAX_NOTE = 500
# Channels in the order the settlement lists them.
CHANNELS = (Channel.CASH, Channel.CASH_HOME, Channel.ACCOUNT)


# ---- the daily settlement ----------------------------------------------------------


@dataclass(frozen=True)
class PayoutRow:
    """One payout of the day as the settlement lists it."""

    payout_id: int
    receipt_no: str
    paid_at: datetime  # Vietnam time
    beneficiary_code: str
    beneficiary_name: str
    amount_vnd: int
    channel: Channel
    collector: CollectorType
    collector_name: str
    staff: str
    status: PayoutStatus
    reversed_at: datetime | None  # Vietnam time
    # When the terminal learnt of it: a tablet's payout, paid offline, reaches the
    # server later than it was paid. A closed day's document keeps what it knew.
    recorded_at: datetime | None = None  # Vietnam time; None: when it was paid

    @property
    def known_at(self) -> datetime:
        """Return when the terminal recorded the payout (its payment time unless synced)."""
        return self.recorded_at or self.paid_at

    @property
    def counts(self) -> bool:
        """Tell whether the payout stands (reversed or pending ones pay nothing)."""
        return self.status is PayoutStatus.COMPLETED

    @property
    def is_cash(self) -> bool:
        """Tell whether the money came out of the drawer."""
        return self.channel in CASH_CHANNELS

    def stood_at(self, moment: datetime) -> bool:
        """Tell whether the payout stood at a moment: made by then, not yet reversed."""
        if self.known_at > moment:
            return False
        if self.status is PayoutStatus.COMPLETED:
            return True
        return (
            self.status is PayoutStatus.REVERSED
            and self.reversed_at is not None
            and self.reversed_at > moment
        )


@dataclass(frozen=True)
class ChannelTotal:
    """The standing payouts of one channel: how many and how much."""

    channel: Channel
    count: int
    amount_vnd: int


@dataclass(frozen=True)
class Figures:
    """What a day adds up to: payouts standing, cash and account amounts, the float."""

    payouts: int
    cash_paid_vnd: int
    account_paid_vnd: int
    advance_vnd: int | None
    returned_vnd: int | None

    @property
    def total_vnd(self) -> int:
        """Return everything paid, cash and account."""
        return self.cash_paid_vnd + self.account_paid_vnd

    @property
    def difference_vnd(self) -> int | None:
        """Return advance - cash paid - cash returned (0 when the drawer agrees)."""
        if self.returned_vnd is None:
            return None
        return (self.advance_vnd or 0) - self.cash_paid_vnd - self.returned_vnd

    @property
    def expected_return_vnd(self) -> int:
        """Return the cash that should come back: the advance less the cash paid."""
        return (self.advance_vnd or 0) - self.cash_paid_vnd


@dataclass(frozen=True)
class Change:
    """A payout or a reversal that touched the day after it was closed."""

    kind: str  # "payout" or "reversal"
    at: datetime  # Vietnam time
    row: PayoutRow

    @property
    def cash_vnd(self) -> int:
        """Return what it did to the cash paid (a reversal gives cash back)."""
        if not self.row.is_cash:
            return 0
        return self.row.amount_vnd if self.kind == "payout" else -self.row.amount_vnd

    @property
    def account_vnd(self) -> int:
        """Return what it did to the amount paid to accounts."""
        if self.row.is_cash:
            return 0
        return self.row.amount_vnd if self.kind == "payout" else -self.row.amount_vnd


@dataclass(frozen=True)
class Closing:
    """Who closed the day, when, and the figures it closed on."""

    id: int
    closed_at: datetime  # Vietnam time
    closed_by: str
    closed_by_name: str
    note: str
    figures: Figures


@dataclass
class Settlement:
    """A point's daily settlement (bảng kê chi trả)."""

    point: PayoutPoint
    day: date
    rows: list[PayoutRow]
    current: Figures  # the day as it stands now
    closing: Closing | None = None
    changes: list[Change] = field(default_factory=list)

    @property
    def listed(self) -> list[PayoutRow]:
        """Return the payouts of the document: those made by the closing, else all."""
        if self.closing is None:
            return list(self.rows)
        return [r for r in self.rows if r.known_at <= self.closing.closed_at]

    def standing(self, row: PayoutRow) -> bool:
        """Tell whether a payout counts in the document: as at closing, else as now."""
        if self.closing is None:
            return row.counts
        return row.stood_at(self.closing.closed_at)

    @property
    def by_channel(self) -> list[ChannelTotal]:
        """Return the standing payouts per channel, every channel listed."""
        totals = []
        for channel in CHANNELS:
            rows = [r for r in self.listed if self.standing(r) and r.channel is channel]
            totals.append(ChannelTotal(channel, len(rows), sum(r.amount_vnd for r in rows)))
        return totals

    @property
    def reversed_listed(self) -> list[PayoutRow]:
        """Return the document's payouts that did not count (reversed by then)."""
        return [r for r in self.listed if not self.standing(r)]

    @property
    def figures(self) -> Figures:
        """Return the figures the document stands on: at closing, else as of now."""
        return self.closing.figures if self.closing else self.current

    @property
    def closed(self) -> bool:
        """Tell whether the supervisor closed the day."""
        return self.closing is not None


def check_day(day: date | None) -> date:
    """Return a settlement's day (today in Vietnam if none); refuse one out of range."""
    today = today_local()
    if day is None:
        return today
    if not FIRST_DAY <= day <= today:
        raise InvalidInput(
            f"the day must be between {FIRST_DAY.isoformat()} and today ({today.isoformat()})",
            code="date_out_of_range",
            earliest=FIRST_DAY.isoformat(),
            latest=today.isoformat(),
        )
    return day


def visible_point(session: Session, user: User, point: int | str | None) -> PayoutPoint:
    """Return the point a user asks for (by id or code), within their scope.

    None is the user's own point; auditors must name one. A point outside the
    user's scope answers like one that does not exist.
    """
    require(user, Permission.AUDIT)
    if point is None or point == "":
        if user.payout_point_id is None:
            raise InvalidInput("choose a payout point", code="point_missing")
        point = user.payout_point_id
    found: PayoutPoint | None = None
    if isinstance(point, int):
        found = session.get(PayoutPoint, point) if 1 <= point <= 2**62 else None
    else:
        text = str(point).strip().upper()[:16]
        found = session.scalar(select(PayoutPoint).where(PayoutPoint.code == text))
    if found is None or not sees_point(user, found.id):
        raise NotFound("no such payout point", code="point_not_found")
    return found


def points_for(session: Session, user: User) -> list[PayoutPoint]:
    """Return the points a user may choose from, by code."""
    query = select(PayoutPoint).order_by(PayoutPoint.code)
    scope = point_of(user)
    if scope is not None:
        query = query.where(PayoutPoint.id == scope)
    return list(session.scalars(query))


def _row_of(payout: Payout, received_at: datetime | None = None) -> PayoutRow:
    """Return a payout as a row of the settlement (``received_at``: synced from a tablet)."""
    proxy = payout.collector_type is CollectorType.PROXY and payout.proxy is not None
    return PayoutRow(
        payout_id=payout.id,
        receipt_no=payout.receipt.receipt_no if payout.receipt else "",
        paid_at=to_local(payout.paid_at),
        beneficiary_code=payout.beneficiary.code,
        beneficiary_name=payout.beneficiary.full_name,
        amount_vnd=payout.amount_vnd,
        channel=payout.channel,
        collector=payout.collector_type,
        collector_name=payout.proxy.full_name if proxy else payout.beneficiary.full_name,
        staff=payout.user.username,
        status=payout.status,
        reversed_at=to_local(payout.reversed_at) if payout.reversed_at else None,
        recorded_at=to_local(received_at) if received_at else None,
    )


def _figures(rows: Sequence[PayoutRow], advance: int | None, returned: int | None) -> Figures:
    """Add up the standing payouts of a day."""
    standing = [r for r in rows if r.counts]
    return Figures(
        payouts=len(standing),
        cash_paid_vnd=sum(r.amount_vnd for r in standing if r.is_cash),
        account_paid_vnd=sum(r.amount_vnd for r in standing if not r.is_cash),
        advance_vnd=advance,
        returned_vnd=returned,
    )


def _day_rows(session: Session, point_id: int, day: date) -> list[PayoutRow]:
    """Return the point's payouts of a day, in the order they were paid."""
    start, end = day_bounds(day)
    payouts = session.scalars(
        select(Payout)
        .where(Payout.point_id == point_id, Payout.paid_at >= start, Payout.paid_at < end)
        .options(lazyload(Payout.lines))
        .order_by(Payout.paid_at, Payout.id)
    ).all()
    received = dict(
        session.execute(
            select(HomePayout.payout_id, HomePayout.received_at).where(
                HomePayout.payout_id.in_([p.id for p in payouts])
            )
        ).all()
    )
    return [_row_of(p, received.get(p.id)) for p in payouts]


def _advance(session: Session, point_id: int, day: date) -> int | None:
    """Return the day's cash advance of a point, or None when none was recorded."""
    return session.scalar(
        select(CashFloat.advance_vnd).where(
            CashFloat.point_id == point_id, CashFloat.business_date == day
        )
    )


def _closing_of(session: Session, row: DayClosing) -> Closing:
    """Return a stored closing with its figures."""
    user = session.get(User, row.closed_by_id)
    return Closing(
        id=row.id,
        closed_at=to_local(row.closed_at),
        closed_by=user.username if user else "",
        closed_by_name=user.full_name if user else "",
        note=row.note or "",
        figures=Figures(
            payouts=row.payouts,
            cash_paid_vnd=row.cash_paid_vnd,
            account_paid_vnd=row.account_paid_vnd,
            advance_vnd=row.advance_vnd,
            returned_vnd=row.returned_vnd,
        ),
    )


def _changes(rows: Sequence[PayoutRow], closed_at: datetime) -> list[Change]:
    """Return the payouts made and reversed after the day was closed, in time order."""
    changes = [Change("payout", r.known_at, r) for r in rows if r.known_at > closed_at]
    changes += [
        Change("reversal", r.reversed_at, r)
        for r in rows
        if r.reversed_at is not None and r.reversed_at > closed_at
    ]
    return sorted(changes, key=lambda c: (c.at, c.row.payout_id, c.kind))


def settlement(
    session: Session, user: User, *, point: int | str | None = None, day: date | None = None
) -> Settlement:
    """Return a point's daily settlement: payouts, totals, cash float, closing, changes."""
    found = visible_point(session, user, point)
    day = check_day(day)
    rows = _day_rows(session, found.id, day)
    stored = session.scalar(
        select(DayClosing).where(DayClosing.point_id == found.id, DayClosing.business_date == day)
    )
    closing = _closing_of(session, stored) if stored is not None else None
    result = Settlement(
        point=found,
        day=day,
        rows=rows,
        current=_figures(
            rows,
            _advance(session, found.id, day),
            closing.figures.returned_vnd if closing else None,
        ),
        closing=closing,
    )
    if closing is not None:
        result.changes = _changes(rows, closing.closed_at)
    return result


def check_returned(value: Any) -> int:
    """Return the cash handed back as whole đồng, or refuse it (400 ``amount_invalid``)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_AMOUNT:
        raise InvalidInput(
            "the cash returned must be a whole number of đồng", code="amount_invalid"
        )
    return value


def check_note(note: str | None) -> str | None:
    """Return a closing's note, cleaned, or refuse one too long."""
    text = clean_text(note or "")
    if len(text) > MAX_NOTE:
        raise InvalidInput(f"a note has at most {MAX_NOTE} characters", code="closing_note_invalid")
    return text or None


def close_day(
    session: Session,
    user: User,
    *,
    returned_vnd: int,
    day: date | None = None,
    note: str | None = None,
) -> DayClosing:
    """Close a day of the supervisor's point with the cash counted back (audited).

    Refused: for another role (403), a future day (422 ``day_in_future``), a day
    already closed (409 ``already_closed``). The figures are computed under the
    point's lock, the one that recording an advance takes too.
    """
    require(user, Permission.SUPERVISE)
    if user.payout_point_id is None:
        raise Refused("only a point's supervisor closes its day", code="forbidden")
    point_id = user.payout_point_id
    returned = check_returned(returned_vnd)
    text = check_note(note)
    today = today_local()
    day = day or today
    if day > today:
        raise Refused("a day can be closed only once it has begun", code="day_in_future")
    day = check_day(day)
    try:
        with write_transaction(session):
            if lock_point_day(session, point_id, day) is not None:
                raise _already_closed(session, point_id, day)
            float_row = session.scalar(
                select(CashFloat)
                .where(CashFloat.point_id == point_id, CashFloat.business_date == day)
                .with_for_update()
            )
            figures = _figures(
                _day_rows(session, point_id, day),
                float_row.advance_vnd if float_row else None,
                returned,
            )
            now = utcnow()
            row = DayClosing(
                point_id=point_id,
                business_date=day,
                closed_by_id=user.id,
                closed_at=now,
                payouts=figures.payouts,
                cash_paid_vnd=figures.cash_paid_vnd,
                account_paid_vnd=figures.account_paid_vnd,
                advance_vnd=figures.advance_vnd,
                returned_vnd=returned,
                note=text,
            )
            session.add(row)
            if float_row is not None:
                # The float keeps its own record of the count, as the model provides.
                float_row.counted_vnd = returned
                float_row.settled_at = now
                float_row.settled_by_id = user.id
            session.flush()
            record_event(
                session,
                actor=user.username,
                action=AuditAction.DAY_CLOSED,
                object_type="day_closing",
                object_id=row.id,
                data={
                    "point_id": point_id,
                    "day": day.isoformat(),
                    "payouts": figures.payouts,
                    "cash_paid_vnd": figures.cash_paid_vnd,
                    "account_paid_vnd": figures.account_paid_vnd,
                    "advance_vnd": figures.advance_vnd,
                    "returned_vnd": returned,
                    "difference_vnd": figures.difference_vnd,
                    "note": text,
                },
            )
            if figures.difference_vnd:
                # The drawer does not agree with the day's figures: money to find.
                session.add(
                    Failure(
                        reason=FailureReason.OTHER,
                        detail="",
                        detail_code="daybook.drawer_difference",
                        detail_params=json.dumps(
                            {
                                "day": day.isoformat(),
                                "expected_vnd": figures.expected_return_vnd,
                                "returned_vnd": returned,
                                "difference_vnd": figures.difference_vnd,
                            },
                            sort_keys=True,
                        ),
                        channel=Channel.CASH,
                        point_id=point_id,
                        user_id=user.id,
                        status=FailureStatus.OPEN,
                        due_by=follow_up_due(today),
                        note="",
                        is_case=True,
                    )
                )
    except IntegrityError:
        # Two closings at once on PostgreSQL: the unique (point, day) keeps the first.
        session.rollback()
        raise _already_closed(session, point_id, day) from None
    log.info("day closed: point=%s day=%s by=%s", point_id, day.isoformat(), user.username)
    return row


def _already_closed(session: Session, point_id: int, day: date) -> Conflict:
    """Return the refusal of a second closing, naming when the first was made."""
    closed_at = session.scalar(
        select(DayClosing.closed_at).where(
            DayClosing.point_id == point_id, DayClosing.business_date == day
        )
    )
    return Conflict(
        f"the day {day.isoformat()} is already closed",
        code="already_closed",
        date=day.isoformat(),
        closed_at=to_local(closed_at).isoformat() if closed_at else None,
    )


# ---- the signed payout list of a commune ---------------------------------------------


@dataclass(frozen=True)
class ListRow:
    """One person on the signed payout list."""

    no: int
    code: str
    full_name: str
    birth_year: int
    village: str
    monthly_vnd: int
    arrears_vnd: int  # back pay decided on the roster for this period (truy lĩnh)
    earlier_periods: tuple[str, ...]  # labels such as 09/2021, oldest first
    earlier_vnd: int

    @property
    def total_vnd(self) -> int:
        """Return what the person is to be handed at the session."""
        return self.monthly_vnd + self.arrears_vnd + self.earlier_vnd


@dataclass(frozen=True)
class PayoutList:
    """The signed payout list (danh sách chi trả) of a commune for a period."""

    commune: Area
    period: Period
    rows: list[ListRow]

    @property
    def monthly_vnd(self) -> int:
        """Return the month's amounts added up."""
        return sum(r.monthly_vnd for r in self.rows)

    @property
    def arrears_vnd(self) -> int:
        """Return the back pay added up."""
        return sum(r.arrears_vnd for r in self.rows)

    @property
    def earlier_vnd(self) -> int:
        """Return the earlier unpaid months added up."""
        return sum(r.earlier_vnd for r in self.rows)

    @property
    def total_vnd(self) -> int:
        """Return the list's total."""
        return sum(r.total_vnd for r in self.rows)


def communes_for(session: Session, user: User) -> list[Area]:
    """Return the communes a user may print a list for, by district and name."""
    require(user, Permission.AUDIT)
    query = select(Area).where(Area.level == AreaLevel.COMMUNE)
    scope = commune_scope(session, user)
    if scope is not None:
        query = query.where(Area.id.in_(scope or [-1]))
    communes = list(session.scalars(query))
    return sorted(communes, key=lambda a: (a.parent.name_key if a.parent else "", a.name_key))


def open_periods(session: Session) -> list[Period]:
    """Return the open payment periods, newest first."""
    return list(
        session.scalars(
            select(Period).where(Period.status == PeriodStatus.OPEN).order_by(Period.code.desc())
        )
    )


def visible_commune(session: Session, user: User, commune: int | str | None) -> Area:
    """Return a commune the user may list, by id; one outside their scope is not found."""
    require(user, Permission.AUDIT)
    text = str(commune if commune is not None else "").strip()
    if not text:
        raise InvalidInput("choose a commune", code="commune_required")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= 2**62:
        raise NotFound("no such commune", code="commune_not_found")
    found = session.get(Area, int(text))
    scope = commune_scope(session, user)
    if (
        found is None
        or found.level is not AreaLevel.COMMUNE
        or (scope is not None and found.id not in scope)
    ):
        raise NotFound("no such commune", code="commune_not_found")
    return found


def payout_list(
    session: Session, user: User, *, commune: int | str | None, period: str | None
) -> PayoutList:
    """Return who is to be paid in a commune for a period, with their earlier unpaid months.

    On it: the commune's receiving beneficiaries with a due entitlement for the
    period (one held by an open withdrawal is being paid already, so it is left
    out), each with their due entitlements of earlier periods. Suspended, deceased
    and moved people are not paid and are not listed.
    """
    area = visible_commune(session, user, commune)
    code = parse_period(period or "")
    found = session.scalar(select(Period).where(Period.code == code))
    if found is None:
        raise NotFound(f"no period {code}", code="period_not_found")
    due = (
        Entitlement.status == EntitlementStatus.DUE,
        Entitlement.held_by_withdrawal_id.is_(None),
    )
    current = list(
        session.execute(
            select(Beneficiary, Entitlement.monthly_vnd, Entitlement.arrears_vnd)
            .join(Entitlement, Entitlement.beneficiary_id == Beneficiary.id)
            .where(
                Beneficiary.commune_id == area.id,
                Beneficiary.status == BeneficiaryStatus.ACTIVE,
                Entitlement.period_id == found.id,
                *due,
            )
            .order_by(Beneficiary.village, Beneficiary.given_key, Beneficiary.code)
        ).all()
    )
    ids = [person.id for person, _m, _a in current]
    earlier: dict[int, list[tuple[str, int]]] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        for person_id, period_code_, amount in session.execute(
            select(Entitlement.beneficiary_id, Period.code, Entitlement.amount_vnd)
            .join(Period, Period.id == Entitlement.period_id)
            .where(Entitlement.beneficiary_id.in_(chunk), Period.code < code, *due)
            .order_by(Period.code)
        ):
            earlier.setdefault(person_id, []).append((period_code_, int(amount)))
    rows = []
    for no, (person, monthly, arrears) in enumerate(current, start=1):
        before = earlier.get(person.id, [])
        rows.append(
            ListRow(
                no=no,
                code=person.code,
                full_name=person.full_name,
                birth_year=person.birth_year,
                village=person.village,
                monthly_vnd=int(monthly),
                arrears_vnd=int(arrears),
                earlier_periods=tuple(_label(c) for c, _amount in before),
                earlier_vnd=sum(amount for _c, amount in before),
            )
        )
    return PayoutList(commune=area, period=found, rows=rows)


def _label(code: str) -> str:
    """Return a period as people write it: 2021-10 -> 10/2021."""
    year, month = code.split("-")
    return f"{month}/{year}"
