"""Reports for auditors and supervisors: coverage of a period, and the period's return file.

Coverage (API.md, "Audit and reports") counts, per district or commune, the
entitlements of one payment period and how many of them a completed payout paid.
Each figure means exactly this:

- ``beneficiaries``: people with an entitlement of the period that is not cancelled
  (one entitlement per person and period, so this is also the number of entitlements).
  A cancelled entitlement (the person stopped, or left off the month's list) counts
  nowhere: the person is not owed the month.
- ``paid``: those whose entitlement of the period is paid by a completed payout, that
  is a payout line not reversed, in a payout whose status is ``completed``. A reversed
  payout pays nothing: its entitlements are due again and count as unpaid, unless a
  later payout paid them again. Arrears paid in a later month count in the period the
  entitlement belongs to, on the day they are paid.
- ``paid_pct``: ``paid / beneficiaries`` in per cent, one decimal, rounded half up;
  0 when there are no beneficiaries.
- ``amount_due``: the đồng of the period's entitlements not cancelled (arrears included).
- ``amount_paid``: the đồng of the live payout lines paying them.
- ``cash`` / ``account``: paid people by the payout's channel (cash at the counter or at
  home is ``cash``; an account withdrawal is ``account``); ``cash + account = paid``.
- ``via_proxy``: paid people whose money a proxy (authorised person or guardian) took.

Areas are the people's communes as the roster says now (a person who moved is counted
where the roster puts them), grouped by commune or by the commune's district. Only
areas with at least one beneficiary in the period are listed. Supervisors see the
communes their point serves (``policy.commune_scope``); auditors every commune.

The return file (API.md, "More for auditors") has one row per entitlement of the
period, cancelled ones included, with the status the ministry's system (MIS) uses:

- ``Đã trả`` (paid): paid by a completed payout, as above.
- ``Chưa trả và dừng chi trả`` (unpaid and stopped): not paid, and either the
  entitlement is cancelled (the roster stopped the person or left them off the list)
  or the person's status on the roster is suspended, deceased or moved. Such a month
  is not carried over.
- ``Chưa trả`` (unpaid, carried over): every other unpaid entitlement: due, of a person
  still receiving. A withdrawal whose outcome is still unknown counts here until it is
  reconciled.

Coverage is one grouped query (by commune id, then named and summed by district): no
Python loop over a period's entitlements. The return file is read commune by commune in
plain rows (``yield_per``), so no sort of the whole period is needed and memory stays
bounded by a commune whatever the size of the roster.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import IO, Any

from sqlalchemy import Select, and_, case, func, select
from sqlalchemy.orm import Session, aliased

from terminal.clock import to_local
from terminal.models import (
    Area,
    Beneficiary,
    BeneficiaryStatus,
    Category,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Payout,
    PayoutLine,
    PayoutPoint,
    PayoutStatus,
    Period,
    Receipt,
    User,
)
from terminal.policy import Permission, commune_scope, require
from terminal.services.audit import record_export
from terminal.services.errors import InvalidInput, NotFound
from terminal.services.payout_log import safe_cell
from terminal.services.roster import parse_period

GROUPINGS = ("district", "commune")
FORMATS = ("csv", "xlsx")
BATCH = 2000

# The three payment statuses of the ministry's system (DESIGN.md, "Rules of the trade").
PAID = "Đã trả"
UNPAID = "Chưa trả"
STOPPED = "Chưa trả và dừng chi trả"

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


# ---- coverage ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CoverageRow:
    """The figures of one area (or of them all) for a period."""

    area: str
    district: str | None
    beneficiaries: int
    paid: int
    amount_due: int
    amount_paid: int
    cash: int
    account: int
    via_proxy: int

    @property
    def paid_tenths(self) -> int:
        """Return the paid share in tenths of a per cent, rounded half up (integers only)."""
        if not self.beneficiaries:
            return 0
        return (self.paid * 1000 * 2 + self.beneficiaries) // (self.beneficiaries * 2)

    @property
    def paid_pct(self) -> Decimal:
        """Return the paid share in per cent with one decimal: 43.5."""
        return Decimal(self.paid_tenths) / 10

    def as_dict(self) -> dict[str, Any]:
        """Return the row as the API gives it."""
        return {
            "area": self.area,
            "district": self.district,
            "beneficiaries": self.beneficiaries,
            "paid": self.paid,
            "paid_pct": float(self.paid_pct),
            "amount_due": self.amount_due,
            "amount_paid": self.amount_paid,
            "cash": self.cash,
            "account": self.account,
            "via_proxy": self.via_proxy,
        }


@dataclass(frozen=True)
class Coverage:
    """A period's coverage by area, and the figures of every area together."""

    period: str
    group_by: str
    rows: list[CoverageRow]
    total: CoverageRow


def check_group_by(group_by: str | None) -> str:
    """Return a grouping of coverage, or refuse one that is not district or commune."""
    if group_by not in GROUPINGS:
        raise InvalidInput("group_by must be district or commune", code="group_by_invalid")
    return group_by


def find_period(session: Session, period: str | None) -> Period:
    """Return the period of a YYYY-MM code: 400 when malformed, 404 when unknown."""
    code = parse_period(period or "")
    found = session.scalar(select(Period).where(Period.code == code))
    if found is None:
        raise NotFound(f"no payment period {code}", code="period_not_found", period=code)
    return found


def period_codes(session: Session) -> list[str]:
    """Return every period's code, newest first (a page's choice)."""
    return list(session.scalars(select(Period.code).order_by(Period.code.desc())))


def _paid_joins(query: Select[Any]) -> Select[Any]:
    """Join an entitlement to the live line and completed payout that paid it, if any.

    The partial unique index on live lines allows one per entitlement: the join never
    counts an entitlement twice.
    """
    return query.outerjoin(
        PayoutLine,
        and_(PayoutLine.entitlement_id == Entitlement.id, PayoutLine.reversed_at.is_(None)),
    ).outerjoin(
        Payout,
        and_(Payout.id == PayoutLine.payout_id, Payout.status == PayoutStatus.COMPLETED),
    )


def coverage(
    session: Session, user: User | None, *, period: str | None, group_by: str | None
) -> Coverage:
    """Return a period's coverage by district or commune, within the reader's communes.

    ``user`` None reads every commune (the command line). Refusals: 400
    ``period_invalid`` / ``group_by_invalid``, 404 ``period_not_found``.
    """
    if user is not None:
        require(user, Permission.AUDIT)
    grouping = check_group_by(group_by)
    found = find_period(session, period)
    paid = Payout.id.is_not(None)
    # First by commune id alone (integers, no names joined per entitlement), then the
    # few hundred communes are named and, by district, summed: a third faster at 1,000,000.
    by_commune = (
        select(
            Beneficiary.commune_id.label("commune_id"),
            func.count(Entitlement.id).label("beneficiaries"),
            func.count(Payout.id).label("paid"),
            func.sum(Entitlement.amount_vnd).label("amount_due"),
            func.sum(case((paid, PayoutLine.amount_vnd), else_=0)).label("amount_paid"),
            func.count(case((Payout.channel.in_([Channel.CASH, Channel.CASH_HOME]), 1))).label(
                "cash"
            ),
            func.count(case((Payout.channel == Channel.ACCOUNT, 1))).label("account"),
            func.count(case((Payout.collector_type == CollectorType.PROXY, 1))).label("via_proxy"),
        )
        .select_from(Entitlement)
        .join(Beneficiary, Beneficiary.id == Entitlement.beneficiary_id)
        .where(
            Entitlement.period_id == found.id,
            Entitlement.status != EntitlementStatus.CANCELLED,
        )
    )
    by_commune = _paid_joins(by_commune)
    scope = commune_scope(session, user) if user is not None else None
    if scope is not None:
        by_commune = by_commune.where(Beneficiary.commune_id.in_(scope or [-1]))
    counted = by_commune.group_by(Beneficiary.commune_id).subquery()
    commune = aliased(Area)
    district = aliased(Area)
    if grouping == "commune":
        keys: tuple[Any, ...] = (
            district.name_key,
            district.name,
            commune.name_key,
            commune.id,
            commune.name,
        )
        figures = [counted.c[name] for name in _FIGURES]
    else:
        keys = (district.name_key, district.id, district.name)
        figures = [func.sum(counted.c[name]) for name in _FIGURES]
    query = (
        select(*keys, *figures)
        .select_from(counted)
        .join(commune, commune.id == counted.c.commune_id)
        .outerjoin(district, district.id == commune.parent_id)
    )
    if grouping == "district":
        query = query.group_by(*keys)
    query = query.order_by(*keys)
    rows = []
    for record in session.execute(query):
        numbers = [int(n or 0) for n in record[len(keys) :]]
        if grouping == "commune":
            area, parent = record[4], record[1] or ""
        else:
            area, parent = record[2] or "", None
        rows.append(CoverageRow(area, parent, *numbers))
    totals = [sum(getattr(r, name) for r in rows) for name in _FIGURES]
    return Coverage(
        period=found.code,
        group_by=grouping,
        rows=rows,
        total=CoverageRow("total", None, *totals),
    )


_FIGURES = (
    "beneficiaries",
    "paid",
    "amount_due",
    "amount_paid",
    "cash",
    "account",
    "via_proxy",
)
COVERAGE_COLUMNS = (
    "area",
    "district",
    "beneficiaries",
    "paid",
    "paid_pct",
    "amount_due",
    "amount_paid",
    "cash",
    "account",
    "via_proxy",
)


def coverage_export(session: Session, user: User, report: Coverage, fmt: str) -> bytes:
    """Return the coverage table (total last) as CSV or XLSX, recorded before it is sent."""
    from terminal.services.followup import table_export

    require(user, Permission.AUDIT)
    if fmt not in FORMATS:
        raise InvalidInput("the format must be csv or xlsx", code="format_invalid")

    def cells(row: CoverageRow) -> list[Any]:
        values = row.as_dict()
        # A decimal as text ("43.5"): Excel in any locale shows it as written.
        values["paid_pct"] = str(row.paid_pct)
        values["district"] = values["district"] or ""
        return [values[c] for c in COVERAGE_COLUMNS]

    body = table_export(
        f"coverage-{report.period}",
        COVERAGE_COLUMNS,
        map(cells, [*report.rows, report.total]),
        fmt,
    )
    record_export(
        session,
        actor=user.username,
        kind="coverage",
        fmt=fmt,
        filters={"period": report.period, "group_by": report.group_by},
        rows=len(report.rows),
    )
    return body


# ---- the return file -------------------------------------------------------------------

RETURN_COLUMNS = (
    "Mã đối tượng",
    "Họ và tên",
    "Năm sinh",
    "Huyện",
    "Xã/Phường",
    "Thôn/Tổ",
    "Diện đối tượng",
    "Mức hưởng",
    "Truy lĩnh",
    "Tổng số tiền",
    "Trạng thái chi trả",
    "Ngày nhận",
    "Số biên nhận",
    "Hình thức nhận",
    "Người nhận",
    "Điểm chi trả",
)
# The ministry's own words (as on its list, shared/data/roster-format.md): the file is the
# same in every language of the pages.
CATEGORY_TEXT = {
    Category.ORPHAN: "Trẻ em mồ côi",
    Category.DISABLED_SEVERE: "Người khuyết tật nặng",
    Category.DISABLED_EXTREME: "Người khuyết tật đặc biệt nặng",
    Category.ELDERLY_80: "Người cao tuổi từ 80 tuổi",
    Category.OTHER: "Khác",
}
CHANNEL_TEXT = {
    Channel.CASH: "Tiền mặt",
    Channel.CASH_HOME: "Tiền mặt tại nhà",
    Channel.ACCOUNT: "Tài khoản",
}
COLLECTOR_TEXT = {
    CollectorType.BENEFICIARY: "Bản thân",
    CollectorType.PROXY: "Người được ủy quyền",
}


def return_status(*, paid: bool, entitlement: EntitlementStatus, person: BeneficiaryStatus) -> str:
    """Return the ministry's status of one entitlement (the rules in the module's docstring)."""
    if paid:
        return PAID
    if entitlement is EntitlementStatus.CANCELLED or person is not BeneficiaryStatus.ACTIVE:
        return STOPPED
    return UNPAID


@dataclass(frozen=True)
class ReturnFile:
    """A checked request for a period's return file: what to read, and how many rows."""

    period: str
    period_id: int
    communes: tuple[int, ...] | None
    rows: int


def return_file(
    session: Session,
    user: User | None,
    *,
    actor: str,
    period: str | None,
    fmt: str,
    max_xlsx_rows: int | None = None,
) -> ReturnFile:
    """Check an export of a period's return file and record it before any byte is written.

    Exports of personal data are for auditors (DESIGN rule 8); ``user`` None is the
    command line. Refusals: 403, 400 ``period_invalid`` / ``format_invalid``, 404, and
    400 ``export_too_large`` for a workbook of more than ``max_xlsx_rows`` rows (a
    page or the API builds it within the request; CSV and the command line have no cap).
    """
    if user is not None:
        require(user, Permission.EXPORT)
    if fmt not in FORMATS:
        raise InvalidInput("the format must be csv or xlsx", code="format_invalid")
    found = find_period(session, period)
    scope = commune_scope(session, user) if user is not None else None
    count = select(func.count(Entitlement.id)).where(Entitlement.period_id == found.id)
    if scope is not None:
        count = count.join(Beneficiary, Beneficiary.id == Entitlement.beneficiary_id).where(
            Beneficiary.commune_id.in_(scope or [-1])
        )
    rows = int(session.scalar(count) or 0)
    if fmt == "xlsx" and max_xlsx_rows is not None and rows > max_xlsx_rows:
        raise InvalidInput(
            f"{rows} rows; an Excel file here holds at most {max_xlsx_rows}: "
            "download CSV, or use the export-period command",
            code="export_too_large",
            rows=rows,
            limit=max_xlsx_rows,
        )
    spec = ReturnFile(
        period=found.code,
        period_id=found.id,
        communes=tuple(scope) if scope is not None else None,
        rows=rows,
    )
    record_export(
        session, actor=actor, kind="period", fmt=fmt, filters={"period": found.code}, rows=rows
    )
    return spec


def _communes(session: Session, spec: ReturnFile) -> list[Any]:
    """Return (id, district, name) of the communes with people, in the file's order."""
    commune = aliased(Area)
    district = aliased(Area)
    query = (
        select(commune.id, district.name, commune.name)
        .outerjoin(district, district.id == commune.parent_id)
        .where(commune.id.in_(select(Beneficiary.commune_id).distinct()))
    )
    if spec.communes is not None:
        query = query.where(commune.id.in_(spec.communes or (-1,)))
    return list(session.execute(query.order_by(district.name_key, commune.name_key, commune.id)))


def _return_query(spec: ReturnFile, commune_id: int) -> Select[Any]:
    """Build the query of one commune's rows of the return file, by village and code."""
    query = (
        select(
            Beneficiary.code,
            Beneficiary.full_name,
            Beneficiary.birth_year,
            Beneficiary.village,
            Beneficiary.category,
            Entitlement.monthly_vnd,
            Entitlement.arrears_vnd,
            Entitlement.amount_vnd,
            Entitlement.status,
            Beneficiary.status,
            Payout.id,
            Payout.paid_at,
            Receipt.receipt_no,
            Payout.channel,
            Payout.collector_type,
            PayoutPoint.code,
        )
        .select_from(Beneficiary)
        .join(
            Entitlement,
            and_(
                Entitlement.beneficiary_id == Beneficiary.id,
                Entitlement.period_id == spec.period_id,
            ),
        )
        .where(Beneficiary.commune_id == commune_id)
    )
    query = _paid_joins(query)
    query = query.outerjoin(Receipt, Receipt.payout_id == Payout.id).outerjoin(
        PayoutPoint, PayoutPoint.id == Payout.point_id
    )
    return query.order_by(Beneficiary.village, Beneficiary.code)


def return_rows(session: Session, spec: ReturnFile) -> Iterator[list[Any]]:
    """Yield the return file's rows (no header), commune by commune.

    One small query per commune (a few thousand people at most) instead of one sort
    of the whole period: the first row comes at once and memory stays bounded by a
    commune, whatever the size of the roster. Plain rows on the session's connection
    (no ORM row processing).
    """
    connection = session.connection()
    for commune_id, district, commune in _communes(session, spec):
        query = _return_query(spec, commune_id).execution_options(yield_per=BATCH)
        for row in connection.execute(query):
            yield _return_row(district, commune, row)


def _return_row(district: str | None, commune: str, row: Any) -> list[Any]:
    """Return one row of the file from a row of the query."""
    code, name, born, village, category, monthly, arrears, amount = row[:8]
    entitlement, person, payout_id, paid_at, receipt_no, channel, collector, point = row[8:]
    paid = payout_id is not None
    return [
        safe_cell(code),
        safe_cell(name),
        born,
        safe_cell(district),
        safe_cell(commune),
        safe_cell(village),
        CATEGORY_TEXT.get(category, str(category)),
        monthly,
        arrears,
        amount,
        return_status(paid=paid, entitlement=entitlement, person=person),
        _day(paid_at) if paid else "",
        safe_cell(receipt_no) if paid else "",
        CHANNEL_TEXT.get(channel, "") if paid else "",
        COLLECTOR_TEXT.get(collector, "") if paid else "",
        safe_cell(point) if paid else "",
    ]


def _day(at: datetime) -> str:
    """Return the Vietnam day of a timestamp as dd/mm/yyyy."""
    local = to_local(at)
    return f"{local.day:02d}/{local.month:02d}/{local.year}"


def write_return_file(session: Session, spec: ReturnFile, fmt: str, out: IO[bytes]) -> int:
    """Write the return file to a binary file as CSV (UTF-8 with a BOM) or XLSX; return rows.

    The workbook is write-only (rows go to a temporary file as they come) and the CSV
    is written as it is read: memory stays bounded by a batch.
    """
    count = 0
    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet = book.create_sheet(f"Chi tra {spec.period}")
        sheet.append(list(RETURN_COLUMNS))
        for row in return_rows(session, spec):
            sheet.append(row)
            count += 1
        book.save(out)
        return count
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="")
    try:
        writer = csv.writer(text)
        writer.writerow(RETURN_COLUMNS)
        for row in return_rows(session, spec):
            writer.writerow(row)
            count += 1
        text.flush()
    finally:
        text.detach()  # the caller owns the file: leave it open
    return count


def return_file_stream(
    open_session: Callable[[], Session], session: Session, spec: ReturnFile, fmt: str
) -> Iterator[bytes]:
    """Return a checked return file's bytes for a reply: CSV streamed, XLSX via a temp file.

    A workbook is a zip finished only at the end: it is built in a temporary file with
    the caller's session, then sent in chunks. The CSV is read as it is sent.
    """
    if fmt != "xlsx":
        return return_csv_chunks(open_session, spec)
    out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by _file_chunks once sent)
    try:
        write_return_file(session, spec, fmt, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    return _file_chunks(out)


def _file_chunks(out: IO[bytes], size: int = 65536) -> Iterator[bytes]:
    """Yield a file's bytes in chunks, then close it."""
    with out:
        while chunk := out.read(size):
            yield chunk


def return_csv_chunks(open_session: Callable[[], Session], spec: ReturnFile) -> Iterator[bytes]:
    """Return the return file as CSV bytes, a batch of rows at a time, for a streamed reply.

    The rows are read with a session of the iterator's own: the streamed response
    outlives the request's session. The query runs before this returns, so an
    error is still an error status, never a short file.
    """
    chunks = _csv_chunks(open_session, spec)
    first = next(chunks, None)
    return _resumed(first, chunks)


def _resumed(first: bytes | None, rest: Generator[bytes]) -> Iterator[bytes]:
    """Yield the chunk already read, then the rest; closing this closes the rest."""
    try:
        if first is not None:
            yield first
        yield from rest
    finally:
        rest.close()


def _csv_chunks(open_session: Callable[[], Session], spec: ReturnFile) -> Generator[bytes]:
    """Yield the CSV bytes of the return file from a session of its own."""
    with closing(open_session()) as session:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        buffer.write("\ufeff")  # Excel reads the file as UTF-8
        writer.writerow(RETURN_COLUMNS)
        rows = return_rows(session, spec)
        batch = 0
        for row in rows:
            writer.writerow(row)
            batch += 1
            if batch >= 500:
                yield buffer.getvalue().encode()
                buffer.seek(0)
                buffer.truncate()
                batch = 0
        yield buffer.getvalue().encode()
