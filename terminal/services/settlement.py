"""A provider's monthly settlement file, matched against the terminal's withdrawals.

The provider sends each point a file (CSV or XLSX) with one row per withdrawal:
``client_ref, amount, status, time``. Matching it finds what the two sides agree
on and every difference: paid by the provider but not completed at the terminal
(``missing_at_terminal``), completed at the terminal but not paid in the file
(``missing_at_provider``), the same reference with another amount, and the same
reference paid more than once (``double_debit``: the account was debited twice). Each
difference opens a follow-up case; the import, its report and its cases commit
together or not at all, with an audit event.

The terminal's side is the point's completed withdrawals in the months the file's
times span (a monthly file covers its month).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from terminal.clock import day_bounds, local_date, today_local
from terminal.db import write_transaction
from terminal.models import (
    AuditAction,
    Channel,
    Failure,
    FailureReason,
    FailureStatus,
    Payout,
    PayoutPoint,
    PayoutStatus,
    SettlementImport,
    Withdrawal,
    WithdrawalStatus,
    utcnow,
)
from terminal.money import InvalidAmount, parse_vnd
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput
from terminal.services.failures import follow_up_due
from terminal.services.roster import file_sha256
from terminal.services.roster_file import RosterFileError, open_roster
from terminal.text import clean_text, normalize_header

MAX_ROWS = 500_000
REPORT_CAP = 1000

# Accepted headers (compared case-folded), English and Vietnamese.
HEADERS = {
    "client_ref": ("client_ref", "client reference", "mã tham chiếu", "ma tham chieu", "reference"),
    "amount": ("amount", "số tiền", "so tien"),
    "status": ("status", "trạng thái", "trang thai"),
    "time": ("time", "thời gian", "thoi gian", "paid_at"),
}
PAID_STATUSES = {"paid", "success", "successful", "completed", "thành công", "thanh cong", "đã chi"}
REF_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,63}$")


class SettlementError(InvalidInput):
    """The settlement file cannot be matched (it changes nothing)."""

    code = "settlement_invalid"


@dataclass
class SettlementReport:
    """What matching a settlement file found."""

    filename: str
    point: str
    sha256: str = ""
    rows: int = 0
    matched: int = 0
    missing_at_terminal: list[dict[str, Any]] = field(default_factory=list)
    missing_at_provider: list[dict[str, Any]] = field(default_factory=list)
    amount_differences: list[dict[str, Any]] = field(default_factory=list)
    double_debits: list[dict[str, Any]] = field(default_factory=list)
    months: list[str] = field(default_factory=list)
    import_id: int | None = None
    cases: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "rows": self.rows,
            "matched": self.matched,
            "missing_at_terminal": len(self.missing_at_terminal),
            "missing_at_provider": len(self.missing_at_provider),
            "amount_differences": len(self.amount_differences),
            "double_debits": len(self.double_debits),
        }

    def to_json(self) -> str:
        return json.dumps(
            {
                "months": self.months,
                "missing_at_terminal": self.missing_at_terminal[:REPORT_CAP],
                "missing_at_provider": self.missing_at_provider[:REPORT_CAP],
                "amount_differences": self.amount_differences[:REPORT_CAP],
                "double_debits": self.double_debits[:REPORT_CAP],
            },
            ensure_ascii=False,
        )


@dataclass(frozen=True)
class _Row:
    number: int
    client_ref: str
    amount: int
    paid: bool
    at: datetime | None


def _columns(header: list[str]) -> dict[str, int]:
    folded = [normalize_header(h) for h in header]
    positions: dict[str, int] = {}
    for key, names in HEADERS.items():
        for index, name in enumerate(folded):
            if name in names:
                positions[key] = index
                break
    missing = [key for key in ("client_ref", "amount", "status") if key not in positions]
    if missing:
        raise SettlementError(
            "the file lacks the column(s) "
            + ", ".join(missing)
            + " (expected: client_ref, amount, status, time)",
            code="settlement_columns",
        )
    return positions


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return _in_range(value)
    text = clean_text(str(value or ""))
    if not text:
        return None
    parsed: datetime | None = None
    for candidate in (text, text.replace(" ", "T", 1)):
        try:
            parsed = datetime.fromisoformat(candidate)
            break
        except ValueError:
            continue
    if parsed is None:
        for fmt in ("%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M", "%d/%m/%Y"):
            try:
                parsed = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is None:
        raise ValueError("not a time (YYYY-MM-DD HH:MM:SS or dd/mm/yyyy HH:MM)")
    return _in_range(parsed)


def _in_range(value: datetime) -> datetime:
    """Refuse times no settlement holds (and that overflow time-zone arithmetic)."""
    if not 2000 <= value.year <= 2100:
        raise ValueError("a time between the years 2000 and 2100")
    return value


def read_settlement(path: Path, filename: str | None = None) -> list[_Row]:
    """Read and check every row; any bad row refuses the whole file, naming the rows.

    A reference paid on more than one row is no bad row but a double debit, which the
    matching makes a case of; any other repeated reference is a bad row.
    """
    try:
        source = open_roster(path, filename)
    except RosterFileError as exc:
        raise SettlementError(exc.message, code=exc.code) from None
    problems: list[str] = []
    bad_rows: list[int] = []
    rows: list[_Row] = []
    seen: dict[str, tuple[int, bool]] = {}
    try:
        positions = _columns(source.header)
        for number, cells in source.rows:
            if not any(str(c or "").strip() for c in cells):
                continue
            if len(rows) >= MAX_ROWS:
                raise SettlementError(f"more than {MAX_ROWS:,} rows: refused")

            def cell(key: str, cells: list[Any] = cells) -> Any:
                index = positions.get(key)
                return cells[index] if index is not None and index < len(cells) else None

            ref = clean_text(str(cell("client_ref") or ""))
            try:
                if not REF_RE.match(ref):
                    raise ValueError("client_ref: 1-64 letters, digits or . _ / : -")
                raw_amount = cell("amount")
                if isinstance(raw_amount, float) and raw_amount.is_integer():
                    raw_amount = int(raw_amount)
                try:
                    amount = parse_vnd(raw_amount, allow_zero=False)
                except InvalidAmount as exc:
                    raise ValueError(f"amount: {exc}") from None
                status = normalize_header(str(cell("status") or ""))
                if not status:
                    raise ValueError("status is empty")
                try:
                    at = _time(cell("time"))
                except ValueError as exc:
                    raise ValueError(f"time: {exc}") from None
                paid = status in PAID_STATUSES
                if ref in seen and not (paid and seen[ref][1]):
                    raise ValueError(f"client_ref repeats row {seen[ref][0]}")
            except ValueError as exc:
                if len(problems) < 20:
                    problems.append(f"row {number}: {exc}")
                    bad_rows.append(number)
                continue
            seen.setdefault(ref, (number, paid))
            rows.append(_Row(number, ref, amount, paid, at))
    finally:
        source.close()
    if problems:
        raise SettlementError(
            "the file has bad rows, nothing was imported: " + "; ".join(problems),
            code="settlement_rows",
            rows=", ".join(str(n) for n in bad_rows),
            problems=problems,
        )
    if not rows:
        raise SettlementError("the file has no rows", code="settlement_empty")
    return rows


def _months(rows: list[_Row]) -> list[str]:
    days = [local_date(r.at) if r.at.tzinfo else r.at.date() for r in rows if r.at is not None]
    if not days:
        today = today_local()
        return [f"{today.year:04d}-{today.month:02d}"]
    first, last = min(days), max(days)
    months = []
    year, month = first.year, first.month
    while (year, month) <= (last.year, last.month) and len(months) < 24:
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def _month_range(months: list[str]) -> tuple[datetime, datetime]:
    first_year, first_month = (int(p) for p in months[0].split("-"))
    last_year, last_month = (int(p) for p in months[-1].split("-"))
    start, _ = day_bounds(date(first_year, first_month, 1))
    after = date(last_year + 1, 1, 1) if last_month == 12 else date(last_year, last_month + 1, 1)
    end, _ = day_bounds(after)
    return start, end


def import_settlement(
    session: Session,
    point: PayoutPoint,
    path: Path,
    *,
    filename: str | None = None,
    actor: str,
    user_id: int | None = None,
) -> SettlementReport:
    """Match a settlement file against the point's completed withdrawals; all or nothing."""
    name = clean_text((filename or path.name).replace("\x00", ""))[:200] or "settlement"
    rows = read_settlement(path, name)
    report = SettlementReport(filename=name, point=point.code, sha256=file_sha256(path))
    already = session.scalar(
        select(SettlementImport.id).where(
            SettlementImport.point_id == point.id, SettlementImport.sha256 == report.sha256
        )
    )
    session.rollback()
    if already is not None:
        raise SettlementError(
            f"this file was already matched (import #{already}): nothing was done",
            code="settlement_already_imported",
            import_id=already,
        )
    report.rows = len(rows)
    report.months = _months(rows)
    start, end = _month_range(report.months)
    provider: dict[str, _Row] = {}
    repeated: list[_Row] = []  # a reference's second and later paid rows
    for row in rows:
        if row.client_ref in provider:
            repeated.append(row)
        else:
            provider[row.client_ref] = row
    now = utcnow()
    with write_transaction(session):
        completed = (
            select(Withdrawal, Payout.amount_vnd)
            .join(Payout, Payout.id == Withdrawal.payout_id)
            .where(
                Withdrawal.point_id == point.id,
                Withdrawal.status == WithdrawalStatus.COMPLETED,
                Payout.status == PayoutStatus.COMPLETED,
            )
        )
        # The terminal's side: completed in the file's months, and any the file names
        # (a withdrawal reconciled in the next month is still the same withdrawal).
        ours = {
            w.client_ref: (w, amount)
            for w, amount in session.execute(
                completed.where(Payout.paid_at >= start, Payout.paid_at < end)
            )
        }
        named = [r for r in provider if r not in ours]
        for chunk in range(0, len(named), 5000):
            ours.update(
                {
                    w.client_ref: (w, amount)
                    for w, amount in session.execute(
                        completed.where(Withdrawal.client_ref.in_(named[chunk : chunk + 5000]))
                    )
                }
            )
        # References of the file that the terminal knows but did not complete (or
        # completed outside the months): found by reference, whatever their state.
        others = {
            w.client_ref: w
            for w in session.scalars(
                select(Withdrawal).where(
                    Withdrawal.point_id == point.id,
                    Withdrawal.client_ref.in_([r for r in provider if r not in ours][:50_000]),
                )
            )
        }
        cases: list[dict[str, Any]] = []

        def case(kind: str, ref: str, withdrawal: Withdrawal | None, **params: Any) -> None:
            cases.append(
                {
                    "beneficiary_id": withdrawal.beneficiary_id if withdrawal else None,
                    "entitlement_id": withdrawal.entitlement_list[0] if withdrawal else None,
                    "reason": FailureReason.OTHER,
                    "detail": "",
                    "detail_code": f"settlement.{kind}",
                    "detail_params": json.dumps(
                        {"client_ref": ref, "file": name[:100], **params},
                        ensure_ascii=False,
                        sort_keys=True,
                    ),
                    "channel": Channel.ACCOUNT,
                    "provider_ref": ref,
                    "point_id": point.id,
                    "user_id": user_id,
                    "status": FailureStatus.OPEN,
                    "due_by": follow_up_due(today_local(), FailureReason.PROVIDER_TIMEOUT),
                    "note": "",
                    "is_case": True,
                    "created_at": now,
                }
            )

        for ref, row in provider.items():
            mine = ours.get(ref)
            if not row.paid:
                if mine is not None:
                    item = {
                        "client_ref": ref,
                        "terminal_amount": mine[1],
                        "provider_status": "not paid",
                    }
                    report.missing_at_provider.append(item)
                    case("missing_at_provider", ref, mine[0], terminal_amount=mine[1])
                continue
            if mine is None:
                other = others.get(ref)
                state = other.status.value if other is not None else "unknown"
                report.missing_at_terminal.append(
                    {"client_ref": ref, "provider_amount": row.amount, "terminal_status": state}
                )
                case(
                    "missing_at_terminal",
                    ref,
                    other,
                    provider_amount=row.amount,
                    terminal_status=state,
                )
            elif mine[1] != row.amount:
                report.amount_differences.append(
                    {"client_ref": ref, "terminal_amount": mine[1], "provider_amount": row.amount}
                )
                case(
                    "amount_difference",
                    ref,
                    mine[0],
                    terminal_amount=mine[1],
                    provider_amount=row.amount,
                )
            else:
                report.matched += 1
        for row in repeated:
            ref = row.client_ref
            mine = ours.get(ref)
            withdrawal = mine[0] if mine is not None else others.get(ref)
            report.double_debits.append(
                {"client_ref": ref, "provider_amount": row.amount, "row": row.number}
            )
            case("double_debit", ref, withdrawal, provider_amount=row.amount, row=row.number)
        for ref, (withdrawal, amount) in ours.items():
            if ref not in provider:
                report.missing_at_provider.append(
                    {"client_ref": ref, "terminal_amount": amount, "provider_status": "absent"}
                )
                case("missing_at_provider", ref, withdrawal, terminal_amount=amount)
        if cases:
            session.execute(insert(Failure.__table__), cases)
        report.cases = len(cases)
        record = SettlementImport(
            point_id=point.id,
            filename=name[:255],
            sha256=report.sha256,
            actor=actor,
            rows=report.rows,
            matched=report.matched,
            missing_at_terminal=len(report.missing_at_terminal),
            missing_at_provider=len(report.missing_at_provider),
            amount_differences=len(report.amount_differences),
            report=report.to_json(),
        )
        session.add(record)
        session.flush()
        report.import_id = record.id
        record_event(
            session,
            actor=actor,
            action=AuditAction.SETTLEMENT_IMPORTED,
            object_type="settlement_import",
            object_id=record.id,
            data={
                "point": point.code,
                "file": name,
                "sha256": report.sha256,
                "months": report.months,
                **report.counts(),
                "cases": report.cases,
            },
        )
    return report


def list_imports(session: Session, point_id: int | None) -> list[SettlementImport]:
    """Return the latest settlement imports (of a point, or all)."""
    query = select(SettlementImport).order_by(SettlementImport.id.desc()).limit(50)
    if point_id is not None:
        query = query.where(SettlementImport.point_id == point_id)
    return list(session.scalars(query))
