"""Paying: payouts that can never be paid twice, receipts numbered without gaps,
cash floats, reversals and idempotent retries.

Never paid twice, in layers: the write lock (``BEGIN IMMEDIATE`` on SQLite, row
locks on PostgreSQL) serialises payouts; the "already paid?" check refuses a
second payout politely; and the partial unique index on live payout lines is the
final guard whatever the application does. A payout, its lines, its receipt
number, its audit event and the idempotency record of the request commit in one
transaction, so a retry after a crash finds either all of them or none.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, lazyload

from terminal.db import begin_write, write_transaction
from terminal.formatting import VIETNAM, to_local
from terminal.models import (
    CashFloat,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    IdempotencyRecord,
    IdempotencyState,
    Payout,
    PayoutLine,
    PayoutPoint,
    PayoutStatus,
    PointKind,
    Receipt,
    ReceiptCounter,
    Role,
    User,
    utcnow,
)
from terminal.services.audit import record_event
from terminal.services.counter import commune_ids, get_verification, log_failure, today_local
from terminal.services.errors import Conflict, InvalidInput, NotFound, Refused
from terminal.services.places import normalize_point_code

log = logging.getLogger("terminal")

MAX_LINES = 60
PROVIDER_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,63}$")
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
# A request still "in progress" after this long died before committing (the worker
# timeout is shorter): its key may be taken over by a retry.
STALE_IN_PROGRESS = timedelta(seconds=90)


class AlreadyPaid(Conflict):
    """An entitlement of the request is already paid."""

    code = "already_paid"


class InsufficientCash(Refused):
    """The point's cash float for today cannot cover the payout."""

    code = "insufficient_cash"


@dataclass(frozen=True)
class PayoutOrder:
    """What a client asks to pay, normalised so equal requests hash equal."""

    verification_id: int
    entitlement_ids: tuple[int, ...]
    channel: str
    provider_ref: str | None

    def digest(self) -> str:
        """Return the SHA-256 of the request, to recognise a retry of the same one."""
        body = json.dumps(
            {
                "verification_id": self.verification_id,
                "entitlement_ids": sorted(self.entitlement_ids),
                "channel": self.channel,
                "provider_ref": self.provider_ref,
            },
            sort_keys=True,
        )
        return hashlib.sha256(body.encode()).hexdigest()


# ---- idempotency ----------------------------------------------------------------


@dataclass(frozen=True)
class StoredResponse:
    """The response a key already got."""

    status: int
    body: dict[str, Any]


def check_idempotency_key(key: str | None) -> str:
    """Return a usable Idempotency-Key or refuse a missing or malformed one."""
    if key is None or key == "":
        raise InvalidInput("the Idempotency-Key header is required", code="idempotency_key_missing")
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise InvalidInput(
            "the Idempotency-Key must be 1-255 visible ASCII characters",
            code="idempotency_key_invalid",
        )
    return key


def claim_key(session: Session, user: User, key: str, digest: str) -> int | StoredResponse:
    """Claim a key for a new request, or return what its first request got.

    Keys are scoped per user: another user's identical key is a different key.
    """
    for _attempt in range(2):
        try:
            with write_transaction(session):
                record = session.scalar(
                    select(IdempotencyRecord)
                    .where(IdempotencyRecord.user_id == user.id, IdempotencyRecord.key == key)
                    .with_for_update()
                )
                if record is None:
                    record = IdempotencyRecord(
                        user_id=user.id,
                        key=key,
                        request_hash=digest,
                        state=IdempotencyState.IN_PROGRESS,
                    )
                    session.add(record)
                    session.flush()
                    return record.id
                if record.request_hash != digest:
                    raise Refused(
                        "this Idempotency-Key was used for another request",
                        code="idempotency_key_reused",
                    )
                if record.state is IdempotencyState.DONE:
                    return StoredResponse(
                        record.status_code or 200, json.loads(record.response_body or "{}")
                    )
                if utcnow() - record.created_at < STALE_IN_PROGRESS:
                    raise Conflict(
                        "the first request with this key is still being processed",
                        code="request_in_progress",
                    )
                # Its first request died before committing (else it would be done).
                record.created_at = utcnow()
                return record.id
        except IntegrityError:
            # Another process inserted the same key at the same moment: read it.
            session.rollback()
            continue
    raise Conflict(
        "the first request with this key is still being processed", code="request_in_progress"
    )


def _finish_key(session: Session, record_id: int | None, status: int, body: dict[str, Any]) -> None:
    """Store a key's response inside the caller's transaction."""
    if record_id is None:
        return
    session.execute(
        update(IdempotencyRecord)
        .where(IdempotencyRecord.id == record_id)
        .values(
            state=IdempotencyState.DONE,
            status_code=status,
            response_body=json.dumps(body, ensure_ascii=False),
            completed_at=utcnow(),
        )
    )


def finish_key_alone(
    session: Session, record_id: int | None, status: int, body: dict[str, Any]
) -> None:
    """Store a refusal as the key's response, in its own transaction."""
    if record_id is None:
        return
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        _finish_key(session, record_id, status, body)


def release_key(session: Session, record_id: int | None) -> None:
    """Forget a claimed key after an unexpected error, so the client may retry."""
    if record_id is None:
        return
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        session.execute(
            delete(IdempotencyRecord).where(
                IdempotencyRecord.id == record_id,
                IdempotencyRecord.state == IdempotencyState.IN_PROGRESS,
            )
        )


# ---- recording a payout ---------------------------------------------------------


def receipt_no_of_entitlement(session: Session, entitlement_id: int) -> str | None:
    """Return the receipt number of the live payout of an entitlement."""
    return session.scalar(
        select(Receipt.receipt_no)
        .join(PayoutLine, PayoutLine.payout_id == Receipt.payout_id)
        .where(PayoutLine.entitlement_id == entitlement_id, PayoutLine.reversed_at.is_(None))
    )


def _next_receipt_no(
    session: Session, point_id: int, point_code: str, year: int
) -> tuple[str, int]:
    """Take the next receipt number of a point and year; the lock keeps them gapless."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    session.execute(
        insert(ReceiptCounter)
        .values(point_id=point_id, year=year, last_seq=0)
        .on_conflict_do_nothing(index_elements=["point_id", "year"])
    )
    seq = session.execute(
        update(ReceiptCounter)
        .where(ReceiptCounter.point_id == point_id, ReceiptCounter.year == year)
        .values(last_seq=ReceiptCounter.last_seq + 1)
        .returning(ReceiptCounter.last_seq)
    ).scalar_one()
    return f"{point_code}-{year}-{seq:06d}", seq


def _channel(value: str, user: User) -> Channel:
    """Return the channel of a payout; cash paid by a delivery team is cash at home."""
    if value == "cash":
        if user.payout_point is not None and user.payout_point.kind is PointKind.DELIVERY:
            return Channel.CASH_HOME
        return Channel.CASH
    if value == "account":
        return Channel.ACCOUNT
    raise InvalidInput("channel must be cash or account", code="channel_invalid")


def record_payout(
    session: Session,
    user: User,
    order: PayoutOrder,
    *,
    idempotency_record: int | None = None,
    response: Any = None,
    check_paid: bool = True,
) -> Payout:
    """Pay the chosen entitlements to the verified collector, exactly once.

    ``response`` builds the idempotency record's stored answer from the payout
    before commit, so the record and the payout commit together.
    """
    if user.role not in (Role.CLERK, Role.AGENT, Role.DELIVERY, Role.SUPERVISOR):
        raise Refused("this role may not pay", code="forbidden")
    ids = tuple(dict.fromkeys(order.entitlement_ids))
    if not ids:
        raise InvalidInput("choose at least one entitlement", code="entitlements_required")
    if len(ids) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} entitlements at once", code="entitlements_invalid")
    provider_ref = (order.provider_ref or "").strip() or None
    channel = _channel(order.channel, user)
    if channel is Channel.ACCOUNT and provider_ref is None:
        raise InvalidInput(
            "provider_ref is required for an account payout", code="provider_ref_required"
        )
    if provider_ref is not None and not PROVIDER_REF_RE.match(provider_ref):
        raise InvalidInput(
            "provider_ref must be 1-64 letters, digits or . _ / : -", code="provider_ref_invalid"
        )

    begin_write(session)
    try:
        verification = get_verification(session, user, order.verification_id)
        person = verification.beneficiary
        scope = commune_ids(session, user)
        if scope is not None and person.commune_id not in scope:
            raise NotFound("no such verification", code="verification_not_found")
        point = user.payout_point
        assert point is not None
        entitlements = list(
            session.scalars(
                select(Entitlement)
                .where(Entitlement.id.in_(ids))
                .order_by(Entitlement.id)
                .options(lazyload(Entitlement.beneficiary), lazyload(Entitlement.period))
                .with_for_update(of=Entitlement)
            )
        )
        found = {e.id: e for e in entitlements}
        for entitlement_id in ids:
            entitlement = found.get(entitlement_id)
            if entitlement is None or entitlement.beneficiary_id != person.id:
                raise NotFound(
                    "no such entitlement for this beneficiary",
                    code="entitlement_not_found",
                    entitlement_id=entitlement_id,
                )
            if check_paid and entitlement.status is EntitlementStatus.PAID:
                raise AlreadyPaid(
                    "already paid",
                    entitlement_id=entitlement.id,
                    receipt_no=receipt_no_of_entitlement(session, entitlement.id),
                )
            if entitlement.status is EntitlementStatus.CANCELLED:
                raise Refused(
                    "this entitlement was cancelled",
                    code="entitlement_not_due",
                    entitlement_id=entitlement.id,
                )
        total = sum(found[i].amount_vnd for i in ids)
        now = utcnow()
        if channel in (Channel.CASH, Channel.CASH_HOME):
            remaining = _cash_remaining(
                session, point.id, now.astimezone(VIETNAM).date(), lock=True
            )
            if remaining is None or total > remaining:
                raise InsufficientCash(
                    "not enough cash left in today's float",
                    needed=total,
                    remaining=remaining or 0,
                )
        payout = Payout(
            point_id=point.id,
            user_id=user.id,
            verification_id=verification.id,
            beneficiary_id=person.id,
            channel=channel,
            collector_type=verification.collector_type,
            proxy_id=verification.proxy_id,
            provider_ref=provider_ref,
            amount_vnd=total,
            status=PayoutStatus.COMPLETED,
            paid_at=now,
        )
        session.add(payout)
        session.flush()
        session.add_all(
            PayoutLine(payout_id=payout.id, entitlement_id=i, amount_vnd=found[i].amount_vnd)
            for i in ids
        )
        session.flush()  # the partial unique index speaks here if another payout won
        session.execute(
            update(Entitlement)
            .where(Entitlement.id.in_(ids))
            .values(status=EntitlementStatus.PAID, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        year = now.astimezone(VIETNAM).year
        receipt_no, seq = _next_receipt_no(session, point.id, point.code, year)
        session.add(
            Receipt(
                payout_id=payout.id,
                receipt_no=receipt_no,
                point_id=point.id,
                year=year,
                seq=seq,
                format=point.receipt_format,
            )
        )
        _resolve_failures(session, payout, ids, person.id, now)
        session.flush()
        record_event(
            session,
            actor=user.username,
            action="payout.recorded",
            object_type="payout",
            object_id=payout.id,
            data={
                "receipt_no": receipt_no,
                "beneficiary": person.code,
                "amount_vnd": total,
                "entitlement_ids": list(ids),
                "channel": channel.value,
                "collector": verification.collector_type.value,
                "proxy_id": verification.proxy_id,
                "provider_ref": provider_ref,
            },
        )
        session.refresh(payout)
        if response is not None:
            _finish_key(session, idempotency_record, 201, response(payout))
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        if "payout_lines" not in str(exc.orig) and "uq_payout_lines" not in str(exc.orig):
            raise
        # The database's last guard: another payout committed these entitlements first.
        winner = next((i for i in ids if receipt_no_of_entitlement(session, i)), ids[0])
        raise AlreadyPaid(
            "already paid",
            entitlement_id=winner,
            receipt_no=receipt_no_of_entitlement(session, winner),
        ) from None
    except BaseException:
        session.rollback()
        raise
    log.info("payout recorded: id=%s receipt=%s amount=%s", payout.id, receipt_no, total)
    return payout


def _resolve_failures(
    session: Session, payout: Payout, ids: Iterable[int], person_id: int, now: datetime
) -> None:
    """Close the open follow-up cases that this payout settles."""
    session.execute(
        update(Failure)
        .where(
            Failure.status.in_([FailureStatus.OPEN, FailureStatus.IN_PROGRESS]),
            or_(
                Failure.entitlement_id.in_(list(ids)),
                and_(
                    Failure.beneficiary_id == person_id,
                    Failure.entitlement_id.is_(None),
                    Failure.reason != FailureReason.DATA_ERROR,
                ),
            ),
        )
        .values(
            status=FailureStatus.RESOLVED,
            resolved_at=now,
            resolved_payout_id=payout.id,
            updated_at=now,
        )
        .execution_options(synchronize_session=False)
    )


def record_refusal(
    session: Session, user: User, order: PayoutOrder, error: Refused
) -> Failure | None:
    """Record a refused payout (insufficient cash...) as a follow-up case."""
    if not isinstance(error, InsufficientCash):
        return None
    try:
        verification = get_verification(session, user, order.verification_id)
    except (NotFound, Refused):
        return None
    session.rollback()
    return log_failure(
        session,
        user=user,
        reason=FailureReason.INSUFFICIENT_CASH,
        detail=(
            f"needed {error.fields.get('needed')} đồng, "
            f"{error.fields.get('remaining')} left in the float"
        ),
        beneficiary_id=verification.beneficiary_id,
        entitlement_id=order.entitlement_ids[0] if order.entitlement_ids else None,
        channel=Channel.CASH,
    )


# ---- reading payouts ------------------------------------------------------------


def get_payout(session: Session, user: User, payout_id: int) -> Payout:
    """Return a payout the user may see (staff: their point's only), or NotFound."""
    payout = session.get(Payout, payout_id)
    if payout is None:
        raise NotFound("no such payout", code="payout_not_found")
    if user.role not in (Role.AUDITOR, Role.ADMIN) and payout.point_id != user.payout_point_id:
        raise NotFound("no such payout", code="payout_not_found")
    return payout


def collector_name(payout: Payout) -> str:
    """Return who took the money."""
    if payout.collector_type is CollectorType.PROXY and payout.proxy is not None:
        return payout.proxy.full_name
    return payout.beneficiary.full_name


# ---- reversal -------------------------------------------------------------------


def reverse_payout(session: Session, user: User, payout_id: int, *, reason: str) -> Payout:
    """Reverse a payout: its entitlements become due again; the receipt says reversed."""
    if user.role is not Role.SUPERVISOR:
        raise Refused("only a supervisor may reverse a payout", code="forbidden")
    text = " ".join((reason or "").split())
    if not 5 <= len(text) <= 500:
        raise InvalidInput(
            "give the reason for the reversal (5-500 characters)", code="reason_required"
        )
    begin_write(session)
    try:
        payout = get_payout(session, user, payout_id)
        if payout.status is not PayoutStatus.COMPLETED:
            raise Conflict("this payout is already reversed", code="already_reversed")
        now = utcnow()
        payout.status = PayoutStatus.REVERSED
        payout.reversed_at = now
        payout.reversed_by_id = user.id
        payout.reversal_reason = text
        ids = [line.entitlement_id for line in payout.lines]
        for line in payout.lines:
            line.reversed_at = now
        session.execute(
            update(Entitlement)
            .where(Entitlement.id.in_(ids), Entitlement.status == EntitlementStatus.PAID)
            .values(status=EntitlementStatus.DUE, updated_at=now)
            .execution_options(synchronize_session="fetch")
        )
        record_event(
            session,
            actor=user.username,
            action="payout.reversed",
            object_type="payout",
            object_id=payout.id,
            data={
                "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
                "amount_vnd": payout.amount_vnd,
                "entitlement_ids": ids,
                "reason": text,
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    log.info("payout reversed: id=%s by=%s", payout.id, user.username)
    return payout


# ---- cash floats ----------------------------------------------------------------


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


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return the UTC instants where a Vietnam day starts and ends."""
    start = datetime(day.year, day.month, day.day, tzinfo=VIETNAM)
    return start, start + timedelta(days=1)


def cash_position(session: Session, point_id: int, day: date) -> CashPosition:
    """Return the advance, the cash paid and what is left at a point on a day."""
    start, end = _day_bounds(day)
    advance = session.scalar(
        select(CashFloat.advance_vnd).where(
            CashFloat.point_id == point_id, CashFloat.business_date == day
        )
    )
    paid, count = session.execute(
        select(func.coalesce(func.sum(Payout.amount_vnd), 0), func.count(Payout.id)).where(
            Payout.point_id == point_id,
            Payout.channel.in_([Channel.CASH, Channel.CASH_HOME]),
            Payout.status == PayoutStatus.COMPLETED,
            Payout.paid_at >= start,
            Payout.paid_at < end,
        )
    ).one()
    return CashPosition(day=day, advance_vnd=advance, paid_vnd=int(paid), payouts=int(count))


def _cash_remaining(session: Session, point_id: int, day: date, *, lock: bool) -> int | None:
    """Return the cash left today, locking the float row (cash payouts queue on it)."""
    query = select(CashFloat).where(CashFloat.point_id == point_id, CashFloat.business_date == day)
    if lock:
        query = query.with_for_update()
    row = session.scalar(query)
    if row is None:
        return None
    return cash_position(session, point_id, day).remaining_vnd


# Days a cash float may be read or recorded for: nothing the terminal holds is older
# than 2000, and an advance is prepared at most a month ahead. Beyond that a date is a
# typo, and extremes such as 9999-12-31 would overflow the day's bounds.
EARLIEST_CASH_DAY = date(2000, 1, 1)
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
    if user.role is not Role.SUPERVISOR or user.payout_point_id is None:
        raise Refused("only a point's supervisor records its cash float", code="forbidden")
    if (
        isinstance(advance_vnd, bool)
        or not isinstance(advance_vnd, int)
        or not 0 <= advance_vnd <= 10**13
    ):
        raise InvalidInput("the advance must be a whole number of đồng", code="amount_invalid")
    day = check_cash_day(day)
    with write_transaction(session):
        row = session.scalar(
            select(CashFloat)
            .where(CashFloat.point_id == user.payout_point_id, CashFloat.business_date == day)
            .with_for_update()
        )
        paid = cash_position(session, user.payout_point_id, day).paid_vnd
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
            point_id=user.payout_point_id,
            day=day,
            advance_vnd=advance_vnd,
            recorded_by=user,
            actor=actor,
        )
    return row


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
        action="cash_float.set",
        object_type="cash_float",
        object_id=row.id,
        data={"day": day.isoformat(), "advance_vnd": [before, advance_vnd]},
    )
    return row


def payout_summary(payout: Payout) -> dict[str, Any]:
    """Return the facts of a payout that pages and the API show."""
    return {
        "payout_id": payout.id,
        "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
        "amount": payout.amount_vnd,
        "entitlement_ids": [line.entitlement_id for line in payout.lines],
        "channel": "cash" if payout.channel in (Channel.CASH, Channel.CASH_HOME) else "account",
        "collector": {"type": payout.collector_type.value, "full_name": collector_name(payout)},
        "paid_at": to_local(payout.paid_at).isoformat(),
        "status": payout.status.value,
    }
