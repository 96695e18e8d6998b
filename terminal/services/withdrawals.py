"""Withdrawals from a beneficiary's account through the point's provider, with an OTP.

At an ``http`` point (API.md, "Account withdrawals through a provider") the agent
asks the provider to send the account holder a code, types the code the person
reads out, and the provider moves the money; only then is the payout recorded.

The rules that keep money right:

- A withdrawal holds its entitlements from the request until it ends
  (``Entitlement.held_by_withdrawal_id``): no cash payout, manual payout or
  second withdrawal can start on them meanwhile.
- The provider is never called inside a database transaction (a slow provider
  must not hold the write lock), and every call carries the withdrawal's own
  ``client_ref``, so a retried call never withdraws twice.
- A confirmation that gets no answer in time leaves the outcome unknown: the
  withdrawal is ``pending``, the agent hands over nothing, and only a
  reconciliation (``reconcile``) completes it, from the provider's own word that
  it paid, or releases it once the provider says it did not and cancels it. The
  payout it completes is written with the same statements as every payout
  (``payouts.write_payout``), behind the same unique index, so a pending
  withdrawal can never become a second payment.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from terminal.clock import to_local
from terminal.db import begin_write, commit_or_unknown, write_transaction
from terminal.models import (
    AuditAction,
    Beneficiary,
    Channel,
    Entitlement,
    EntitlementStatus,
    FailureReason,
    PaymentMethod,
    Payout,
    PayoutPoint,
    Period,
    ProviderAdapterKind,
    User,
    Withdrawal,
    WithdrawalStatus,
    utcnow,
)
from terminal.policy import require, sees_point
from terminal.providers import (
    ProviderAdapter,
    ProviderAnswer,
    ProviderUnreachable,
    adapter_for,
)
from terminal.services import idempotency
from terminal.services.audit import record_event
from terminal.services.cash import hold_point
from terminal.services.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    Refused,
    ServiceError,
    Throttled,
)
from terminal.services.failures import log_failure
from terminal.services.payouts import (
    _LOCK_ENTITLEMENTS,
    _VERIFIED,
    MAX_ID,
    ChannelNotAllowed,
    PayoutFacts,
    WithdrawalOpen,
    checked_ids,
    error_body,
    lock_payable,
    write_payout,
)

log = logging.getLogger("terminal")

MAX_SENDS = 3  # the request's code and two resends; then the case is otp_not_received
OTP_RE = re.compile(r"^[0-9]{4,8}$")
# A code not used within this long after it expired: the withdrawal was abandoned.
ABANDONED_AFTER = timedelta(minutes=30)

# The provider's refusals that are a case of their own reason; any other is provider_rejected.
PROVIDER_REASONS: dict[str, FailureReason] = {
    "credited_not_withdrawable": FailureReason.CREDITED_NOT_WITHDRAWABLE,
}


@dataclass(frozen=True)
class ProviderSettings:
    """How long to wait for a provider, how often to retry, when an OTP may be resent."""

    timeout_s: float = 10.0
    retries: int = 2
    resend_seconds: int = 60

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> ProviderSettings:
        """Read the settings of API.md's ``TERMINAL_PROVIDER_*`` and ``OTP_RESEND_SECONDS``."""
        return cls(
            timeout_s=config["PROVIDER_TIMEOUT_MS"] / 1000,
            retries=config["PROVIDER_RETRIES"],
            resend_seconds=config["OTP_RESEND_SECONDS"],
        )

    def adapter(self, point: PayoutPoint) -> ProviderAdapter:
        """Return the point's provider adapter."""
        return adapter_for(
            point.adapter.value, point.provider_url, timeout=self.timeout_s, retries=self.retries
        )

    def adapter_of(self, withdrawal: Withdrawal) -> ProviderAdapter:
        """Return the adapter of the provider a withdrawal was started with."""
        return adapter_for(
            "http", withdrawal.provider_url, timeout=self.timeout_s, retries=self.retries
        )


class ProviderRefused(Refused):
    """The provider refused the withdrawal; its own code and message are kept."""

    code = "provider_refused"


class OtpInvalid(Refused):
    code = "otp_invalid"


class OtpExpired(Refused):
    code = "otp_expired"


class OtpNotReceived(Refused):
    code = "otp_not_received"


class WithdrawalEnded(Conflict):
    code = "withdrawal_ended"


class OtpCooldown(Throttled):
    code = "otp_cooldown"


@dataclass(frozen=True)
class WithdrawalOrder:
    """What an agent asks: withdraw these entitlements for this verified collector."""

    verification_id: int
    entitlement_ids: tuple[int, ...]

    def digest(self) -> str:
        return idempotency.digest(
            {
                "withdrawal": True,
                "verification_id": self.verification_id,
                "entitlement_ids": sorted(self.entitlement_ids),
            }
        )


@dataclass
class Outcome:
    """What a withdrawal call got: an HTTP status and the JSON body of API.md."""

    status: int
    body: dict[str, Any]
    replayed: bool = False
    withdrawal: Withdrawal | None = None


def withdrawal_body(withdrawal: Withdrawal) -> dict[str, Any]:
    """Return ``GET /withdrawals/{id}``'s body (API.md) with the details a page shows."""
    body: dict[str, Any] = {
        "withdrawal_id": withdrawal.id,
        "client_ref": withdrawal.client_ref,
        "status": withdrawal.status.value,
        "amount": withdrawal.amount_vnd,
        "entitlement_ids": withdrawal.entitlement_list,
        "otp_sends": withdrawal.otp_sends,
    }
    if withdrawal.otp_expires_at is not None and withdrawal.status is WithdrawalStatus.OTP_SENT:
        body["otp_expires_at"] = to_local(withdrawal.otp_expires_at).isoformat()
    if withdrawal.payout_id is not None:
        body["payout_id"] = withdrawal.payout_id
    if withdrawal.failure_id is not None:
        body["failure_id"] = withdrawal.failure_id
    if withdrawal.provider_code:
        body["provider_code"] = withdrawal.provider_code
    return body


# ---- starting ---------------------------------------------------------------------


def _http_point(user: User) -> PayoutPoint:
    point = user.payout_point
    if point is None:
        raise Refused("a payout point is needed to pay", code="forbidden")
    if point.adapter is not ProviderAdapterKind.HTTP or not point.provider_url:
        raise Refused(
            "this payout point is not connected to a provider: withdraw in the provider's "
            "app and record the payout with its reference",
            code="provider_not_connected",
        )
    return point


def start(
    session: Session,
    user: User,
    order: WithdrawalOrder,
    *,
    key: str | None,
    settings: ProviderSettings,
) -> Outcome:
    """Hold the entitlements, then ask the provider to send the account holder an OTP.

    Exactly once per Idempotency-Key: a retry gets the first answer. A refusal by
    the provider is a follow-up case with the provider's code and message.
    """
    require(user, "counter")
    key = idempotency.check_key(key)
    ids = checked_ids(order.entitlement_ids)
    point = _http_point(user)
    request_hash = order.digest()
    claimed = idempotency.claim_key(session, user, key, request_hash)
    if isinstance(claimed, idempotency.StoredResponse):
        return Outcome(claimed.status, claimed.body, replayed=True)
    try:
        withdrawal, account_no, periods = _hold(session, user, point, order.verification_id, ids)
    except ServiceError as error:
        idempotency.finish_alone(session, claimed, error.status, error_body(error))
        raise
    except BaseException:
        idempotency.release_key(session, claimed)
        raise
    adapter = settings.adapter(point)
    try:
        answer = adapter.start(
            withdrawal.client_ref,
            account_no=account_no,
            amount=withdrawal.amount_vnd,
            periods=periods,
        )
    except ProviderUnreachable:
        # Nothing can have moved: no code was confirmed. The person is not paid: a case.
        error = _end_refused(
            session,
            user,
            withdrawal,
            FailureReason.PROVIDER_TIMEOUT,
            code="provider_timeout",
            message="the provider did not answer in time",
            adapter=adapter,
        )
        idempotency.finish_alone(session, claimed, error.status, error_body(error))
        raise error from None
    if answer.ok and answer.body.get("status") in ("otp_sent", "expired"):
        with write_transaction(session):
            _mark_sent(session, withdrawal, answer)
            body = {**withdrawal_body(withdrawal), "status": "otp_sent"}
            idempotency.finish(session, claimed, 201, body)
        return Outcome(201, body, withdrawal=withdrawal)
    if answer.ok and answer.body.get("status") == "paid":
        # Already paid at the provider under this very reference (cannot happen with a
        # fresh reference, but the provider's word decides): complete it.
        outcome = _complete(session, withdrawal, answer, actor=user.username)
        idempotency.finish_alone(session, claimed, outcome.status, outcome.body)
        return outcome
    reason = PROVIDER_REASONS.get(answer.error or "", FailureReason.PROVIDER_REJECTED)
    error = _end_refused(
        session,
        user,
        withdrawal,
        reason,
        code=answer.error or f"http_{answer.status}",
        message=answer.message,
        adapter=None,
    )
    idempotency.finish_alone(session, claimed, error.status, error_body(error))
    raise error


def _hold(
    session: Session, user: User, point: PayoutPoint, verification_id: int, ids: tuple[int, ...]
) -> tuple[Withdrawal, str, list[str]]:
    """Check the verification and entitlements and hold them under a new withdrawal."""
    begin_write(session)
    try:
        conn = session.connection()
        verified = conn.execute(_VERIFIED, {"verification_id": verification_id}).first()
        if verified is None or verified.user_id != user.id or verified.point_id != point.id:
            raise NotFound("no such verification", code="verification_not_found")
        if verified.expires_at <= utcnow():
            raise Refused("the verification has expired; verify again", code="verification_expired")
        if verified.payment_method is not PaymentMethod.ACCOUNT:
            raise ChannelNotAllowed("this beneficiary is paid by cash", method="cash")
        person = session.get(Beneficiary, verified.person_id)
        assert person is not None
        if not person.account_no:
            raise Refused("the roster gives no account number", code="account_missing")
        entitlements = lock_payable(session, ids, verified.person_id)
        periods = sorted(
            session.scalars(
                select(Period.code)
                .join(Entitlement, Entitlement.period_id == Period.id)
                .where(Entitlement.id.in_(ids))
            )
        )
        now = utcnow()
        withdrawal = Withdrawal(
            client_ref=f"{point.code}-{uuid.uuid4().hex[:24]}",
            point_id=point.id,
            user_id=user.id,
            verification_id=verification_id,
            beneficiary_id=verified.person_id,
            entitlement_ids=json.dumps(list(ids)),
            amount_vnd=sum(entitlements[i].amount_vnd for i in ids),
            provider_url=point.provider_url,
            status=WithdrawalStatus.OTP_SENT,
            otp_sends=1,
            last_sent_at=now,
            created_at=now,
        )
        session.add(withdrawal)
        session.flush()
        held = session.execute(
            update(Entitlement)
            .where(Entitlement.id.in_(ids), Entitlement.held_by_withdrawal_id.is_(None))
            .values(held_by_withdrawal_id=withdrawal.id)
            .execution_options(synchronize_session=False)
        )
        if held.rowcount != len(ids):  # pragma: no cover - the lock above prevents it
            raise WithdrawalOpen("a withdrawal is already open for these entitlements")
        record_event(
            session,
            actor=user.username,
            action=AuditAction.WITHDRAWAL_STARTED,
            object_type="withdrawal",
            object_id=withdrawal.id,
            data={
                "client_ref": withdrawal.client_ref,
                "beneficiary": verified.code,
                "amount_vnd": withdrawal.amount_vnd,
                "entitlement_ids": list(ids),
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return withdrawal, person.account_no, periods


def _mark_sent(session: Session, withdrawal: Withdrawal, answer: ProviderAnswer) -> None:
    """Note when the provider says the code expires (inside the caller's transaction)."""
    expires = _parse_time(answer.body.get("otp_expires_at"))
    session.execute(
        update(Withdrawal)
        .where(Withdrawal.id == withdrawal.id)
        .values(otp_expires_at=expires, updated_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    withdrawal.otp_expires_at = expires


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None


# ---- ending ------------------------------------------------------------------------


def _release(
    session: Session,
    withdrawal: Withdrawal,
    status: WithdrawalStatus,
    *,
    actor: str,
    action: AuditAction,
    data: dict[str, Any],
    provider_code: str | None = None,
    provider_message: str | None = None,
    failure_id: int | None = None,
    allowed: tuple[WithdrawalStatus, ...] = (WithdrawalStatus.OTP_SENT,),
) -> bool:
    """End a withdrawal without a payout and let go of its entitlements.

    Only from the ``allowed`` states (the agent's paths end only one waiting for its
    code; a pending one ends only through the reconciliation). Returns whether it ended.
    """
    with write_transaction(session):
        current = _locked(session, withdrawal.id)
        assert current is not None
        if current.status not in allowed:
            return False
        now = utcnow()
        current.status = status
        current.ended_at = current.updated_at = now
        if provider_code is not None:
            current.provider_code = provider_code[:64]
        if provider_message is not None:
            current.provider_message = provider_message[:300]
        if failure_id is not None:
            current.failure_id = failure_id
        _unhold(session, current)
        record_event(
            session,
            actor=actor,
            action=action,
            object_type="withdrawal",
            object_id=current.id,
            data={"client_ref": current.client_ref, **data},
        )
    session.refresh(withdrawal)
    return True


def _locked(session: Session, withdrawal_id: int) -> Withdrawal | None:
    """Read a withdrawal afresh and lock it for the rest of the transaction."""
    return session.scalar(
        select(Withdrawal)
        .where(Withdrawal.id == withdrawal_id)
        .with_for_update(of=Withdrawal)
        .execution_options(populate_existing=True)
    )


def _unhold(session: Session, withdrawal: Withdrawal) -> None:
    """Let go of a withdrawal's entitlements (through their primary key)."""
    session.execute(
        update(Entitlement)
        .where(
            Entitlement.id.in_(withdrawal.entitlement_list),
            Entitlement.held_by_withdrawal_id == withdrawal.id,
        )
        .values(held_by_withdrawal_id=None)
        .execution_options(synchronize_session=False)
    )


def _end_refused(
    session: Session,
    user: User,
    withdrawal: Withdrawal,
    reason: FailureReason,
    *,
    code: str,
    message: str,
    adapter: ProviderAdapter | None,
) -> ProviderRefused:
    """Fail a withdrawal the provider refused (or never answered): a case, entitlements free."""
    failure = log_failure(
        session,
        user=user,
        reason=reason,
        detail_code="provider.refused",
        params={
            "provider_code": code,
            "provider_message": message,
            "client_ref": withdrawal.client_ref,
        },
        beneficiary_id=withdrawal.beneficiary_id,
        entitlement_id=withdrawal.entitlement_list[0],
        channel=Channel.ACCOUNT,
        provider_ref=withdrawal.client_ref,
    )
    _release(
        session,
        withdrawal,
        WithdrawalStatus.FAILED,
        actor=user.username,
        action=AuditAction.WITHDRAWAL_FAILED,
        data={"reason": reason.value, "provider_code": code},
        provider_code=code,
        provider_message=message,
        failure_id=failure.id,
    )
    if adapter is not None:
        _cancel_quietly(adapter, withdrawal.client_ref)
    return ProviderRefused(
        message or "the provider refused the withdrawal",
        reason=reason.value,
        provider_code=code,
        provider_message=message,
        failure_id=failure.id,
        withdrawal_id=withdrawal.id,
    )


def _cancel_quietly(adapter: ProviderAdapter, client_ref: str) -> ProviderAnswer | None:
    """Ask the provider to cancel a withdrawal; None when it could not be asked."""
    try:
        return adapter.cancel(client_ref)
    except ProviderUnreachable:
        return None


def _complete(
    session: Session, withdrawal: Withdrawal, answer: ProviderAnswer, *, actor: str
) -> Outcome:
    """Record the payout of a withdrawal the provider says it paid; free its hold.

    Idempotent: a withdrawal already completed answers with its payout again.
    """
    from flask import current_app

    from terminal.services.receipts import verify_url

    begin_write(session)
    try:
        current = _locked(session, withdrawal.id)
        assert current is not None
        if current.status is WithdrawalStatus.COMPLETED and current.payout_id is not None:
            session.rollback()
            return Outcome(201, _payout_body(session, current), withdrawal=current)
        conn = session.connection()
        verified = conn.execute(_VERIFIED, {"verification_id": current.verification_id}).one()
        ids = tuple(current.entitlement_list)
        rows = {row.id: row for row in conn.execute(_LOCK_ENTITLEMENTS, {"ids": ids})}
        # The provider paid. A withdrawal ended meanwhile (released, failed) is recorded
        # all the same while its periods are still unpaid and free; if they were paid
        # some other way, the money left twice: a case to recover it, never a payout.
        if any(
            row.status is not EntitlementStatus.DUE
            or row.held_by_withdrawal_id not in (None, current.id)
            for row in rows.values()
        ) or len(rows) != len(ids):
            session.rollback()
            return _double_payment(session, withdrawal, answer, actor=actor)
        point = current.point
        user = session.get(User, current.user_id)
        assert user is not None
        provider_ref = str(answer.body.get("provider_ref") or current.client_ref)[:64]
        hold_point(session, current.point_id)  # a day's closing counts it or it comes after
        now = utcnow()
        # The provider's settlement may differ from what was asked: the money it says
        # it paid is recorded only if it is what the entitlements owe.
        amount = answer.body.get("amount")
        differs = (
            isinstance(amount, int)
            and not isinstance(amount, bool)
            and amount != sum(rows[i].amount_vnd for i in ids)
        )
        payout, body = write_payout(
            session,
            PayoutFacts(
                point_id=point.id,
                point_code=point.code,
                receipt_format=point.receipt_format,
                user_id=user.id,
                username=user.username,
                verification_id=current.verification_id,
                person_id=current.beneficiary_id,
                beneficiary_code=verified.code,
                full_name=verified.full_name,
                collector_type=verified.collector_type,
                proxy_id=verified.proxy_id,
                proxy_name=verified.proxy_name,
                channel=Channel.ACCOUNT,
                provider_ref=provider_ref,
                amounts={i: rows[i].amount_vnd for i in ids},
                audit_extra={
                    "client_ref": current.client_ref,
                    "withdrawal_id": current.id,
                    **({"completed_by": actor} if actor != user.username else {}),
                },
            ),
            now,
            lambda p: verify_url(current_app, p),
        )
        current.status = WithdrawalStatus.COMPLETED
        current.payout_id = payout.id
        current.provider_ref = provider_ref
        current.ended_at = current.updated_at = now
        _unhold(session, current)
        commit_or_unknown(session)  # a lost answer: outcome unknown (S07)
    except IntegrityError as exc:
        session.rollback()
        if "payout_lines" not in str(exc.orig):
            raise
        # Another payout won these periods at the same moment while the provider paid
        # too: the money left twice. Never a second payout: a case to recover it.
        return _double_payment(session, withdrawal, answer, actor=actor)
    except BaseException:
        session.rollback()
        raise
    session.refresh(withdrawal)
    log.info("withdrawal completed: id=%s payout=%s", withdrawal.id, payout.id)
    if differs:
        log_failure(
            session,
            user=session.get(User, withdrawal.user_id),
            reason=FailureReason.OTHER,
            detail_code="withdrawal.amount_differs",
            params={
                "client_ref": withdrawal.client_ref,
                "terminal_amount": payout.amount_vnd,
                "provider_amount": amount,
            },
            beneficiary_id=withdrawal.beneficiary_id,
            channel=Channel.ACCOUNT,
            provider_ref=withdrawal.client_ref,
            escalated=True,
        )
    return Outcome(201, {**body, "withdrawal_id": withdrawal.id}, withdrawal=withdrawal)


def _double_payment(
    session: Session, withdrawal: Withdrawal, answer: ProviderAnswer, *, actor: str
) -> Outcome:
    """Record that the provider paid an entitlement that was already paid: a case."""
    failure = log_failure(
        session,
        user=session.get(User, withdrawal.user_id),
        reason=FailureReason.OTHER,
        detail_code="withdrawal.possible_double_payment",
        params={"client_ref": withdrawal.client_ref, "amount": withdrawal.amount_vnd},
        beneficiary_id=withdrawal.beneficiary_id,
        channel=Channel.ACCOUNT,
        provider_ref=str(answer.body.get("provider_ref") or withdrawal.client_ref)[:64],
        escalated=True,
    )
    _release(
        session,
        withdrawal,
        WithdrawalStatus.FAILED,
        actor=actor,
        action=AuditAction.WITHDRAWAL_FAILED,
        data={"reason": "possible_double_payment"},
        provider_code="paid_twice",
        failure_id=failure.id,
        allowed=(WithdrawalStatus.OTP_SENT, WithdrawalStatus.PENDING),
    )
    log.warning("withdrawal paid by the provider for periods paid otherwise: id=%s", withdrawal.id)
    return Outcome(
        409,
        {
            "error": "possible_double_payment",
            "message": "the provider paid periods that were already paid: the case is open",
            "withdrawal_id": withdrawal.id,
            "failure_id": failure.id,
        },
    )


def _payout_body(session: Session, withdrawal: Withdrawal) -> dict[str, Any]:
    """Return the answer of a completed withdrawal's payout, as ``POST /payouts`` gives it."""
    from flask import current_app, has_app_context

    from terminal.services.receipts import verify_url

    payout = session.get(Payout, withdrawal.payout_id)
    assert payout is not None
    proxied = payout.proxy is not None
    return {
        "payout_id": payout.id,
        "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
        "amount": payout.amount_vnd,
        "entitlement_ids": [line.entitlement_id for line in payout.lines],
        "channel": "account",
        "collector": {
            "type": payout.collector_type.value,
            "full_name": payout.proxy.full_name if proxied else payout.beneficiary.full_name,
        },
        "paid_at": to_local(payout.paid_at).isoformat(),
        "receipt_pdf": f"/api/v1/receipts/{payout.receipt.receipt_no}.pdf"
        if payout.receipt
        else None,
        "receipt_verify_url": verify_url(current_app, payout) if has_app_context() else None,
        "status": payout.status.value,
        "withdrawal_id": withdrawal.id,
    }


# ---- confirming, resending, reading ----------------------------------------------


def get_withdrawal(session: Session, user: User, withdrawal_id: int) -> Withdrawal:
    """Return a withdrawal the user may see: their point's (auditors: all)."""
    if not 1 <= withdrawal_id <= MAX_ID:
        raise NotFound("no such withdrawal", code="withdrawal_not_found")
    withdrawal = session.get(Withdrawal, withdrawal_id)
    if withdrawal is None or not sees_point(user, withdrawal.point_id):
        raise NotFound("no such withdrawal", code="withdrawal_not_found")
    return withdrawal


def _own_open(session: Session, user: User, withdrawal_id: int) -> Withdrawal:
    require(user, "counter")
    withdrawal = get_withdrawal(session, user, withdrawal_id)
    if user.payout_point_id != withdrawal.point_id:
        raise NotFound("no such withdrawal", code="withdrawal_not_found")
    return withdrawal


def confirm(
    session: Session, user: User, withdrawal_id: int, otp: str, *, settings: ProviderSettings
) -> Outcome:
    """Confirm with the code the person reads out: 201 paid, 202 pending, or a refusal.

    Only a clear answer ends anything: "paid" records the payout; a wrong or expired
    code changes nothing; the provider's refusal ends the withdrawal. Any other
    answer, or none, leaves the outcome unknown: pending, for the reconciliation.
    """
    withdrawal = _own_open(session, user, withdrawal_id)
    if withdrawal.status is WithdrawalStatus.COMPLETED:
        return Outcome(201, _payout_body(session, withdrawal), replayed=True, withdrawal=withdrawal)
    if withdrawal.status is WithdrawalStatus.PENDING:
        return Outcome(202, _pending_body(withdrawal), withdrawal=withdrawal)
    if not withdrawal.is_open:
        raise WithdrawalEnded(
            f"this withdrawal is {withdrawal.status.value}", status=withdrawal.status.value
        )
    code = (otp or "").strip()
    if not OTP_RE.match(code):
        raise InvalidInput("the code is 4 to 8 digits", code="otp_malformed")
    ref, adapter = withdrawal.client_ref, settings.adapter_of(withdrawal)
    session.rollback()  # no transaction stays open while the provider works
    try:
        answer = adapter.confirm(ref, code)
    except ProviderUnreachable:
        return _pending(session, user, withdrawal)
    if answer.ok and answer.body.get("status") == "paid":
        return _complete(session, withdrawal, answer, actor=user.username)
    error = answer.error or ""
    if answer.status == 422 and error == "otp_invalid":
        left = answer.body.get("attempts_left")
        raise OtpInvalid(
            "the code is not right",
            attempts_left=left if isinstance(left, int) and not isinstance(left, bool) else 0,
        )
    if answer.status == 422 and error == "otp_expired":
        raise OtpExpired("the code has expired: send a new one", sends_left=_sends_left(withdrawal))
    if answer.status == 422 and error in REFUSALS:
        reason = PROVIDER_REASONS.get(error, FailureReason.PROVIDER_REJECTED)
        raise _end_refused(
            session, user, withdrawal, reason, code=error, message=answer.message, adapter=adapter
        )
    return _pending(session, user, withdrawal)


# A provider's 422 codes that end a withdrawal: it will not pay it.
REFUSALS = frozenset({"credited_not_withdrawable", "provider_rejected", "account_blocked"})


def _sends_left(withdrawal: Withdrawal) -> int:
    return max(MAX_SENDS - withdrawal.otp_sends, 0)


def _pending_body(withdrawal: Withdrawal) -> dict[str, Any]:
    return {
        "status": "pending",
        "withdrawal_id": withdrawal.id,
        "client_ref": withdrawal.client_ref,
        "failure_id": withdrawal.failure_id,
        "message": "the provider did not answer in time: hand over no money; "
        "the withdrawal waits for reconciliation",
    }


def _pending(session: Session, user: User, withdrawal: Withdrawal) -> Outcome:
    """The outcome is unknown: the money may have left. Hold, and open a case."""
    failure = log_failure(
        session,
        user=user,
        reason=FailureReason.PROVIDER_TIMEOUT,
        detail_code="withdrawal.pending",
        params={"client_ref": withdrawal.client_ref},
        beneficiary_id=withdrawal.beneficiary_id,
        entitlement_id=withdrawal.entitlement_list[0],
        channel=Channel.ACCOUNT,
        provider_ref=withdrawal.client_ref,
    )
    with write_transaction(session):
        current = _locked(session, withdrawal.id)
        assert current is not None
        if current.status is WithdrawalStatus.OTP_SENT:
            current.status = WithdrawalStatus.PENDING
            current.failure_id = failure.id
            current.updated_at = utcnow()
            record_event(
                session,
                actor=user.username,
                action=AuditAction.WITHDRAWAL_PENDING,
                object_type="withdrawal",
                object_id=current.id,
                data={"client_ref": current.client_ref, "amount_vnd": current.amount_vnd},
            )
    session.refresh(withdrawal)
    if withdrawal.status is WithdrawalStatus.COMPLETED and withdrawal.payout_id is not None:
        return Outcome(201, _payout_body(session, withdrawal), withdrawal=withdrawal)
    if withdrawal.status is not WithdrawalStatus.PENDING:
        raise WithdrawalEnded(
            f"this withdrawal is {withdrawal.status.value}", status=withdrawal.status.value
        )
    log.warning("withdrawal pending: id=%s (no clear answer from the provider)", withdrawal.id)
    return Outcome(202, _pending_body(withdrawal), withdrawal=withdrawal)


def _settle(
    session: Session,
    user: User,
    withdrawal: Withdrawal,
    adapter: ProviderAdapter,
    *,
    failed_with: int | None = None,
) -> Outcome:
    """Ask the provider what became of a withdrawal waiting for its code, and act on it.

    Paid: completed. Never seen or cancelled: released. Still waiting: cancelled at
    the provider, and released once the provider confirms the cancel. Anything
    unclear: pending, for the reconciliation. Used when the agent gives up and when
    the provider's answer to a resend does not fit a withdrawal waiting for a code.
    """
    ref = withdrawal.client_ref
    session.rollback()
    outcome, answer = _ask(adapter, ref)
    if outcome == "paid" and answer is not None:
        return _complete(session, withdrawal, answer, actor=user.username)
    if outcome in ("unknown_at_provider", "cancelled"):
        # ``failed_with``: the case of a withdrawal that failed (no code arrived).
        _release(
            session,
            withdrawal,
            WithdrawalStatus.FAILED if failed_with else WithdrawalStatus.RELEASED,
            actor=user.username,
            action=AuditAction.WITHDRAWAL_FAILED
            if failed_with
            else AuditAction.WITHDRAWAL_RELEASED,
            data={"by": user.username, "why": outcome},
            failure_id=failed_with,
            provider_code="otp_not_received" if failed_with else None,
        )
        return Outcome(200, withdrawal_body(withdrawal), withdrawal=withdrawal)
    return _pending(session, user, withdrawal)


def _ask(adapter: ProviderAdapter, ref: str) -> tuple[str, ProviderAnswer | None]:
    """Ask the status, and cancel what is not paid.

    Returns ``paid`` (with the provider's answer), ``cancelled``, ``unknown_at_provider``
    (a 404 ``not_found``: never seen) or ``unclear`` (no answer, or one that fits
    nothing: only the provider's clear word ends a withdrawal).
    """
    try:
        answer = adapter.status(ref)
    except ProviderUnreachable:
        return "unclear", None
    if answer.status == 404 and answer.error == "not_found":
        return "unknown_at_provider", answer
    if not answer.ok:
        return "unclear", answer
    state = answer.body.get("status")
    if state == "paid":
        return "paid", answer
    if state not in ("otp_sent", "expired", "cancelled"):
        return "unclear", answer
    cancelled = _cancel_quietly(adapter, ref)
    if cancelled is None:
        return "unclear", None
    if cancelled.error == "already_paid":
        return "paid", cancelled
    if cancelled.ok and cancelled.body.get("status") == "cancelled":
        return "cancelled", cancelled
    return "unclear", cancelled


def resend(
    session: Session, user: User, withdrawal_id: int, *, settings: ProviderSettings
) -> Outcome:
    """Send a new code after the cooldown; after the third send the case is logged."""
    withdrawal = _own_open(session, user, withdrawal_id)
    if withdrawal.status is not WithdrawalStatus.OTP_SENT:
        raise WithdrawalEnded(
            f"this withdrawal is {withdrawal.status.value}", status=withdrawal.status.value
        )
    now = utcnow()
    if withdrawal.last_sent_at is not None:
        wait = settings.resend_seconds - (now - withdrawal.last_sent_at).total_seconds()
        if wait > 0:
            raise OtpCooldown(
                "wait before sending a new code", retry_after=max(int(wait + 0.999), 1)
            )
    adapter = settings.adapter_of(withdrawal)
    if withdrawal.otp_sends >= MAX_SENDS:
        # Three codes and none arrived: the case is there (logged at the third send);
        # end the withdrawal, once the provider confirms it will not pay it.
        failure_id = withdrawal.failure_id or _otp_case(session, user, withdrawal)
        outcome = _settle(session, user, withdrawal, adapter, failed_with=failure_id)
        if outcome.status != 200:
            return outcome
        raise OtpNotReceived(
            "no code arrived after three sends: the case is logged for follow-up",
            failure_id=failure_id,
            withdrawal_id=withdrawal.id,
        )
    ref = withdrawal.client_ref
    session.rollback()
    try:
        answer = adapter.resend(ref)
    except ProviderUnreachable:
        raise ProviderRefused(
            "the provider did not answer: try again",
            reason=FailureReason.PROVIDER_TIMEOUT.value,
            withdrawal_id=withdrawal.id,
        ) from None
    if not answer.ok:
        error = answer.error or ""
        if answer.status == 422 and error in REFUSALS:
            reason = PROVIDER_REASONS.get(error, FailureReason.PROVIDER_REJECTED)
            raise _end_refused(
                session,
                user,
                withdrawal,
                reason,
                code=error,
                message=answer.message,
                adapter=adapter,
            )
        # "Already paid", "cancelled", or an answer that fits no waiting withdrawal:
        # what the provider says of it decides.
        return _settle(session, user, withdrawal, adapter)
    with write_transaction(session):
        session.execute(
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal.id)
            .values(otp_sends=Withdrawal.otp_sends + 1, last_sent_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        _mark_sent(session, withdrawal, answer)
    session.refresh(withdrawal)
    if withdrawal.otp_sends >= MAX_SENDS and withdrawal.failure_id is None:
        _otp_case(session, user, withdrawal)
        session.refresh(withdrawal)
    return Outcome(202, withdrawal_body(withdrawal), withdrawal=withdrawal)


def _otp_case(session: Session, user: User, withdrawal: Withdrawal) -> int:
    """Log ``otp_not_received`` for a withdrawal; a payout later settles the case."""
    failure = log_failure(
        session,
        user=user,
        reason=FailureReason.OTP_NOT_RECEIVED,
        detail_code="withdrawal.otp_not_received",
        params={"client_ref": withdrawal.client_ref, "sends": withdrawal.otp_sends},
        beneficiary_id=withdrawal.beneficiary_id,
        entitlement_id=withdrawal.entitlement_list[0],
        channel=Channel.ACCOUNT,
        provider_ref=withdrawal.client_ref,
    )
    with write_transaction(session):
        session.execute(
            update(Withdrawal)
            .where(Withdrawal.id == withdrawal.id)
            .values(failure_id=failure.id)
            .execution_options(synchronize_session=False)
        )
    return failure.id


def cancel(
    session: Session, user: User, withdrawal_id: int, *, settings: ProviderSettings
) -> Outcome:
    """The agent gives up on a withdrawal waiting for its code (the person left).

    Released only once the provider confirms it cancelled it (or never saw it); paid
    meanwhile, it is completed; no clear answer, it is pending.
    """
    withdrawal = _own_open(session, user, withdrawal_id)
    if withdrawal.status is not WithdrawalStatus.OTP_SENT:
        raise WithdrawalEnded(
            f"this withdrawal is {withdrawal.status.value}", status=withdrawal.status.value
        )
    return _settle(session, user, withdrawal, settings.adapter_of(withdrawal))


# ---- reconciliation -----------------------------------------------------------------


@dataclass
class ReconcileReport:
    """What a reconciliation did, withdrawal by withdrawal."""

    completed: int = 0
    released: int = 0
    still_pending: int = 0
    cases: int = 0
    items: list[dict[str, Any]] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "completed": self.completed,
            "released": self.released,
            "still_pending": self.still_pending,
            "double_payment_cases": self.cases,
        }


def open_withdrawals(session: Session, point_ids: list[int] | None) -> list[Withdrawal]:
    """Return the withdrawals to reconcile: pending, and abandoned while waiting for a code."""
    now = utcnow()
    query = select(Withdrawal).where(
        (Withdrawal.status == WithdrawalStatus.PENDING)
        | (
            (Withdrawal.status == WithdrawalStatus.OTP_SENT)
            & (Withdrawal.last_sent_at < now - ABANDONED_AFTER)
        )
    )
    if point_ids is not None:
        query = query.where(Withdrawal.point_id.in_(point_ids))
    return list(session.scalars(query.order_by(Withdrawal.id)))


def reconcile(
    session: Session,
    *,
    actor: str,
    settings: ProviderSettings,
    point_ids: list[int] | None = None,
) -> ReconcileReport:
    """Ask the provider about each pending withdrawal; complete or release each.

    Completed only on the provider's word that it paid; released only once the
    provider says it did not and has cancelled it (a cancelled withdrawal can never
    be paid later). No clear answer: it stays pending for the next run. Each
    withdrawal is asked of the provider it was started with.
    """
    report = ReconcileReport()
    session.rollback()  # read what is pending now, not an older snapshot
    for withdrawal in open_withdrawals(session, point_ids):
        adapter = settings.adapter_of(withdrawal)
        try:
            outcome = _reconcile_one(session, withdrawal, adapter, actor=actor)
        except ServiceError:
            session.rollback()
            outcome = "pending"
        report.items.append(
            {
                "withdrawal_id": withdrawal.id,
                "client_ref": withdrawal.client_ref,
                "outcome": outcome,
            }
        )
        if outcome == "completed":
            report.completed += 1
        elif outcome == "released":
            report.released += 1
        elif outcome == "case":
            report.cases += 1
        else:
            report.still_pending += 1
    session.rollback()
    return report


def _reconcile_one(
    session: Session, withdrawal: Withdrawal, adapter: ProviderAdapter, *, actor: str
) -> str:
    ref = withdrawal.client_ref
    session.rollback()
    outcome, answer = _ask(adapter, ref)
    if outcome == "paid" and answer is not None:
        done = _complete(session, withdrawal, answer, actor=actor)
        return "completed" if done.status == 201 else "case"
    if outcome in ("unknown_at_provider", "cancelled"):
        released = _release(
            session,
            withdrawal,
            WithdrawalStatus.RELEASED,
            actor=actor,
            action=AuditAction.WITHDRAWAL_RELEASED,
            data={"by": "reconciliation", "why": outcome},
            allowed=(WithdrawalStatus.PENDING, WithdrawalStatus.OTP_SENT),
        )
        return "released" if released else "pending"
    return "pending"


def pending_list(session: Session, user: User) -> list[Withdrawal]:
    """Return the open withdrawals of the user's point (all points for auditors)."""
    query = select(Withdrawal).where(
        Withdrawal.status.in_((WithdrawalStatus.PENDING, WithdrawalStatus.OTP_SENT))
    )
    if user.payout_point_id is not None:
        query = query.where(Withdrawal.point_id == user.payout_point_id)
    return list(session.scalars(query.order_by(Withdrawal.id.desc()).limit(200)))
