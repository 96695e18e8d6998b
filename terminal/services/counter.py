"""At the counter: finding a beneficiary and reading their file.

Staff see only the communes their payout point serves (``terminal.policy``);
anything outside looks exactly like something that does not exist (NotFound), so
ids cannot be probed. Verifying the collector is ``services.verifications``;
paying is ``services.payouts``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, select, tuple_, union
from sqlalchemy.orm import Session, lazyload

from terminal.clock import today_local
from terminal.models import (
    Area,
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


def _scoped(query: Select[Any], scope: list[int] | None) -> Select[Any]:
    """Limit a beneficiary query to a scope."""
    if scope is None:
        return query
    return query.where(Beneficiary.commune_id.in_(scope or [-1]))


def get_beneficiary(session: Session, user: User, code: str) -> Beneficiary:
    """Return a beneficiary in the user's scope by code, or NotFound."""
    text = clean_text(code or "")[:32].upper()
    person = session.scalar(
        _scoped(select(Beneficiary).where(Beneficiary.code == text), commune_scope(session, user))
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


def _prefix_end(value: str) -> str | None:
    """Return the first string after every string starting with value, if there is one.

    Search keys compare byte by byte on both databases (``models.base.search_key``),
    so the keys starting with "nguyen" are those from "nguyen" up to "nguyeo": a
    range any index reads in order. (SQLite's GLOB would also use the index, but
    re-plans the statement for every pattern.)
    """
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
    scope = commune_scope(session, user)
    position = _read_cursor(after)
    params: dict[str, Any] = {"value": value, "count": limit + 1}
    if scope is not None:
        params["scope"] = scope or [-1]
    if commune:
        params["commune"] = fold(commune)
    if position is not None:
        params["after_key"], params["after_code"] = position
    shape = {"scoped": scope is not None, "commune": bool(commune)}
    if kind == "name":
        params["end"] = _prefix_end(value)
        # One lower bound only, so that the index is entered right at the cursor; a
        # cursor before the prefix leaves every match after it.
        shape.update(
            after=position is not None and position[0] >= value, bounded=bool(params["end"])
        )
        found = [
            (getattr(person, stream), person)
            for stream in ("name_key", "given_key")
            for person in session.scalars(_statement(stream, **shape), params)
        ]
        found.sort(key=lambda hit: (hit[0], hit[1].code))
    else:
        statement = _statement(kind, after=position is not None, bounded=False, **shape)
        found = [(person.name_key, person) for person in session.scalars(statement, params)]
    cursor = None
    if len(found) > limit:
        found = found[:limit]
        key, last = found[-1]
        cursor = f"{key}|{last.code}"
    people = [p for _, p in found]
    due = _due(session, [p.id for p in people])
    return [SearchHit(p, *due.get(p.id, (0, 0))) for p in people], cursor


@functools.cache
def _statement(
    kind: str, *, scoped: bool, commune: bool, after: bool, bounded: bool
) -> Select[tuple[Beneficiary]]:
    """Return the statement of one shape of search, its values left as parameters.

    Built once per shape: building a statement costs more than running it. kind is
    "id", "phone" or "code", ordered by (name key, code); or "name_key" or
    "given_key", one index read in its order (key, code) from the cursor on, which
    stops after `count` people of the scope, so no match beyond is read or sorted.
    Parameters: value, end, after_key, after_code, scope, commune, count.
    """
    value = bindparam("value")
    # A hit shows its commune, never its proxies: those load only if asked for.
    query = select(Beneficiary).options(lazyload(Beneficiary.proxies))
    if kind in ("name_key", "given_key"):
        own, other = (
            (Beneficiary.name_key, Beneficiary.given_key)
            if kind == "name_key"
            else (Beneficiary.given_key, Beneficiary.name_key)
        )
        order = own
        start = tuple_(own, Beneficiary.code) > tuple_(
            bindparam("after_key"), bindparam("after_code")
        )
        query = query.where(start if after else own >= value)
        other_matches = other >= value
        if bounded:
            query = query.where(own < bindparam("end"))
            other_matches = and_(other_matches, other < bindparam("end"))
        # Someone whose other key matches too is listed under the smaller of the two
        # (ties: under the full name), so that each person comes once.
        smaller = other < own if kind == "name_key" else other <= own
        query = query.where(~and_(other_matches, smaller))
    else:
        order = Beneficiary.name_key
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
        else:
            query = query.where(
                (Beneficiary.phone if kind == "phone" else Beneficiary.code) == value
            )
        if after:
            query = query.where(
                tuple_(Beneficiary.name_key, Beneficiary.code)
                > tuple_(bindparam("after_key"), bindparam("after_code"))
            )
    if commune:
        query = query.where(Beneficiary.commune.has(Area.name_key == bindparam("commune")))
    if scoped:
        query = query.where(Beneficiary.commune_id.in_(bindparam("scope", expanding=True)))
    return query.order_by(order, Beneficiary.code).limit(bindparam("count"))


_DUE = (
    select(Entitlement.beneficiary_id, func.count(), func.sum(Entitlement.amount_vnd))
    .where(
        Entitlement.beneficiary_id.in_(bindparam("ids", expanding=True)),
        Entitlement.status == EntitlementStatus.DUE,
    )
    .group_by(Entitlement.beneficiary_id)
)


def _due(session: Session, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """Return (count, amount) of due entitlements per beneficiary."""
    if not ids:
        return {}
    rows = session.execute(_DUE, {"ids": list(ids)})
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
