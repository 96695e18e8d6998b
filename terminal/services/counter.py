"""At the counter: finding a beneficiary, and verifying who is collecting.

Staff see only the communes their payout point serves; anything outside looks
exactly like something that does not exist (NotFound), so ids cannot be probed.
Every refused verification is recorded as a Failure in its own transaction, so the
record survives whatever happens to the request afterwards.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from terminal.db import write_transaction
from terminal.formatting import VIETNAM
from terminal.models import (
    Beneficiary,
    BeneficiaryStatus,
    Category,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    Payout,
    Period,
    Proxy,
    Role,
    User,
    Verification,
    VerificationMethod,
    point_communes,
    utcnow,
)
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput, NotFound, Refused
from terminal.text import (
    CccdQr,
    InvalidQr,
    TextError,
    cccd_mismatch,
    clean_text,
    fold,
    normalize_id_number,
    normalize_phone,
    parse_cccd_qr,
)

log = logging.getLogger("terminal")

VERIFICATION_MINUTES = 10
FOLLOW_UP_DAYS = 5
CHILD_AGE = 16
SEARCH_MAX = 100
CODE_RE = re.compile(r"^[A-Za-z]{1,6}[0-9][A-Za-z0-9._/-]*$")


def today_local() -> date:
    """Return today's date in Vietnam."""
    return utcnow().astimezone(VIETNAM).date()


# ---- scope ----------------------------------------------------------------------


def commune_ids(session: Session, user: User) -> list[int] | None:
    """Return the communes a user acts in, or None for every commune (auditors, admins)."""
    if user.role in (Role.AUDITOR, Role.ADMIN):
        return None
    if user.payout_point_id is None:
        return []
    return list(
        session.scalars(
            select(point_communes.c.commune_id).where(
                point_communes.c.point_id == user.payout_point_id
            )
        )
    )


def _scoped(query: Select[Any], scope: list[int] | None) -> Select[Any]:
    """Limit a beneficiary query to a scope."""
    if scope is None:
        return query
    return query.where(Beneficiary.commune_id.in_(scope or [-1]))


def get_beneficiary(session: Session, user: User, code: str) -> Beneficiary:
    """Return a beneficiary in the user's scope by code, or NotFound."""
    text = clean_text(code or "")[:32].upper()
    person = session.scalar(
        _scoped(select(Beneficiary).where(Beneficiary.code == text), commune_ids(session, user))
    )
    if person is None:
        raise NotFound("no such beneficiary", code="beneficiary_not_found")
    return person


# ---- search ---------------------------------------------------------------------


@dataclass(frozen=True)
class SearchHit:
    """One beneficiary found, with what is due to them now."""

    beneficiary: Beneficiary
    due_count: int
    due_vnd: int


def classify_query(q: str) -> tuple[str, str]:
    """Tell what a search text is: ('id', n), ('phone', n), ('code', c), ('name', key).

    A scanned CCCD QR code is read for its ID number.
    """
    text = clean_text(q or "", max_len=1000) if len(q or "") <= 1000 else ""
    if not text:
        return "empty", ""
    if "|" in text:
        try:
            return "id", parse_cccd_qr(q).id_number
        except InvalidQr:
            return "empty", ""
    compact = re.sub(r"[\s.\-]", "", text)
    if compact.isdigit() or compact.startswith("+84"):
        digits = compact.lstrip("+")
        if len(digits) in (9, 12) or (len(digits) in (8, 11) and not digits.startswith("0")):
            try:
                number = normalize_id_number(digits)
            except TextError:
                number = None
            if number:
                return "id", number
        try:
            phone = normalize_phone(compact)
        except TextError:
            phone = None
        if phone:
            return "phone", phone
        return "code", compact
    if CODE_RE.match(compact) and any(c.isdigit() for c in compact):
        return "code", compact.upper()
    key = fold(text)
    return ("name", key) if key else ("empty", "")


def _prefix_match(column: Any, value: str, dialect: str) -> Any:
    """Return "column starts with value" in a form the database answers from an index.

    SQLite uses an index for a prefix pattern only when the match is case-sensitive,
    as GLOB is (the keys are folded to lower case already); PostgreSQL uses the
    text_pattern_ops index for LIKE 'prefix%'.
    """
    if dialect == "sqlite":
        escaped = re.sub(r"([*?\[\]])", r"[\1]", value)
        return column.op("GLOB")(escaped + "*")
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.like(escaped + "%", escape="\\")


def search(
    session: Session,
    user: User,
    q: str,
    *,
    commune: str | None = None,
    limit: int = 20,
    after: str | None = None,
) -> tuple[list[SearchHit], str | None]:
    """Find beneficiaries by code, ID number, phone or name (accents optional).

    Answered from indexes: exact matches on code, ID and phone, and a prefix match
    on the folded full name or the folded name starting from the given name. The
    result is ordered by (name key, code) and pages with a cursor after that pair.
    """
    limit = max(1, min(int(limit), SEARCH_MAX))
    kind, value = classify_query(q)
    scope = commune_ids(session, user)
    query = select(Beneficiary)
    if kind == "empty":
        return [], None
    if kind == "id":
        # A proxy's ID finds the people they collect for too.
        by_proxy = select(Proxy.beneficiary_id).where(
            Proxy.id_number == value, Proxy.revoked_at.is_(None)
        )
        query = query.where(or_(Beneficiary.id_number == value, Beneficiary.id.in_(by_proxy)))
    elif kind == "phone":
        query = query.where(Beneficiary.phone == value)
    elif kind == "code":
        query = query.where(Beneficiary.code == value)
    else:
        dialect = session.get_bind().dialect.name
        query = query.where(
            or_(
                _prefix_match(Beneficiary.name_key, value, dialect),
                _prefix_match(Beneficiary.given_key, value, dialect),
            )
        )
    if commune:
        query = query.where(Beneficiary.commune.has(name_key=fold(commune)))
    query = _scoped(query, scope)
    if after:
        key, _, code = after.partition("|")
        query = query.where(
            or_(
                Beneficiary.name_key > key,
                and_(Beneficiary.name_key == key, Beneficiary.code > code),
            )
        )
    people = list(
        session.scalars(query.order_by(Beneficiary.name_key, Beneficiary.code).limit(limit + 1))
    )
    cursor = None
    if len(people) > limit:
        people = people[:limit]
        last = people[-1]
        cursor = f"{last.name_key}|{last.code}"
    due = _due(session, [p.id for p in people])
    return [SearchHit(p, *due.get(p.id, (0, 0))) for p in people], cursor


def _due(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Return (count, amount) of due entitlements per beneficiary."""
    if not ids:
        return {}
    rows = session.execute(
        select(Entitlement.beneficiary_id, func.count(), func.sum(Entitlement.amount_vnd))
        .where(Entitlement.beneficiary_id.in_(ids), Entitlement.status == EntitlementStatus.DUE)
        .group_by(Entitlement.beneficiary_id)
    )
    return {b: (int(c), int(s or 0)) for b, c, s in rows}


# ---- the beneficiary page -------------------------------------------------------


@dataclass(frozen=True)
class ProxyView:
    """A proxy with how it stands today."""

    proxy: Proxy
    status: str


@dataclass(frozen=True)
class BeneficiaryFile:
    """Everything the counter shows about one beneficiary."""

    beneficiary: Beneficiary
    due: list[Entitlement]
    entitlements: list[Entitlement]
    proxies: list[ProxyView]
    payouts: list[Payout]
    failures: list[Failure]
    is_child: bool

    @property
    def due_vnd(self) -> int:
        """Return the total due now."""
        return sum(e.amount_vnd for e in self.due)


def is_child(person: Beneficiary, today: date) -> bool:
    """Tell whether a beneficiary is a child, who is paid only through a guardian."""
    return person.category is Category.ORPHAN or today.year - person.birth_year < CHILD_AGE


def beneficiary_file(session: Session, user: User, code: str) -> BeneficiaryFile:
    """Return a beneficiary's due entitlements, proxies and history."""
    person = get_beneficiary(session, user, code)
    today = today_local()
    entitlements = list(
        session.scalars(
            select(Entitlement)
            .join(Period)
            .where(Entitlement.beneficiary_id == person.id)
            .order_by(Period.code)
        )
    )
    payouts = list(
        session.scalars(
            select(Payout).where(Payout.beneficiary_id == person.id).order_by(Payout.paid_at.desc())
        )
    )
    failures = list(
        session.scalars(
            select(Failure)
            .where(Failure.beneficiary_id == person.id)
            .order_by(Failure.created_at.desc())
            .limit(50)
        )
    )
    return BeneficiaryFile(
        beneficiary=person,
        due=[e for e in entitlements if e.status is EntitlementStatus.DUE],
        entitlements=entitlements,
        proxies=[ProxyView(p, p.status_on(today)) for p in person.proxies],
        payouts=payouts,
        failures=failures,
        is_child=is_child(person, today),
    )


# ---- failures -------------------------------------------------------------------


def log_failure(
    session: Session,
    *,
    user: User | None,
    reason: FailureReason,
    detail: str = "",
    beneficiary_id: int | None = None,
    entitlement_id: int | None = None,
    channel: Channel | None = None,
    provider_ref: str | None = None,
) -> Failure:
    """Record a failed attempt in its own committed transaction, with its audit event."""
    if session.in_transaction():
        session.rollback()
    with write_transaction(session):
        failure = Failure(
            beneficiary_id=beneficiary_id,
            entitlement_id=entitlement_id,
            reason=reason,
            detail=clean_text(detail)[:1000],
            channel=channel,
            provider_ref=provider_ref,
            point_id=user.payout_point_id if user else None,
            user_id=user.id if user else None,
            status=FailureStatus.OPEN,
            due_by=today_local() + timedelta(days=FOLLOW_UP_DAYS),
            note="",
        )
        session.add(failure)
        session.flush()
        record_event(
            session,
            actor=user.username if user else "system",
            action="failure.recorded",
            object_type="failure",
            object_id=failure.id,
            data={
                "reason": reason.value,
                "beneficiary_id": beneficiary_id,
                "entitlement_id": entitlement_id,
                "channel": channel.value if channel else None,
            },
        )
    log.info("failure recorded: id=%s reason=%s", failure.id, reason.value)
    return failure


# ---- verification ---------------------------------------------------------------


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


def verify_collector(
    session: Session,
    user: User,
    *,
    beneficiary_code: str,
    collector: str,
    proxy_id: int | None = None,
    id_number: str | None = None,
    id_qr: str | None = None,
) -> VerificationResult:
    """Check that the person at the counter is the beneficiary or one of their proxies.

    The typed or scanned ID number must be the collector's; a proxy must hold an
    authorisation valid today; a child is paid only through a guardian; suspended,
    deceased or moved beneficiaries are refused. A QR code speeds entry but proves
    nothing: the clerk still compares the card's photo with the person.
    """
    person = get_beneficiary(session, user, beneficiary_code)
    today = today_local()
    try:
        kind = CollectorType(collector)
    except ValueError:
        raise InvalidInput(
            "collector must be beneficiary or proxy", code="invalid_request"
        ) from None
    if (id_number is None) == (id_qr is None):
        raise InvalidInput("give either id_number or id_qr", code="invalid_request")

    def refuse(reason: FailureReason, detail: str) -> VerificationFailed:
        failure = log_failure(
            session, user=user, reason=reason, detail=detail, beneficiary_id=person.id
        )
        return VerificationFailed(
            detail, reason=reason.value, failure_id=failure.id, code="verification_failed"
        )

    if person.status is not BeneficiaryStatus.ACTIVE:
        raise refuse(FailureReason.BENEFICIARY_INACTIVE, f"beneficiary is {person.status.value}")

    proxy = None
    if kind is CollectorType.PROXY:
        proxy = next((p for p in person.proxies if p.id == proxy_id), None)
        if proxy is None or proxy.revoked_at is not None:
            raise refuse(
                FailureReason.PROXY_NOT_AUTHORIZED, "not an authorised proxy of this beneficiary"
            )
        standing = proxy.status_on(today)
        if standing in ("expired", "not_yet_valid"):
            raise refuse(
                FailureReason.PROXY_EXPIRED, f"the authorisation is {standing.replace('_', ' ')}"
            )
        if is_child(person, today) and not proxy.is_guardian:
            raise refuse(
                FailureReason.PROXY_NOT_AUTHORIZED, "a child is paid only through a guardian"
            )
    elif is_child(person, today):
        raise refuse(FailureReason.PROXY_NOT_AUTHORIZED, "a child is paid only through a guardian")

    expected = proxy.id_number if proxy is not None else person.id_number
    card: CccdQr | None = None
    if id_qr is not None:
        try:
            card = parse_cccd_qr(id_qr)
        except InvalidQr:
            raise refuse(
                FailureReason.QR_INVALID, "the scanned text is not a CCCD QR code"
            ) from None
        presented = {card.id_number, card.old_id_number} - {None}
        method = VerificationMethod.ID_QR
    else:
        try:
            typed = normalize_id_number(id_number)
        except TextError:
            typed = None
        presented = {typed} - {None}
        method = VerificationMethod.ID_NUMBER
    if not expected:
        raise refuse(FailureReason.ID_MISMATCH, "no ID number on record for this collector")
    if expected not in presented:
        raise refuse(FailureReason.ID_MISMATCH, "the ID number does not match the record")

    warnings: list[str] = []
    if card is not None and kind is CollectorType.BENEFICIARY:
        if person.date_of_birth is not None and card.date_of_birth != person.date_of_birth:
            raise refuse(
                FailureReason.ID_MISMATCH, "the card's date of birth differs from the record"
            )
        if person.date_of_birth is None and card.date_of_birth.year != person.birth_year:
            raise refuse(
                FailureReason.ID_MISMATCH, "the card's year of birth differs from the record"
            )
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
            action="verification.succeeded",
            object_type="verification",
            object_id=verification.id,
            data={
                "beneficiary": person.code,
                "collector": kind.value,
                "proxy_id": proxy.id if proxy else None,
                "method": method.value,
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
