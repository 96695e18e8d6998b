"""Cash floats: the day's advance of a point, the cash paid from it, what is left.

Every cash payout, at the counter or at home, is paid from the point's float of
that Vietnam day; a counter payout that the float cannot cover is refused. A home
payout synced from a tablet is not: the money was handed over already, and the
day book shows what the float did not cover. Reversed payouts no longer count, so
a reversal returns its cash to the float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from terminal.clock import FIRST_DAY, day_bounds, today_local
from terminal.db import write_transaction
from terminal.models import (
    AuditAction,
    CashFloat,
    Channel,
    DayClosing,
    Payout,
    PayoutPoint,
    PayoutStatus,
    Role,
    User,
    utcnow,
)
from terminal.policy import require
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput, NotFound, Refused
from terminal.services.places import normalize_point_code

CASH_CHANNELS = (Channel.CASH, Channel.CASH_HOME)
MAX_ADVANCE_VND = 10**13


@dataclass(frozen=True)
class CashPosition:
    """A point's cash for one day."""

    day: date
    advance_vnd: int | None
    paid_vnd: int
    payouts: int

    @property
    def remaining_vnd(self) -> int:
        """Return the cash that should be left in the drawer."""
        return (self.advance_vnd or 0) - self.paid_vnd


def _paid_today(point_id: int, day: date) -> tuple[object, object]:
    """Return the scalar subqueries of the cash paid at a point on a day, and how often."""
    start, end = day_bounds(day)
    where = (
        Payout.point_id == point_id,
        Payout.channel.in_(CASH_CHANNELS),
        Payout.status == PayoutStatus.COMPLETED,
        Payout.paid_at >= start,
        Payout.paid_at < end,
    )
    paid = select(func.coalesce(func.sum(Payout.amount_vnd), 0)).where(*where).scalar_subquery()
    count = select(func.count(Payout.id)).where(*where).scalar_subquery()
    return paid, count


def cash_position(session: Session, point_id: int, day: date) -> CashPosition:
    """Return the advance, the cash paid and what is left at a point on a day."""
    paid, count = _paid_today(point_id, day)
    advance = (
        select(CashFloat.advance_vnd)
        .where(CashFloat.point_id == point_id, CashFloat.business_date == day)
        .scalar_subquery()
    )
    row = session.execute(select(advance, paid, count)).one()
    return CashPosition(day=day, advance_vnd=row[0], paid_vnd=int(row[1]), payouts=int(row[2]))


_PAYOUTS = Payout.__table__
_FLOATS = CashFloat.__table__
# Built once (every cash payment runs it): the float row, locked, with the cash paid
# on its day summed beside it.
_REMAINING = (
    select(
        _FLOATS.c.advance_vnd,
        select(func.coalesce(func.sum(_PAYOUTS.c.amount_vnd), 0))
        .where(
            _PAYOUTS.c.point_id == bindparam("point_id"),
            _PAYOUTS.c.channel.in_(CASH_CHANNELS),
            _PAYOUTS.c.status == PayoutStatus.COMPLETED,
            _PAYOUTS.c.paid_at >= bindparam("start"),
            _PAYOUTS.c.paid_at < bindparam("end"),
        )
        .scalar_subquery(),
    )
    .where(_FLOATS.c.point_id == bindparam("point_id"), _FLOATS.c.business_date == bindparam("day"))
    .with_for_update(of=_FLOATS)
)


def cash_remaining(session: Session, point_id: int, day: date) -> int | None:
    """Return the cash left on a day, locking the float row (cash payouts queue on it).

    None when no advance is recorded for the day. One statement: the float row,
    locked, with the day's cash payouts summed beside it.
    """
    start, end = day_bounds(day)
    row = (
        session.connection()
        .execute(_REMAINING, {"point_id": point_id, "day": day, "start": start, "end": end})
        .first()
    )
    if row is None:
        return None
    return int(row[0]) - int(row[1])


# Days a cash float may be read or recorded for: from the first day the terminal
# accepts, and at most a month ahead (an advance is prepared the day before). Beyond
# that a date is a typo, and extremes such as 9999-12-31 would overflow the day's bounds.
EARLIEST_CASH_DAY = FIRST_DAY
CASH_DAYS_AHEAD = 31


def check_cash_day(day: date | None) -> date:
    """Return the day of a cash float (today in Vietnam if none) or refuse one out of range."""
    today = today_local()
    if day is None:
        return today
    latest = today + timedelta(days=CASH_DAYS_AHEAD)
    if not EARLIEST_CASH_DAY <= day <= latest:
        raise InvalidInput(
            f"the date must be between {EARLIEST_CASH_DAY.isoformat()} and {latest.isoformat()}",
            code="date_out_of_range",
            earliest=EARLIEST_CASH_DAY.isoformat(),
            latest=latest.isoformat(),
        )
    return day


def set_cash_float(
    session: Session,
    user: User,
    *,
    advance_vnd: int,
    day: date | None = None,
    actor: str | None = None,
) -> CashFloat:
    """Record the day's cash advance of the supervisor's point (replacing the figure)."""
    require(user, "supervise")
    if user.payout_point_id is None:
        raise Refused("only a point's supervisor records its cash float", code="forbidden")
    if (
        isinstance(advance_vnd, bool)
        or not isinstance(advance_vnd, int)
        or not 0 <= advance_vnd <= MAX_ADVANCE_VND
    ):
        raise InvalidInput("the advance must be a whole number of đồng", code="amount_invalid")
    day = check_cash_day(day)
    point_id = user.payout_point_id
    recorded_by = user
    with write_transaction(session):
        refuse_closed_day(session, point_id, day)
        row = session.scalar(
            select(CashFloat)
            .where(CashFloat.point_id == point_id, CashFloat.business_date == day)
            .with_for_update()
        )
        paid = cash_position(session, point_id, day).paid_vnd
        if advance_vnd < paid:
            raise Refused(
                f"the advance cannot be less than the {paid} đồng already paid in cash "
                f"on {day.isoformat()}",
                code="advance_below_paid",
                paid=paid,
            )
        row = write_cash_float(
            session,
            row,
            point_id=point_id,
            day=day,
            advance_vnd=advance_vnd,
            recorded_by=recorded_by,
            actor=actor,
        )
    return row


def lock_point_day(session: Session, point_id: int, day: date) -> DayClosing | None:
    """Lock the point's row and return the day's closing, if the day is closed.

    Recording an advance and closing the day both lock the point first (then the
    float), so neither can slip between the other's check and its write.
    """
    # FOR NO KEY UPDATE: it waits for payouts in flight (they hold the row FOR SHARE,
    # see hold_point) but not for the foreign keys' KEY SHARE of every insert naming
    # the point, which would deadlock with a cash payout holding the float.
    session.execute(
        select(PayoutPoint.id).where(PayoutPoint.id == point_id).with_for_update(key_share=True)
    )
    return closing_of(session, point_id, day)


def hold_point(session: Session, point_id: int) -> None:
    """Hold the point's row shared until the transaction ends, before reading the clock.

    A payout or reversal stamps its time before it commits; a day's closing reads the
    figures in between could miss it while stamping itself later. Holding the point
    shared makes a closing (which locks it, ``lock_point_day``) wait for the payouts
    in flight, and payouts started during a closing wait for it, so every payout is
    either in the closing's figures or stamped after it. Shared holds never wait for
    each other. Lock order everywhere: entitlements, point, float. SQLite needs none:
    its write lock already lets one writer in at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            select(PayoutPoint.id).where(PayoutPoint.id == point_id).with_for_update(read=True)
        )


def closing_of(session: Session, point_id: int | None, day: date) -> DayClosing | None:
    """Return the closing of a point's day, or None while the day is open."""
    return session.scalar(
        select(DayClosing).where(DayClosing.point_id == point_id, DayClosing.business_date == day)
    )


def refuse_closed_day(session: Session, point_id: int, day: date) -> None:
    """Refuse (422 ``day_closed``) a change of the advance of a day its supervisor closed."""
    closing = lock_point_day(session, point_id, day)
    if closing is not None:
        raise Refused(
            f"the day {day.isoformat()} is closed: its advance can no longer be changed",
            code="day_closed",
            date=day.isoformat(),
        )


def set_point_cash_float(
    session: Session, point_code: str, *, advance_vnd: int, day: date | None, actor: str
) -> CashFloat:
    """Record a point's cash advance without a signed-in user (the command line).

    The float is recorded in the name of the point's supervisor, whose duty it is
    (DESIGN, "Who uses it"); the audit event names ``actor`` as who typed it.
    """
    code = normalize_point_code(point_code)
    point_id = session.scalar(select(PayoutPoint.id).where(PayoutPoint.code == code))
    if point_id is None:
        raise NotFound(f"no payout point {code}", code="point_not_found")
    supervisor = session.scalar(
        select(User)
        .where(
            User.payout_point_id == point_id,
            User.role == Role.SUPERVISOR,
            User.active.is_(True),
        )
        .order_by(User.id)
        .limit(1)
    )
    if supervisor is None:
        raise Refused(
            f"point {code} has no active supervisor to record its cash float for",
            code="supervisor_required",
        )
    return set_cash_float(session, supervisor, advance_vnd=advance_vnd, day=day, actor=actor)


def write_cash_float(
    session: Session,
    row: CashFloat | None,
    *,
    point_id: int,
    day: date,
    advance_vnd: int,
    recorded_by: User,
    actor: str | None = None,
) -> CashFloat:
    """Create or replace a day's advance, with its audit event, in the caller's transaction."""
    before = row.advance_vnd if row else None
    if row is None:
        row = CashFloat(
            point_id=point_id,
            business_date=day,
            advance_vnd=advance_vnd,
            recorded_by_id=recorded_by.id,
        )
        session.add(row)
    else:
        row.advance_vnd = advance_vnd
        row.updated_at = utcnow()
    session.flush()
    record_event(
        session,
        actor=actor or recorded_by.username,
        action=AuditAction.CASH_FLOAT_SET,
        object_type="cash_float",
        object_id=row.id,
        data={"day": day.isoformat(), "advance_vnd": [before, advance_vnd]},
    )
    return row
