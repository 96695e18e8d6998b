"""Paying: the one payment path of the terminal, for every caller.

``pay`` owns the whole protocol around a payout, so the counter page and the API
(and later tablets and provider withdrawals) only parse, call and render: the
Idempotency-Key, the checks, the payout with its lines, receipt number, audit
event and stored answer in one transaction, the refusal recorded as a failure,
and the answer a retry gets.

Never paid twice, in layers: the write lock (``BEGIN IMMEDIATE`` on SQLite, row
locks on PostgreSQL) serialises payouts; the "already paid?" check refuses a
second payout politely; and the partial unique index on live payout lines is the
final guard whatever the application does. A payout, its lines, its receipt
number, its audit event and its Idempotency-Key commit together, so a retry
after a crash finds either all of them or none.

The receipt PDF is not drawn here: it is drawn from the database, identically,
the first time it is printed (``services.receipts``), which keeps 60 ms of
drawing out of the payment's path.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from terminal.clock import local_date, to_local
from terminal.db import begin_write, commit_or_unknown
from terminal.models import (
    AuditAction,
    Beneficiary,
    Channel,
    CollectorType,
    DeliveryRoute,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    PaymentMethod,
    Payout,
    PayoutLine,
    PayoutStatus,
    PointKind,
    ProviderAdapterKind,
    Proxy,
    Receipt,
    ReceiptCounter,
    User,
    Verification,
    utcnow,
)
from terminal.policy import may, require, sees_point
from terminal.rules import channel_for, format_receipt_no, receipt_year
from terminal.services import idempotency
from terminal.services.audit import record_event
from terminal.services.cash import CASH_CHANNELS, cash_remaining, hold_point
from terminal.services.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    Refused,
    ServiceError,
)
from terminal.services.failures import REFUSAL_REASONS, log_failure

log = logging.getLogger("terminal")

MAX_LINES = 60
MAX_ID = 2**62  # ids beyond fit no database integer: refused, never sent to a query
PROVIDER_REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,63}$")


class AlreadyPaid(Conflict):
    """An entitlement of the request is already paid."""

    code = "already_paid"


class AlreadyReversed(Conflict):
    """The payout is reversed already."""

    code = "already_reversed"


class WithdrawalOpen(Conflict):
    """A withdrawal through the provider holds the entitlement (OTP sent, or unknown)."""

    code = "withdrawal_open"


class ReservedForDelivery(Conflict):
    """A home-delivery route holds the entitlement until the supervisor releases it."""

    code = "reserved_for_delivery"


class InsufficientCash(Refused):
    """The point's cash float for today cannot cover the payout."""

    code = "insufficient_cash"


class ChannelNotAllowed(Refused):
    """The channel does not follow the beneficiary's payment method."""

    code = "channel_not_allowed"


@dataclass(frozen=True)
class PayoutOrder:
    """What a client asks to pay, normalised so equal requests hash equal."""

    verification_id: int
    entitlement_ids: tuple[int, ...]
    channel: str
    provider_ref: str | None = None
    override_reason: str | None = None

    def digest(self) -> str:
        """Return the SHA-256 of the request, to recognise a retry of the same one."""
        body: dict[str, Any] = {
            "verification_id": self.verification_id,
            "entitlement_ids": sorted(self.entitlement_ids),
            "channel": self.channel,
            "provider_ref": self.provider_ref,
        }
        if self.override_reason is not None:
            body["override_reason"] = self.override_reason
        return idempotency.digest(body)


@dataclass(frozen=True)
class _Actor:
    """Who pays, read before the write transaction (its BEGIN expires loaded objects)."""

    id: int
    username: str
    point_id: int
    point_code: str
    point_kind: PointKind
    receipt_format: Any
    supervises: bool
    via_provider: bool = False


def _actor(user: User) -> _Actor:
    """Return the facts of a paying user that the payment needs."""
    point = user.payout_point
    if point is None:
        raise Refused("a payout point is needed to pay", code="forbidden")
    return _Actor(
        id=user.id,
        username=user.username,
        point_id=point.id,
        point_code=point.code,
        point_kind=point.kind,
        receipt_format=point.receipt_format,
        supervises=may(user, "supervise"),
        via_provider=point.adapter is ProviderAdapterKind.HTTP,
    )


@dataclass(frozen=True)
class PaymentOutcome:
    """What a payment request got: a payout (201), or the first answer of its key."""

    status: int
    body: dict[str, Any]
    replayed: bool = False

    @property
    def payout_id(self) -> int | None:
        """Return the payout made, if the request made one."""
        return self.body.get("payout_id") if self.status == 201 else None


def error_body(error: ServiceError) -> dict[str, Any]:
    """Return the JSON body of a refusal: code, message and its fields."""
    return {"error": error.code, "message": error.message, **error.fields}


def checked_ids(entitlement_ids: tuple[int, ...]) -> tuple[int, ...]:
    """Return the entitlement ids asked for, once each, or refuse a bad list (400)."""
    ids = tuple(dict.fromkeys(entitlement_ids))
    if not ids:
        raise InvalidInput("choose at least one entitlement", code="entitlements_required")
    if len(ids) > MAX_LINES:
        raise InvalidInput(f"at most {MAX_LINES} entitlements at once", code="entitlements_invalid")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 1 <= i <= MAX_ID for i in ids):
        raise InvalidInput("entitlement ids are positive integers", code="entitlements_invalid")
    return ids


def _checked(order: PayoutOrder) -> tuple[tuple[int, ...], str | None, str | None]:
    """Return the order's entitlement ids, provider reference and override, or refuse."""
    ids = checked_ids(order.entitlement_ids)
    if order.channel not in ("cash", "account"):
        raise InvalidInput("channel must be cash or account", code="channel_invalid")
    provider_ref = (order.provider_ref or "").strip() or None
    if order.channel == "account" and provider_ref is None:
        raise InvalidInput(
            "provider_ref is required for an account payout", code="provider_ref_required"
        )
    if provider_ref is not None and not PROVIDER_REF_RE.match(provider_ref):
        raise InvalidInput(
            "provider_ref must be 1-64 letters, digits or . _ / : -", code="provider_ref_invalid"
        )
    override = " ".join((order.override_reason or "").split()) or None
    if override is not None and not 5 <= len(override) <= 500:
        raise InvalidInput(
            "give the reason for paying cash (5-500 characters)", code="override_reason_invalid"
        )
    return ids, provider_ref, override


def pay(
    session: Session,
    user: User,
    order: PayoutOrder,
    *,
    key: str | None,
    verify_url: Callable[[Payout], str],
) -> PaymentOutcome:
    """Pay the chosen entitlements to the verified collector, exactly once per key.

    A retry with the same key and order gets the first answer (``replayed``); the
    same key with another order is refused. A business refusal is stored as the
    key's answer, recorded as a failure when it is a failed attempt to pay someone
    (insufficient cash), and raised. An unexpected error rolls everything back,
    the key included, so the client may retry.
    """
    require(user, "counter")
    key = idempotency.check_key(key)
    ids, provider_ref, override = _checked(order)
    request_hash = order.digest()
    actor = _actor(user)
    begin_write(session)
    try:
        claimed = idempotency.claim(session, actor.id, key, request_hash)
        if isinstance(claimed, idempotency.StoredResponse):
            session.rollback()
            return PaymentOutcome(claimed.status, claimed.body, replayed=True)
        payout, body = _record(
            session,
            actor,
            order.verification_id,
            ids,
            order.channel,
            provider_ref,
            override,
            verify_url,
        )
        idempotency.finish(session, claimed, 201, body)
        commit_or_unknown(session)  # a lost COMMIT answer is "unknown", not "nothing changed"
    except IntegrityError as exc:
        session.rollback()
        if "payout_lines" not in str(exc.orig) and "uq_payout_lines" not in str(exc.orig):
            raise
        # The database's last guard: another payout committed these entitlements first.
        winner = session.scalar(
            select(PayoutLine.entitlement_id)
            .where(PayoutLine.entitlement_id.in_(ids), PayoutLine.reversed_at.is_(None))
            .order_by(PayoutLine.entitlement_id)
            .limit(1)
        )
        winner = winner if winner is not None else ids[0]
        error = AlreadyPaid(
            "already paid",
            entitlement_id=winner,
            receipt_no=receipt_no_of_entitlement(session, winner),
        )
        _refused(session, actor, order, key, request_hash, error)
        raise error from None
    except ServiceError as error:
        session.rollback()
        if not isinstance(error, (idempotency.InProgress, idempotency.KeyReused)):
            _refused(session, actor, order, key, request_hash, error)
        raise
    except Exception as exc:
        session.rollback()
        _system_error(session, actor, order, exc, key=key, request_hash=request_hash)
        raise
    except BaseException:
        session.rollback()
        raise
    log.info(
        "payout recorded: id=%s receipt=%s amount=%s", payout.id, body["receipt_no"], body["amount"]
    )
    return PaymentOutcome(201, body)


def _system_error(
    session: Session,
    actor: _Actor,
    order: PayoutOrder,
    exc: Exception,
    *,
    key: str,
    request_hash: str,
) -> None:
    """Open a ``system_error`` case for a payment that failed unexpectedly (DESIGN rule 5).

    Usually nothing of the payment was kept (its key neither), so the clerk may try
    again; the case keeps the person in the follow-up queue until a payout settles
    it. But an error from the COMMIT itself may come after the payout was saved:
    then the person was paid and no case is opened. Recording it must never hide
    the original error.
    """
    try:
        if _landed(session, actor.id, key, request_hash):
            log.warning("payment error after its commit landed: %s", type(exc).__name__)
            return
        verification = session.get(Verification, order.verification_id)
        mine = verification is not None and verification.user_id == actor.id
        log_failure(
            session,
            user=session.get(User, actor.id),
            reason=FailureReason.SYSTEM_ERROR,
            detail_code="payment.system_error",
            params={"error": type(exc).__name__},
            beneficiary_id=verification.beneficiary_id if mine else None,
            entitlement_id=order.entitlement_ids[0] if mine and order.entitlement_ids else None,
            channel=Channel.CASH if order.channel == "cash" else Channel.ACCOUNT,
        )
    except Exception:  # the database itself may be what failed
        session.rollback()
        log.exception("could not record the system error of a payment")


def _landed(session: Session, user_id: int, key: str, request_hash: str) -> bool:
    """Tell whether a key's payment committed after all, from its idempotency record.

    Claiming the key again waits on its unique index for a COMMIT still in flight on
    another connection, so a payout whose answer was lost is seen once it is saved.
    """
    begin_write(session)
    try:
        claimed = idempotency.claim(session, user_id, key, request_hash)
    except ServiceError:  # another request holds the key: it answers for the payment
        return True
    finally:
        session.rollback()
    return isinstance(claimed, idempotency.StoredResponse) and claimed.status == 201


def _refused(
    session: Session,
    actor: _Actor,
    order: PayoutOrder,
    key: str,
    request_hash: str,
    error: ServiceError,
) -> None:
    """Record a refused payment: a failure when someone went unpaid, and the key's answer."""
    reason = REFUSAL_REASONS.get(error.code)
    if reason is not None:
        verification = session.get(Verification, order.verification_id)
        if verification is not None and verification.user_id == actor.id:
            failure = log_failure(
                session,
                user=session.get(User, actor.id),
                reason=reason,
                detail_code=f"refusal.{error.code}",
                params={k: v for k, v in error.fields.items() if isinstance(v, int | str)},
                beneficiary_id=verification.beneficiary_id,
                entitlement_id=order.entitlement_ids[0] if order.entitlement_ids else None,
                channel=Channel.CASH if order.channel == "cash" else Channel.ACCOUNT,
            )
            error.fields["failure_id"] = failure.id
    idempotency.store_refusal(session, actor.id, key, request_hash, error.status, error_body(error))


# The payment's statements, built once: a payment runs them on the session's connection
# (Core rows, no ORM objects to load, flush or expire), which halves its CPU time.
_PAYOUTS = Payout.__table__
_LINES = PayoutLine.__table__
_ENTITLEMENTS = Entitlement.__table__
_FAILURES = Failure.__table__
_VERIFIED = (
    select(
        Verification.user_id,
        Verification.point_id,
        Verification.expires_at,
        Verification.collector_type,
        Verification.proxy_id,
        Beneficiary.id.label("person_id"),
        Beneficiary.code,
        Beneficiary.full_name,
        Beneficiary.payment_method,
        Proxy.full_name.label("proxy_name"),
    )
    .join(Beneficiary, Beneficiary.id == Verification.beneficiary_id)
    .outerjoin(Proxy, Proxy.id == Verification.proxy_id)
    .where(Verification.id == bindparam("verification_id"))
)
_LOCK_ENTITLEMENTS = (
    select(
        _ENTITLEMENTS.c.id,
        _ENTITLEMENTS.c.beneficiary_id,
        _ENTITLEMENTS.c.status,
        _ENTITLEMENTS.c.amount_vnd,
        _ENTITLEMENTS.c.held_by_withdrawal_id,
        _ENTITLEMENTS.c.reserved_route_id,
    )
    .where(_ENTITLEMENTS.c.id.in_(bindparam("ids", expanding=True)))
    .with_for_update(of=_ENTITLEMENTS)
)
_INSERT_PAYOUT = _PAYOUTS.insert().returning(_PAYOUTS.c.id)
_INSERT_LINES = _LINES.insert()
_MARK_PAID = (
    _ENTITLEMENTS.update()
    .where(_ENTITLEMENTS.c.id.in_(bindparam("ids", expanding=True)))
    .values(status=EntitlementStatus.PAID, updated_at=bindparam("now"))
)
_INSERT_RECEIPT = Receipt.__table__.insert()
_OPEN = (FailureStatus.OPEN, FailureStatus.IN_PROGRESS)
# Cases a payout never settles: money may have gone out unrecorded (a tablet's payout
# the server refused, or one it found paid elsewhere), or someone must look at the
# person (reported dead at home). Paying the person again is what they warn about.
KEPT_OPEN_DETAILS = ("delivery.sync_rejected", "delivery.deceased")
_RESOLVE_FAILURES = (
    _FAILURES.update()
    # Through the beneficiary's index: a case about an entitlement names its beneficiary
    # (log_failure), and most cases name no entitlement, so an index on it reads them all.
    .where(
        _FAILURES.c.beneficiary_id == bindparam("person_id"),
        _FAILURES.c.status.in_(_OPEN),
        _FAILURES.c.reason != FailureReason.POSSIBLE_DOUBLE_PAYMENT,
        or_(
            _FAILURES.c.detail_code.is_(None),
            _FAILURES.c.detail_code.not_in(KEPT_OPEN_DETAILS),
        ),
        or_(
            _FAILURES.c.entitlement_id.in_(bindparam("ids", expanding=True)),
            and_(
                _FAILURES.c.entitlement_id.is_(None),
                _FAILURES.c.reason != FailureReason.DATA_ERROR,
            ),
        ),
    )
    .values(
        status=FailureStatus.RESOLVED,
        resolved_at=bindparam("now"),
        resolved_payout_id=bindparam("payout_id"),
        updated_at=bindparam("now"),
    )
)
_RECEIPT_SEQ: dict[str, Any] = {}


def _record(
    session: Session,
    actor: _Actor,
    verification_id: int,
    ids: tuple[int, ...],
    requested_channel: str,
    provider_ref: str | None,
    override: str | None,
    verify_url: Callable[[Payout], str],
) -> tuple[Payout, dict[str, Any]]:
    """Write a payout inside the caller's write transaction; return it and its answer.

    The payout returned is not attached to the session: it carries what the receipt
    token binds (id, amount, time, receipt number).
    """
    conn = session.connection()
    verified = conn.execute(_VERIFIED, {"verification_id": verification_id}).first()
    # Someone else's verification is as good as none; verifications are made within
    # the user's scope, and one made at another point (the user moved since) is not
    # good here.
    if verified is None or verified.user_id != actor.id or verified.point_id != actor.point_id:
        raise NotFound("no such verification", code="verification_not_found")
    if verified.expires_at <= utcnow():
        raise Refused("the verification has expired; verify again", code="verification_expired")
    person_id = verified.person_id
    channel = _channel_rule(actor, verified.payment_method, requested_channel, override)
    entitlements = lock_payable(session, ids, person_id)
    total = sum(entitlements[i].amount_vnd for i in ids)
    hold_point(session, actor.point_id)  # a day's closing counts it or it comes after
    now = utcnow()
    if channel in CASH_CHANNELS:
        remaining = cash_remaining(session, actor.point_id, local_date(now))
        if remaining is None or total > remaining:
            raise InsufficientCash(
                "not enough cash left in today's float", needed=total, remaining=remaining or 0
            )
    return write_payout(
        session,
        PayoutFacts(
            point_id=actor.point_id,
            point_code=actor.point_code,
            receipt_format=actor.receipt_format,
            user_id=actor.id,
            username=actor.username,
            verification_id=verification_id,
            person_id=person_id,
            beneficiary_code=verified.code,
            full_name=verified.full_name,
            collector_type=verified.collector_type,
            proxy_id=verified.proxy_id,
            proxy_name=verified.proxy_name,
            channel=channel,
            provider_ref=provider_ref,
            amounts={i: entitlements[i].amount_vnd for i in ids},
            audit_extra={"override_reason": override} if override else {},
        ),
        now,
        verify_url,
    )


@dataclass(frozen=True)
class PayoutFacts:
    """Everything a payout records, checked by the caller (``pay``, a withdrawal)."""

    point_id: int
    point_code: str
    receipt_format: Any
    user_id: int
    username: str
    verification_id: int | None
    person_id: int
    beneficiary_code: str
    full_name: str
    collector_type: CollectorType
    proxy_id: int | None
    proxy_name: str | None
    channel: Channel
    provider_ref: str | None
    amounts: dict[int, int]  # entitlement id -> đồng, in the order asked
    audit_extra: dict[str, Any]


def write_payout(
    session: Session,
    facts: PayoutFacts,
    now: Any,
    verify_url: Callable[[Payout], str],
) -> tuple[Payout, dict[str, Any]]:
    """Write a checked payout in the caller's write transaction: lines, entitlements
    paid, receipt number, cases settled, audit event; return it and its answer.

    The entitlements must be locked by the caller. The partial unique index on live
    payout lines raises IntegrityError if another payout won them.
    """
    conn = session.connection()
    ids = tuple(facts.amounts)
    total = sum(facts.amounts.values())
    payout_id = conn.execute(
        _INSERT_PAYOUT,
        {
            "point_id": facts.point_id,
            "user_id": facts.user_id,
            "verification_id": facts.verification_id,
            "beneficiary_id": facts.person_id,
            "channel": facts.channel,
            "collector_type": facts.collector_type,
            "proxy_id": facts.proxy_id,
            "provider_ref": facts.provider_ref,
            "amount_vnd": total,
            "status": PayoutStatus.COMPLETED,
            "paid_at": now,
        },
    ).scalar_one()
    # One statement for all lines; the partial unique index speaks here if another
    # payout won.
    conn.execute(
        _INSERT_LINES,
        [
            {"payout_id": payout_id, "entitlement_id": i, "amount_vnd": amount}
            for i, amount in facts.amounts.items()
        ],
    )
    conn.execute(_MARK_PAID, {"ids": ids, "now": now})
    year = receipt_year(now)
    seq = _next_receipt_seq(session, facts.point_id, year)
    receipt_no = format_receipt_no(facts.point_code, year, seq)
    conn.execute(
        _INSERT_RECEIPT,
        {
            "payout_id": payout_id,
            "receipt_no": receipt_no,
            "point_id": facts.point_id,
            "year": year,
            "seq": seq,
            "format": facts.receipt_format,
        },
    )
    conn.execute(
        _RESOLVE_FAILURES,
        {"ids": ids, "person_id": facts.person_id, "now": now, "payout_id": payout_id},
    )
    proxied = facts.collector_type is CollectorType.PROXY and facts.proxy_name
    record_event(
        session,
        actor=facts.username,
        action=AuditAction.PAYOUT_RECORDED,
        object_type="payout",
        object_id=payout_id,
        data={
            "receipt_no": receipt_no,
            "beneficiary": facts.beneficiary_code,
            "amount_vnd": total,
            "entitlement_ids": list(ids),
            "channel": facts.channel.value,
            "collector": facts.collector_type.value,
            "proxy_id": facts.proxy_id,
            "provider_ref": facts.provider_ref,
            **facts.audit_extra,
        },
    )
    # What the receipt token binds, outside the session (nothing of it is loaded again).
    payout = Payout(id=payout_id, amount_vnd=total, paid_at=now)
    set_committed_value(payout, "receipt", Receipt(receipt_no=receipt_no))
    body = {
        "payout_id": payout_id,
        "receipt_no": receipt_no,
        "amount": total,
        "entitlement_ids": list(ids),
        "channel": "account" if facts.channel is Channel.ACCOUNT else "cash",
        "collector": {
            "type": facts.collector_type.value,
            "full_name": facts.proxy_name if proxied else facts.full_name,
        },
        "paid_at": to_local(now).isoformat(),
        "receipt_pdf": f"/api/v1/receipts/{receipt_no}.pdf",
        "receipt_verify_url": verify_url(payout),
        "status": PayoutStatus.COMPLETED.value,
    }
    return payout, body


def lock_payable(session: Session, ids: tuple[int, ...], person_id: int) -> dict[int, Any]:
    """Lock a person's entitlements and refuse any that cannot be paid now.

    Not this person's: 404; paid: 409 ``already_paid`` with its receipt; cancelled:
    422; held by an open withdrawal through the provider: 409 ``withdrawal_open``;
    on a home-delivery route: 409 ``reserved_for_delivery`` (only that route's tablet
    pays it, through ``services.delivery``). Returns the locked rows by id.
    """
    conn = session.connection()
    entitlements = {row.id: row for row in conn.execute(_LOCK_ENTITLEMENTS, {"ids": ids})}
    for entitlement_id in ids:
        entitlement = entitlements.get(entitlement_id)
        if entitlement is None or entitlement.beneficiary_id != person_id:
            raise NotFound(
                "no such entitlement for this beneficiary",
                code="entitlement_not_found",
                entitlement_id=entitlement_id,
            )
        if entitlement.status is EntitlementStatus.PAID:
            raise AlreadyPaid(
                "already paid",
                entitlement_id=entitlement_id,
                receipt_no=receipt_no_of_entitlement(session, entitlement_id),
            )
        if entitlement.status is EntitlementStatus.CANCELLED:
            raise Refused(
                "this entitlement was cancelled",
                code="entitlement_not_due",
                entitlement_id=entitlement_id,
            )
        if entitlement.held_by_withdrawal_id is not None:
            raise WithdrawalOpen(
                "a withdrawal through the provider is open for this entitlement",
                entitlement_id=entitlement_id,
                withdrawal_id=entitlement.held_by_withdrawal_id,
            )
        if entitlement.reserved_route_id is not None:
            route = session.get(DeliveryRoute, entitlement.reserved_route_id)
            # An expired route's tablet has wiped it: its reservations lapse with it.
            if route is not None and route.expires_at > utcnow():
                raise ReservedForDelivery(
                    "reserved for home delivery",
                    entitlement_id=entitlement_id,
                    route_id=route.id,
                    delivery_user=route.user.username,
                    delivery_name=route.user.full_name,
                )
    return entitlements


def _channel_rule(
    actor: _Actor, method: PaymentMethod, requested: str, override: str | None
) -> Channel:
    """Return the payout's channel: it follows the beneficiary's payment method.

    Cash for cash, account for account, so drawer cash always passes through the
    float. The one exception: cash for an account holder whose account cannot pay
    out, on the point supervisor's word (``override``, audited).
    """
    channel = channel_for(actor.point_kind, requested)
    if requested == "account" and actor.via_provider:
        raise Refused(
            "this point withdraws through its provider with an OTP: use POST /withdrawals",
            code="provider_connected",
        )
    wanted = "account" if method is PaymentMethod.ACCOUNT else "cash"
    if override is not None:
        if not actor.supervises:
            raise Forbidden("only the point's supervisor may pay an account holder in cash")
        if wanted != "account" or requested != "cash":
            raise ChannelNotAllowed(
                "an override pays an account holder in cash, nothing else",
                method=wanted,
            )
        return channel
    if requested != wanted:
        raise ChannelNotAllowed(f"this beneficiary is paid by {wanted}", method=wanted)
    return channel


def _next_receipt_seq(session: Session, point_id: int, year: int) -> int:
    """Take the next receipt number of a point and year in one statement (gapless)."""
    dialect = session.get_bind().dialect.name
    statement = _RECEIPT_SEQ.get(dialect)
    if statement is None:
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        counters = ReceiptCounter.__table__
        statement = _RECEIPT_SEQ[dialect] = (
            insert(counters)
            .values(point_id=bindparam("counter_point"), year=bindparam("counter_year"), last_seq=1)
            .on_conflict_do_update(
                index_elements=["point_id", "year"],
                set_={"last_seq": counters.c.last_seq + 1},
            )
            .returning(counters.c.last_seq)
        )
    row = session.connection().execute(statement, {"counter_point": point_id, "counter_year": year})
    return int(row.scalar_one())


def receipt_no_of_entitlement(session: Session, entitlement_id: int) -> str | None:
    """Return the receipt number of the live payout of an entitlement."""
    return session.scalar(
        select(Receipt.receipt_no)
        .join(PayoutLine, PayoutLine.payout_id == Receipt.payout_id)
        .where(PayoutLine.entitlement_id == entitlement_id, PayoutLine.reversed_at.is_(None))
    )


# ---- reading payouts ------------------------------------------------------------


def get_payout(session: Session, user: User, payout_id: int) -> Payout:
    """Return a payout the user may see (staff: their point's only), or NotFound."""
    payout = session.get(Payout, payout_id)
    if payout is None or not sees_point(user, payout.point_id):
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
    require(user, "supervise")
    text = " ".join((reason or "").split())
    if not 5 <= len(text) <= 500:
        raise InvalidInput(
            "give the reason for the reversal (5-500 characters)", code="reason_required"
        )
    begin_write(session)
    try:
        payout = get_payout(session, user, payout_id)
        # The payout's row lock (PostgreSQL; SQLite's BEGIN IMMEDIATE already holds the
        # database): a second reversal of the same payout at once, such as a retry racing
        # its first try, waits and then sees it reversed, instead of reversing it again
        # with a second audit event (found by the soak, RELIABILITY S10).
        locked = select(Payout.status).where(Payout.id == payout.id).with_for_update()
        if session.scalar(locked) is not PayoutStatus.COMPLETED:
            raise AlreadyReversed("this payout is already reversed")
        hold_point(session, payout.point_id)  # a day's closing counts it or it comes after
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
            action=AuditAction.PAYOUT_REVERSED,
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
