"""At the counter: finding a beneficiary and reading their file.

Staff see only the communes their payout point serves (``terminal.policy``);
anything outside looks exactly like something that does not exist (NotFound), so
ids cannot be probed. Verifying the collector is ``services.verifications``;
paying is ``services.payouts``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, func, select, tuple_, union
from sqlalchemy.orm import Session, lazyload

from terminal.clock import today_local
from terminal.models import (
    Beneficiary,
    Entitlement,
    EntitlementStatus,
    Failure,
    Payout,
    Period,
    Proxy,
    User,
)
from terminal.policy import commune_scope
from terminal.services.errors import NotFound
from terminal.text import (
    InvalidQr,
    TextError,
    clean_text,
    fold,
    normalize_id_number,
    normalize_phone,
    parse_cccd_qr,
)

log = logging.getLogger("terminal")

SEARCH_MAX = 100
CODE_RE = re.compile(r"^[A-Za-z]{1,6}[0-9][A-Za-z0-9._/-]*$")


# ---- scope ----------------------------------------------------------------------


def commune_ids(session: Session, user: User) -> list[int] | None:
    """Return the communes a user acts in, or None for every commune (auditors, admins)."""
    return commune_scope(session, user)


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
    """Return "column starts with value" as a range of the column's index.

    Search keys compare byte by byte on both databases (``models.base.search_key``),
    so the keys starting with "nguyen" are those from "nguyen" up to "nguyeo": a
    range any index reads in order. (SQLite's GLOB would also use the index, but
    re-plans the statement for every pattern.) The dialect no longer matters.
    """
    end = _prefix_end(value)
    return column >= value if end is None else and_(column >= value, column < end)


def _prefix_end(value: str) -> str | None:
    """Return the first string after every string starting with value, if there is one."""
    while value:
        following = ord(value[-1]) + 1
        if following == 0xD800:  # surrogates are not text: skip them
            following = 0xE000
        if following <= 0x10FFFF:
            return value[:-1] + chr(following)
        value = value[:-1]
    return None


def _read_cursor(after: str | None) -> tuple[str, str] | None:
    """Return the (key, code) a cursor points after, or None for the first page."""
    if not after:
        return None
    key, _, code = after.rpartition("|")  # a code never holds "|"
    return key, code


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

    Answered from indexes. Code, ID and phone are exact matches, ordered by (name
    key, code). A name is a prefix of the folded full name ("nguyen thi h") or of
    the folded name starting from the given name ("hoa"): each of the two name
    indexes is read in order for one page at most and the two are merged, so a
    common prefix costs no more than a rare one. Names are ordered by the key that
    matched, then the code; someone matched by both keys is listed once, under the
    smaller. Pages follow the cursor "key|code" of the last one shown.
    """
    limit = max(1, min(int(limit), SEARCH_MAX))
    kind, value = classify_query(q)
    if kind == "empty":
        return [], None
    scope = commune_ids(session, user)
    position = _read_cursor(after)
    if kind == "name":
        found = _name_matches(session, value, scope, commune, position, limit + 1)
    else:
        query = select(Beneficiary)
        if kind == "id":
            # A proxy's ID finds the people they collect for too. A union, not an OR:
            # PostgreSQL cannot tell how few rows "id IN (subquery) OR ..." matches and
            # would walk the name index in result order instead.
            by_id = union(
                select(Beneficiary.id).where(Beneficiary.id_number == value),
                select(Proxy.beneficiary_id).where(
                    Proxy.id_number == value, Proxy.revoked_at.is_(None)
                ),
            )
            query = query.where(Beneficiary.id.in_(by_id))
        elif kind == "phone":
            query = query.where(Beneficiary.phone == value)
        else:
            query = query.where(Beneficiary.code == value)
        if position is not None:
            query = query.where(tuple_(Beneficiary.name_key, Beneficiary.code) > position)
        query = _narrowed(query, scope, commune)
        query = query.order_by(Beneficiary.name_key, Beneficiary.code).limit(limit + 1)
        found = [(p.name_key, p) for p in session.scalars(query)]
    cursor = None
    if len(found) > limit:
        found = found[:limit]
        key, last = found[-1]
        cursor = f"{key}|{last.code}"
    people = [p for _, p in found]
    due = _due(session, [p.id for p in people])
    return [SearchHit(p, *due.get(p.id, (0, 0))) for p in people], cursor


def _narrowed(query: Select[Any], scope: list[int] | None, commune: str | None) -> Select[Any]:
    """Limit a search to the user's scope and to a commune, and load what a hit shows."""
    if commune:
        query = query.where(Beneficiary.commune.has(name_key=fold(commune)))
    # A hit shows its commune, never its proxies: load those only if asked for.
    return _scoped(query, scope).options(lazyload(Beneficiary.proxies))


def _name_matches(
    session: Session,
    key: str,
    scope: list[int] | None,
    commune: str | None,
    after: tuple[str, str] | None,
    count: int,
) -> list[tuple[str, Beneficiary]]:
    """Return the first `count` people whose name key or given-name key starts with key.

    Each key's index is read in its own order (key, code) from the cursor on, and
    stops after `count` people of the scope: no match beyond is ever read or sorted.
    """
    end = _prefix_end(key)
    dialect = session.get_bind().dialect.name
    found: list[tuple[str, Beneficiary]] = []
    for own, other in (
        (Beneficiary.name_key, Beneficiary.given_key),
        (Beneficiary.given_key, Beneficiary.name_key),
    ):
        query = select(Beneficiary)
        if end is not None:
            query = query.where(own < end)
        # One lower bound only, so that the index is entered right at the cursor.
        if after is not None and after[0] >= key:
            query = query.where(tuple_(own, Beneficiary.code) > after)
        else:
            query = query.where(own >= key)
        # Someone whose other key matches too is listed under the smaller of the two
        # (ties: under the full name), so that each person comes once.
        smaller = other < own if own is Beneficiary.name_key else other <= own
        query = query.where(~and_(_prefix_match(other, key, dialect), smaller))
        query = _narrowed(query, scope, commune).order_by(own, Beneficiary.code).limit(count)
        found.extend((getattr(p, own.key), p) for p in session.scalars(query))
    found.sort(key=lambda hit: (hit[0], hit[1].code))
    return found[:count]


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
    return person.is_child_on(today)


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
