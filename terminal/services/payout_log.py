"""The payout log: filtered pages for the API and pages, and a streamed CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from terminal.clock import check_day, day_bounds, to_local
from terminal.models import (
    Area,
    Beneficiary,
    Channel,
    Payout,
    PayoutPoint,
    PayoutStatus,
    User,
)
from terminal.models.base import MAX_ID
from terminal.policy import Permission, point_of, require
from terminal.services.errors import InvalidInput
from terminal.text import fold

CSV_COLUMNS = (
    "receipt_no",
    "paid_at",
    "payout_point",
    "beneficiary_code",
    "beneficiary_name",
    "commune",
    "amount",
    "channel",
    "collector_type",
    "collector_name",
    "provider_ref",
    "staff",
    "status",
    "entitlement_ids",
)
# A cell starting with one of these is a formula to Excel: quote it (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class PayoutFilter:
    """What part of the log to show."""

    date_from: date | None = None
    date_to: date | None = None
    point_code: str | None = None
    commune: str | None = None
    status: str | None = None

    def __post_init__(self) -> None:
        """Refuse days out of range and a range that ends before it starts."""
        for day in (self.date_from, self.date_to):
            if day is not None:
                try:
                    check_day(day)
                except ValueError as exc:
                    raise InvalidInput(str(exc), code="invalid_request") from None
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise InvalidInput("'to' is before 'from'", code="invalid_request")


def _query(user: User, filters: PayoutFilter) -> Select[Any]:
    """Build the log query within what the user may see."""
    query = select(Payout)
    point = point_of(user)
    if point is not None:
        query = query.where(Payout.point_id == point)
    if filters.date_from:
        query = query.where(Payout.paid_at >= day_bounds(filters.date_from)[0])
    if filters.date_to:
        query = query.where(Payout.paid_at < day_bounds(filters.date_to)[1])
    if filters.point_code:
        query = query.where(
            Payout.point_id.in_(
                select(PayoutPoint.id).where(PayoutPoint.code == filters.point_code.upper())
            )
        )
    if filters.commune:
        communes = select(Area.id).where(Area.name_key == fold(filters.commune))
        query = query.where(
            Payout.beneficiary_id.in_(
                select(Beneficiary.id).where(Beneficiary.commune_id.in_(communes))
            )
        )
    if filters.status:
        query = query.where(Payout.status == PayoutStatus(filters.status))
    return query


def row_of(payout: Payout) -> dict[str, Any]:
    """Return one payout as a flat row of the log."""
    from terminal.services.payouts import collector_name

    return {
        "payout_id": payout.id,
        "receipt_no": payout.receipt.receipt_no if payout.receipt else None,
        "paid_at": to_local(payout.paid_at),
        "payout_point": payout.point.code,
        "beneficiary_code": payout.beneficiary.code,
        "beneficiary_name": payout.beneficiary.full_name,
        "commune": payout.beneficiary.commune.name,
        "amount": payout.amount_vnd,
        "channel": "account" if payout.channel is Channel.ACCOUNT else "cash",
        "collector": {"type": payout.collector_type.value, "full_name": collector_name(payout)},
        "provider_ref": payout.provider_ref,
        "staff": payout.user.username,
        "status": payout.status.value,
        "entitlement_ids": [line.entitlement_id for line in payout.lines],
    }


def page(
    session: Session, user: User, filters: PayoutFilter, *, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of the log, newest first, and the cursor of the next page."""
    query = _query(user, filters)
    if after:
        if not (after.isascii() and after.isdigit()) or int(after) > MAX_ID:
            raise InvalidInput("bad cursor", code="invalid_request")
        query = query.where(Payout.id < int(after))
    payouts = list(session.scalars(query.order_by(Payout.id.desc()).limit(limit + 1)))
    cursor = None
    if len(payouts) > limit:
        payouts = payouts[:limit]
        cursor = str(payouts[-1].id)
    return [row_of(p) for p in payouts], cursor


def safe_cell(value: Any) -> str:
    """Return a CSV cell that a spreadsheet will show as text, never run as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_lines(
    open_session: Callable[[], Session], user: User, filters: PayoutFilter
) -> Iterator[str]:
    """Return the whole filtered log as CSV text, a batch of rows at a time.

    Exports of personal data are for auditors only (DESIGN rule 8): the policy's
    export permission is checked here, before anything is read.

    The rows are read with a session of the iterator's own: a streamed response
    outlives the request, whose session is closed before the first row is sent.
    The query runs before this returns, so a refusal or an error is still an
    error status: once the header is sent, a broken stream would read as a short
    log (a script sees "no payouts").
    """
    require(user, Permission.EXPORT)
    rows = _csv_lines(open_session, user.id, filters)
    first = next(rows, None)
    return _resumed(first, rows)


def _resumed(first: str | None, rows: Generator[str]) -> Iterator[str]:
    """Yield the line already read, then the rest; closing this closes the rows."""
    try:
        if first is not None:
            yield first
        yield from rows
    finally:
        rows.close()


def _csv_lines(
    open_session: Callable[[], Session], user_id: int, filters: PayoutFilter
) -> Generator[str]:
    """Yield the CSV text of the log from a session of its own."""
    with closing(open_session()) as session:
        user = session.get(User, user_id)
        if user is None:
            return
        yield from _csv_rows(session, user, filters)


def _csv_rows(session: Session, user: User, filters: PayoutFilter) -> Iterator[str]:
    """Yield the CSV text of the log, batch by batch, the header with the first batch."""
    query = _query(user, filters).order_by(Payout.id).execution_options(yield_per=1000)
    payouts = session.scalars(query)  # runs the query: an error comes before any byte
    buffer = io.StringIO()
    buffer.write("\ufeff")  # Excel reads the file as UTF-8
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    batch = 0
    for payout in payouts:
        row = row_of(payout)
        writer.writerow(
            [
                safe_cell(row["receipt_no"]),
                row["paid_at"].isoformat(),
                safe_cell(row["payout_point"]),
                safe_cell(row["beneficiary_code"]),
                safe_cell(row["beneficiary_name"]),
                safe_cell(row["commune"]),
                row["amount"],
                row["channel"],
                row["collector"]["type"],
                safe_cell(row["collector"]["full_name"]),
                safe_cell(row["provider_ref"]),
                safe_cell(row["staff"]),
                row["status"],
                " ".join(str(i) for i in row["entitlement_ids"]),
            ]
        )
        batch += 1
        if batch >= 500:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            batch = 0
    if buffer.getvalue():
        yield buffer.getvalue()
