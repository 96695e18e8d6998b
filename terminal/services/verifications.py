"""Verifying who is collecting: the beneficiary in person, or a proxy valid today.

The clerk scans or types the ID of whoever stands at the counter; the terminal
recognises the collector from it (the beneficiary, or any of their proxies) and
checks that they may collect today. A choice made by the clerk is an override.
Every refusal is recorded as a Failure in its own transaction, with what went
wrong as a code and parameters, and raised as ``VerificationFailed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import (
    AuditAction,
    Beneficiary,
    BeneficiaryStatus,
    CollectorType,
    FailureReason,
    Proxy,
    User,
    Verification,
    VerificationMethod,
    utcnow,
)
from terminal.policy import require
from terminal.services.audit import record_event
from terminal.services.counter import get_beneficiary
from terminal.services.errors import InvalidInput, NotFound, Refused
from terminal.services.failures import log_failure
from terminal.text import (
    CccdQr,
    InvalidQr,
    TextError,
    cccd_mismatch,
    normalize_id_number,
    parse_cccd_qr,
)

VERIFICATION_MINUTES = 10


class VerificationFailed(Refused):
    """The collector could not be verified; the failure has been recorded."""

    code = "verification_failed"


@dataclass(frozen=True)
class CardComparison:
    """What a scanned card says beside what the roster says, for the clerk to compare."""

    card_name: str
    card_address: str
    card_birth: date | None
    roster_name: str
    roster_address: str
    warnings: tuple[str, ...]


@dataclass(frozen=True)
class VerificationResult:
    """A successful verification and what the clerk should still look at."""

    verification: Verification
    collector_name: str
    card: CardComparison | None
    warnings: tuple[str, ...] = ()


def is_child(person: Beneficiary, today: date) -> bool:
    """Tell whether a beneficiary is a child, who is paid only through a guardian."""
    return person.is_child_on(today)


def _presented(id_number: str | None, id_qr: str | None) -> tuple[set[str], CccdQr | None, bool]:
    """Return the ID numbers shown, the parsed card, and whether the QR was unreadable."""
    if id_qr is not None:
        try:
            card = parse_cccd_qr(id_qr)
        except InvalidQr:
            return set(), None, True
        return {n for n in (card.id_number, card.old_id_number) if n}, card, False
    try:
        typed = normalize_id_number(id_number)
    except TextError:
        typed = None
    return ({typed} if typed else set()), None, False


def recognise(person: Beneficiary, presented: set[str], today: date) -> tuple[str, Proxy | None]:
    """Return who the shown ID belongs to: ("beneficiary", None), ("proxy", p) or ("", None).

    Among several matches (the same number recorded twice), one that may collect
    today wins: the beneficiary unless a child, else a proxy valid today.
    """
    matches: list[tuple[str, Proxy | None]] = []
    if person.id_number and person.id_number in presented:
        matches.append(("beneficiary", None))
    for proxy in person.proxies:
        if proxy.revoked_at is None and proxy.id_number and proxy.id_number in presented:
            matches.append(("proxy", proxy))
    if not matches:
        return "", None
    child = is_child(person, today)

    def usable(match: tuple[str, Proxy | None]) -> bool:
        _kind, proxy = match
        if proxy is None:
            return not child
        return proxy.status_on(today) == "active" and (proxy.is_guardian or not child)

    return next((m for m in matches if usable(m)), matches[0])


def verify_collector(
    session: Session,
    user: User,
    *,
    beneficiary_code: str,
    collector: str | None = None,
    proxy_id: int | None = None,
    id_number: str | None = None,
    id_qr: str | None = None,
) -> VerificationResult:
    """Check that the person at the counter is the beneficiary or one of their proxies.

    ``collector`` None recognises the collector from the ID shown; "beneficiary" or
    "proxy" (with ``proxy_id``) is the clerk's override. The ID must be the
    collector's; a proxy must hold an authorisation valid today; a child is paid
    only through a guardian; suspended, deceased or moved beneficiaries are
    refused. A QR code speeds entry but proves nothing: the clerk still compares
    the card's photo with the person.
    """
    require(user, "counter")
    person = get_beneficiary(session, user, beneficiary_code)
    today = today_local()
    if collector is not None and collector not in ("beneficiary", "proxy"):
        raise InvalidInput("collector must be beneficiary or proxy", code="invalid_request")
    if (id_number is None) == (id_qr is None):
        raise InvalidInput("give either id_number or id_qr", code="invalid_request")

    def refuse(reason: FailureReason, detail: str, **params: Any) -> VerificationFailed:
        failure = log_failure(
            session,
            user=user,
            reason=reason,
            detail_code=detail,
            params=params,
            beneficiary_id=person.id,
        )
        return VerificationFailed(
            detail.replace("verification.", "").replace("_", " "),
            reason=reason.value,
            detail_code=detail,
            failure_id=failure.id,
            **params,
        )

    if person.status is not BeneficiaryStatus.ACTIVE:
        raise refuse(
            FailureReason.BENEFICIARY_INACTIVE,
            "verification.beneficiary_inactive",
            roster_status=person.status.value,
        )
    presented, card, unreadable = _presented(id_number, id_qr)
    if unreadable:
        raise refuse(FailureReason.QR_INVALID, "verification.qr_invalid")
    method = VerificationMethod.ID_QR if id_qr is not None else VerificationMethod.ID_NUMBER

    proxy: Proxy | None = None
    if collector is None:
        kind_name, proxy = recognise(person, presented, today)
        if not kind_name:
            raise refuse(FailureReason.ID_MISMATCH, "verification.id_unknown")
        kind = CollectorType(kind_name)
    else:
        kind = CollectorType(collector)
        if kind is CollectorType.PROXY:
            proxy = next((p for p in person.proxies if p.id == proxy_id), None)
            if proxy is None or proxy.revoked_at is not None:
                raise refuse(FailureReason.PROXY_NOT_AUTHORIZED, "verification.not_a_proxy")
    if proxy is not None:
        standing = proxy.status_on(today)
        if standing in ("expired", "not_yet_valid"):
            raise refuse(
                FailureReason.PROXY_EXPIRED,
                f"verification.proxy_{standing}",
                valid_from=proxy.valid_from.isoformat() if proxy.valid_from else "",
                valid_until=proxy.valid_until.isoformat() if proxy.valid_until else "",
            )
        if is_child(person, today) and not proxy.is_guardian:
            raise refuse(FailureReason.PROXY_NOT_AUTHORIZED, "verification.child_needs_guardian")
    elif is_child(person, today):
        raise refuse(FailureReason.PROXY_NOT_AUTHORIZED, "verification.child_needs_guardian")

    expected = proxy.id_number if proxy is not None else person.id_number
    if not expected:
        raise refuse(FailureReason.ID_MISMATCH, "verification.no_id_on_record")
    if expected not in presented:
        raise refuse(FailureReason.ID_MISMATCH, "verification.id_mismatch")

    warnings: list[str] = []
    if card is not None and kind is CollectorType.BENEFICIARY:
        if person.date_of_birth is not None and card.date_of_birth != person.date_of_birth:
            raise refuse(FailureReason.ID_MISMATCH, "verification.birth_date_differs")
        if person.date_of_birth is None and card.date_of_birth.year != person.birth_year:
            raise refuse(FailureReason.ID_MISMATCH, "verification.birth_year_differs")
    if kind is CollectorType.BENEFICIARY and len(expected) == 12:
        contradiction = cccd_mismatch(
            expected, gender=person.gender.value, birth_year=person.birth_year
        )
        if contradiction:
            warnings.append(contradiction)

    now = utcnow()
    with write_transaction(session):
        verification = Verification(
            beneficiary_id=person.id,
            collector_type=kind,
            proxy_id=proxy.id if proxy else None,
            method=method,
            user_id=user.id,
            point_id=user.payout_point_id,
            created_at=now,
            expires_at=now + timedelta(minutes=VERIFICATION_MINUTES),
            card_name=card.full_name[:200] if card else None,
            card_address=card.address[:300] if card else None,
            card_birth=card.date_of_birth if card else None,
            warnings="; ".join(warnings)[:500] or None,
        )
        session.add(verification)
        session.flush()
        record_event(
            session,
            actor=user.username,
            action=AuditAction.VERIFICATION_SUCCEEDED,
            object_type="verification",
            object_id=verification.id,
            data={
                "beneficiary": person.code,
                "collector": kind.value,
                "proxy_id": proxy.id if proxy else None,
                "method": method.value,
                "recognised": collector is None,
            },
        )
    comparison = None
    if card is not None:
        comparison = CardComparison(
            card_name=card.full_name,
            card_address=card.address,
            card_birth=card.date_of_birth,
            roster_name=proxy.full_name if proxy else person.full_name,
            roster_address=", ".join(
                part
                for part in (person.village, person.commune.name, person.commune.district_name)
                if part
            ),
            warnings=tuple(warnings),
        )
    return VerificationResult(
        verification=verification,
        collector_name=proxy.full_name if proxy else person.full_name,
        card=comparison,
        warnings=tuple(warnings),
    )


def get_verification(session: Session, user: User, verification_id: int) -> Verification:
    """Return a live verification made by this user, or refuse it."""
    verification = session.get(Verification, verification_id)
    if verification is None or verification.user_id != user.id:
        # Someone else's verification is as good as none.
        raise NotFound("no such verification", code="verification_not_found")
    if verification.expires_at <= utcnow():
        raise Refused("the verification has expired; verify again", code="verification_expired")
    return verification


def expires_in(verification: Verification, now: datetime | None = None) -> int:
    """Return the seconds a verification has left."""
    return max(0, int((verification.expires_at - (now or utcnow())).total_seconds()))
