"""The follow-up queue: failures listed, reported, assigned, noted and closed.

Scope follows the policy: staff see their point's failures and may report one;
the point's supervisor works them (status, owner, notes); auditors read every
point's and change nothing. A failure outside someone's scope looks like none.
Cases close themselves when their entitlement is paid (``services.payouts``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from terminal.clock import to_local, today_local
from terminal.db import write_transaction
from terminal.messages import detail_text
from terminal.models import (
    Area,
    AuditAction,
    Beneficiary,
    Channel,
    Entitlement,
    Failure,
    FailureNote,
    FailureReason,
    FailureStatus,
    PayoutPoint,
    User,
    utcnow,
)
from terminal.policy import Permission, point_of, require, sees_point
from terminal.services.audit import record_event, record_export
from terminal.services.counter import get_beneficiary
from terminal.services.errors import InvalidInput, NotFound, Refused
from terminal.services.failures import log_failure, params_of
from terminal.services.payouts import MAX_ID
from terminal.text import clean_text, fold, mask_name

log = logging.getLogger("terminal")

OPEN_STATUSES = (FailureStatus.OPEN, FailureStatus.IN_PROGRESS)
MAX_NOTE = 2000


@dataclass(frozen=True)
class FailureFilter:
    """What a list of failures is narrowed to."""

    status: FailureStatus | None = None
    reason: FailureReason | None = None
    point_code: str | None = None
    commune: str | None = None
    overdue: bool = False
    case: bool | None = None


def report(
    session: Session,
    user: User,
    *,
    beneficiary_code: str,
    reason: FailureReason,
    entitlement_id: int | None = None,
    detail: str = "",
    channel: Channel | None = None,
    provider_ref: str | None = None,
) -> Failure:
    """Record a failure a person reports (a case: they chose to escalate it)."""
    require(user, Permission.COUNTER)
    person = get_beneficiary(session, user, beneficiary_code)
    if entitlement_id is not None:
        owner = session.scalar(
            select(Entitlement.beneficiary_id).where(Entitlement.id == entitlement_id)
        )
        if owner != person.id:
            raise NotFound(
                "no such entitlement for this beneficiary",
                code="entitlement_not_found",
                entitlement_id=entitlement_id,
            )
    return log_failure(
        session,
        user=user,
        reason=reason,
        detail=detail,
        beneficiary_id=person.id,
        entitlement_id=entitlement_id,
        channel=channel,
        provider_ref=provider_ref,
        escalated=True,
    )


def _query(user: User | None, filters: FailureFilter) -> Select[Any]:
    """Build the failures query within what the user may see (None: every point)."""
    query = select(Failure)
    point = point_of(user) if user is not None else None
    if point is not None:
        query = query.where(Failure.point_id == point)
    if filters.status is not None:
        query = query.where(Failure.status == filters.status)
    if filters.reason is not None:
        query = query.where(Failure.reason == filters.reason)
    if filters.case is not None:
        query = query.where(Failure.is_case.is_(filters.case))
    if filters.point_code:
        query = query.where(
            Failure.point_id.in_(
                select(PayoutPoint.id).where(PayoutPoint.code == filters.point_code.upper())
            )
        )
    if filters.commune:
        communes = select(Area.id).where(Area.name_key == fold(filters.commune))
        query = query.where(
            Failure.beneficiary_id.in_(
                select(Beneficiary.id).where(Beneficiary.commune_id.in_(communes))
            )
        )
    if filters.overdue:
        query = query.where(
            Failure.is_case.is_(True),
            Failure.status.in_(OPEN_STATUSES),
            Failure.due_by < today_local(),
        )
    return query


def page(
    session: Session, user: User, filters: FailureFilter, *, after: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Return one page of failures, newest first, and the cursor of the next page."""
    require(user, Permission.FOLLOW_UP)
    query = _query(user, filters)
    if after:
        if not (after.isascii() and after.isdigit()) or int(after) > MAX_ID:
            raise InvalidInput("bad cursor", code="invalid_request")
        query = query.where(Failure.id < int(after))
    rows = list(session.scalars(query.order_by(Failure.id.desc()).limit(limit + 1)))
    cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        cursor = str(rows[-1].id)
    today = today_local()
    return [item_of(failure, today) for failure in rows], cursor


QUEUE_LIMIT = 500


def queue(session: Session, user: User, filters: FailureFilter) -> list[Failure]:
    """Return the open cases the user may see, oldest first (the work to do)."""
    require(user, Permission.FOLLOW_UP)
    query = _query(user, filters).where(Failure.is_case.is_(True))
    if filters.status is None:
        query = query.where(Failure.status.in_(OPEN_STATUSES))
    return list(session.scalars(query.order_by(Failure.created_at, Failure.id).limit(QUEUE_LIMIT)))


def owners(session: Session, failure: Failure) -> list[User]:
    """Return who may own a case: the active users of its point."""
    return list(
        session.scalars(
            select(User)
            .where(User.payout_point_id == failure.point_id, User.active.is_(True))
            .order_by(User.username)
        )
    )


def is_overdue(failure: Failure, today: date) -> bool:
    """Tell whether an unsettled case is past its deadline."""
    return failure.is_case and failure.status in OPEN_STATUSES and failure.due_by < today


def item_of(failure: Failure, today: date | None = None) -> dict[str, Any]:
    """Return a failure as the API lists it (the name masked, as in every list)."""
    today = today or today_local()
    person = failure.beneficiary
    opened = to_local(failure.created_at).date()
    return {
        "id": failure.id,
        "case": failure.is_case,
        "reason": failure.reason.value,
        "status": failure.status.value,
        "beneficiary_code": person.code if person else None,
        "beneficiary_name": mask_name(person.full_name) if person else None,
        "entitlement_id": failure.entitlement_id,
        "detail": failure.detail or detail_text(failure.detail_code, params_of(failure)),
        "detail_code": failure.detail_code,
        "channel": failure.channel.value if failure.channel else None,
        "provider_ref": failure.provider_ref,
        "point": failure.point.code if failure.point else None,
        "commune": person.commune.name if person else None,
        "created_at": to_local(failure.created_at),
        "updated_at": to_local(failure.updated_at) if failure.updated_at else None,
        "due_by": failure.due_by,
        "age_days": (today - opened).days,
        "overdue": is_overdue(failure, today),
        "owner": failure.assignee.username if failure.assignee else None,
        "note": failure.note,
        "notes": len(failure.notes),
        "resolved_payout_id": failure.resolved_payout_id,
    }


def get_failure(session: Session, user: User, failure_id: int) -> Failure:
    """Return a failure the user may see, or NotFound."""
    require(user, Permission.FOLLOW_UP)
    failure = session.get(Failure, failure_id) if 1 <= failure_id <= MAX_ID else None
    if failure is None or not sees_point(user, failure.point_id):
        raise NotFound("no such failure", code="failure_not_found")
    return failure


_UNSET: Any = object()


def update(
    session: Session,
    user: User,
    failure_id: int,
    *,
    status: FailureStatus | None = None,
    note: str | None = None,
    assignee: str | None = _UNSET,
) -> Failure:
    """Change a case's status, add a note to its thread, or give it an owner (audited).

    The point's supervisor only. An attempt worked on becomes a case. ``assignee``
    names a user of the same point, or None to leave the case without an owner.
    """
    require(user, Permission.SUPERVISE)
    text = clean_text(note or "").strip() if note is not None else None
    if text is not None and not 1 <= len(text) <= MAX_NOTE:
        raise InvalidInput(f"a note has 1-{MAX_NOTE} characters", code="note_invalid")
    with write_transaction(session):
        failure = get_failure(session, user, failure_id)
        owner_id = failure.assignee_id
        if assignee is not _UNSET:
            owner_id = _assignee_id(session, failure, assignee)
        changes: dict[str, Any] = {}
        now = utcnow()
        if status is not None and status is not failure.status:
            changes["status"] = [failure.status.value, status.value]
            failure.status = status
            failure.resolved_at = now if status is FailureStatus.RESOLVED else None
            if status is not FailureStatus.RESOLVED:
                failure.resolved_payout_id = None
        if owner_id != failure.assignee_id:
            changes["assignee_id"] = [failure.assignee_id, owner_id]
            failure.assignee_id = owner_id
        if text:
            session.add(FailureNote(failure_id=failure.id, user_id=user.id, text=text))
            failure.note = text
            changes["note"] = True
        if not changes:
            return failure
        if not failure.is_case:
            failure.is_case = True
            changes["case"] = True
        failure.updated_at = now
        session.flush()
        record_event(
            session,
            actor=user.username,
            action=AuditAction.FAILURE_UPDATED,
            object_type="failure",
            object_id=failure.id,
            data=changes,
        )
    session.refresh(failure)
    log.info("failure updated: id=%s changes=%s", failure.id, sorted(changes))
    return failure


def _assignee_id(session: Session, failure: Failure, username: str | None) -> int | None:
    """Return the id of a case's new owner: an active user of the case's point."""
    if username is None or username == "":
        return None
    owner = session.scalar(select(User).where(User.username == username.strip()))
    if owner is None or not owner.active or owner.payout_point_id != failure.point_id:
        raise Refused(
            "the owner must be an active user of the case's payout point",
            code="assignee_invalid",
        )
    return owner.id


def thread(failure: Failure) -> list[dict[str, Any]]:
    """Return a case's notes, oldest first."""
    return [
        {
            "at": to_local(note.created_at),
            "author": note.user.username if note.user else None,
            "text": note.text,
        }
        for note in failure.notes
    ]


# ---- the daily summary -------------------------------------------------------------


@dataclass
class PointDay:
    """One point's follow-up figures of a day."""

    district: str
    point: str
    opened: int = 0
    resolved: int = 0
    open: int = 0
    overdue: int = 0


@dataclass
class DailySummary:
    """What the pilot's chat group gave every evening, from the queue itself."""

    day: date
    points: list[PointDay]
    overdue_by_owner: dict[str, int]
    overdue_by_reason: dict[str, int]

    @property
    def totals(self) -> PointDay:
        """Return the figures of every point together."""
        total = PointDay(district="", point="")
        for row in self.points:
            total.opened += row.opened
            total.resolved += row.resolved
            total.open += row.open
            total.overdue += row.overdue
        return total


def daily_summary(session: Session, user: User | None, day: date | None = None) -> DailySummary:
    """Count the cases opened and resolved on a day, and those open or overdue at its end.

    ``user`` None is the command line (every point); otherwise the user's scope.
    Attempts are not counted: they are not work.
    """
    from terminal.clock import day_bounds

    if user is not None:
        require(user, Permission.FOLLOW_UP)
    day = day or today_local()
    start, end = day_bounds(day)
    scope = point_of(user) if user is not None else None
    query = select(Failure).where(Failure.is_case.is_(True), Failure.created_at < end)
    if scope is not None:
        query = query.where(Failure.point_id == scope)
    rows: dict[tuple[str, str], PointDay] = {}
    by_owner: dict[str, int] = {}
    by_reason: dict[str, int] = {}
    for failure in session.scalars(query.execution_options(yield_per=1000)):
        point = failure.point
        if point is not None:
            district, code = point.district.name, point.code
        else:
            # A roster's data error belongs to no point: counted in the person's district.
            commune = failure.beneficiary.commune if failure.beneficiary else None
            district = commune.parent.name if commune and commune.parent else ""
            code = ""
        row = rows.get((district, code))
        if row is None:
            row = rows[(district, code)] = PointDay(district=district, point=code)
        if start <= failure.created_at < end:
            row.opened += 1
        if failure.resolved_at is not None and start <= failure.resolved_at < end:
            row.resolved += 1
        still_open = failure.status in OPEN_STATUSES or (
            failure.resolved_at is not None and failure.resolved_at >= end
        )
        if not still_open:
            continue
        row.open += 1
        if failure.due_by < day:
            row.overdue += 1
            owner = failure.assignee.username if failure.assignee else ""
            by_owner[owner] = by_owner.get(owner, 0) + 1
            by_reason[failure.reason.value] = by_reason.get(failure.reason.value, 0) + 1
    points = sorted(rows.values(), key=lambda r: (r.district, r.point))
    return DailySummary(
        day=day,
        points=[r for r in points if r.opened or r.resolved or r.open],
        overdue_by_owner=dict(sorted(by_owner.items(), key=lambda kv: (-kv[1], kv[0]))),
        overdue_by_reason=dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def summary_text(summary: DailySummary) -> str:
    """Return the summary as plain text, ready to paste into a message."""
    from flask_babel import gettext as _

    from terminal.formatting import format_date
    from terminal.labels import REASON

    total = summary.totals
    lines = [
        _("Follow-up %(day)s", day=format_date(summary.day)),
        _(
            "Opened %(opened)d · resolved %(resolved)d · open %(open)d · overdue %(overdue)d",
            opened=total.opened,
            resolved=total.resolved,
            open=total.open,
            overdue=total.overdue,
        ),
    ]
    district = None
    for row in summary.points:
        if row.district != district:
            district = row.district
            heading = district or _("(no district)")
            lines += ["", f"{heading}:"]
        lines.append(
            "- "
            + _(
                "%(point)s: opened %(opened)d, resolved %(resolved)d, open %(open)d, "
                "overdue %(overdue)d",
                point=row.point or _("roster data"),
                opened=row.opened,
                resolved=row.resolved,
                open=row.open,
                overdue=row.overdue,
            )
        )
    if summary.overdue_by_owner:
        lines += ["", _("Overdue by owner:")]
        nobody = _("(no owner)")
        for owner, count in summary.overdue_by_owner.items():
            lines.append(f"- {owner or nobody}: {count}")
    if summary.overdue_by_reason:
        lines += ["", _("Overdue by reason:")]
        for reason, count in summary.overdue_by_reason.items():
            label = next((str(v) for k, v in REASON.items() if k.value == reason), reason)
            lines.append(f"- {label}: {count}")
    if not summary.points:
        lines += ["", _("No cases.")]
    return "\n".join(lines)


# ---- exports ---------------------------------------------------------------------


def table_export(
    sheet: str, header: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str, *, bom: bool = True
) -> bytes:
    """Return rows as CSV (UTF-8, with a BOM for Excel unless told) or an XLSX workbook.

    Text cells go through ``payout_log.safe_cell`` (never a formula); integers stay
    numbers in the workbook.
    """
    import csv
    import io

    from terminal.services.payout_log import safe_cell

    def cells(row: Sequence[Any]) -> list[Any]:
        return [v if isinstance(v, int) and not isinstance(v, bool) else safe_cell(v) for v in row]

    if fmt == "xlsx":
        from openpyxl import Workbook

        book = Workbook(write_only=True)
        sheet_ = book.create_sheet(sheet)
        sheet_.append(list(header))
        for row in rows:
            sheet_.append(cells(row))
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow(cells(row))
    return (("\ufeff" if bom else "") + text.getvalue()).encode()


# ---- two missed periods: reach them before the third ---------------------------------

# Circular 02/2021/TT-BLĐTBXH: 3 months without collecting suspends a beneficiary; the
# terminal lists those with 2 missed periods for the commune to reach before the third.
MISSED_PERIODS = 2
REACH_DETAIL = "followup.two_missed_periods"


@dataclass(frozen=True)
class AtRisk:
    """A person who collected nothing in the last two ended periods."""

    beneficiary_id: int
    code: str
    name: str
    commune: str
    village: str
    phone: str
    proxy: str
    amount_due: int
    case_id: int | None


def at_risk(
    session: Session, user: User, today: date | None = None
) -> tuple[list[str], list[AtRisk]]:
    """Return the last two ended periods and the people unpaid in both, by commune.

    A period has ended when its month is over; only active beneficiaries are listed
    (the roster stops the others). Names masked, phones masked, as in every list.
    """
    from sqlalchemy import and_, func
    from sqlalchemy.orm import aliased

    from terminal.models import BeneficiaryStatus, EntitlementStatus, Period, Proxy
    from terminal.policy import commune_scope
    from terminal.services.roster import period_code
    from terminal.text import mask_phone

    require(user, Permission.FOLLOW_UP)
    current = period_code(today or today_local())
    ended = list(
        session.execute(
            select(Period.id, Period.code)
            .where(Period.code < current)
            .order_by(Period.code.desc())
            .limit(MISSED_PERIODS)
        )
    )
    codes = [code for _id, code in reversed(ended)]
    if len(ended) < MISSED_PERIODS:
        return codes, []
    query = select(Beneficiary).where(Beneficiary.status == BeneficiaryStatus.ACTIVE)
    for period_id, _code in ended:
        missed = aliased(Entitlement)
        query = query.join(
            missed,
            and_(
                missed.beneficiary_id == Beneficiary.id,
                missed.period_id == period_id,
                missed.status == EntitlementStatus.DUE,
            ),
        )
    scope = commune_scope(session, user)
    if scope is not None:
        query = query.where(Beneficiary.commune_id.in_(scope or [-1]))
    people = list(session.scalars(query.limit(QUEUE_LIMIT * 10)))
    if not people:
        return codes, []
    ids = [p.id for p in people]
    due = dict(
        session.execute(
            select(Entitlement.beneficiary_id, func.sum(Entitlement.amount_vnd))
            .where(
                Entitlement.beneficiary_id.in_(ids),
                Entitlement.status == EntitlementStatus.DUE,
            )
            .group_by(Entitlement.beneficiary_id)
        ).all()
    )
    cases = dict(
        session.execute(
            select(Failure.beneficiary_id, func.max(Failure.id))
            .where(
                Failure.beneficiary_id.in_(ids),
                Failure.detail_code == REACH_DETAIL,
                Failure.status.in_(OPEN_STATUSES),
            )
            .group_by(Failure.beneficiary_id)
        ).all()
    )
    proxies: dict[int, str] = {}
    for proxy in session.scalars(
        select(Proxy).where(Proxy.beneficiary_id.in_(ids), Proxy.revoked_at.is_(None))
    ):
        proxies.setdefault(
            proxy.beneficiary_id, f"{mask_name(proxy.full_name)} ({proxy.relationship_label})"
        )
    rows = [
        AtRisk(
            beneficiary_id=p.id,
            code=p.code,
            name=mask_name(p.full_name),
            commune=p.commune.name,
            village=p.village,
            phone=mask_phone(p.phone),
            proxy=proxies.get(p.id, ""),
            amount_due=int(due.get(p.id, 0)),
            case_id=cases.get(p.id),
        )
        for p in people
    ]
    rows.sort(key=lambda r: (fold(r.commune), r.village, r.code))
    return codes, rows


def open_reach_cases(session: Session, user: User, today: date | None = None) -> int:
    """Open a case to reach each listed person who has none open; return how many."""
    require(user, Permission.SUPERVISE)
    codes, rows = at_risk(session, user, today)
    opened = 0
    for row in rows:
        if row.case_id is not None:
            continue
        log_failure(
            session,
            user=user,
            reason=FailureReason.RECIPIENT_ABSENT,
            detail_code=REACH_DETAIL,
            params={"periods": ", ".join(codes)},
            beneficiary_id=row.beneficiary_id,
            escalated=True,
        )
        opened += 1
    return opened


AT_RISK_COLUMNS = (
    "commune",
    "village",
    "code",
    "name",
    "phone",
    "proxy",
    "amount_due",
    "missed",
    "case",
)


def _at_risk_cells(codes: list[str], row: AtRisk) -> list[Any]:
    return [
        row.commune,
        row.village,
        row.code,
        row.name,
        row.phone,
        row.proxy,
        row.amount_due,
        " ".join(codes),
        row.case_id or "",
    ]


def at_risk_export(codes: list[str], rows: list[AtRisk], fmt: str) -> bytes:
    """Return the list (masked, as on the page) as CSV or XLSX for the commune's officers."""
    return table_export(
        "two-missed-periods",
        AT_RISK_COLUMNS,
        (_at_risk_cells(codes, r) for r in rows),
        fmt,
        bom=False,
    )


# ---- the correction list: data errors back to whoever keeps the roster ----------------

CORRECTION_COLUMNS = ("code", "field", "value_on_roster", "value_seen", "who", "when", "case")


def corrections(session: Session, user: User | None) -> list[dict[str, Any]]:
    """Return one row per field to correct, from the open data-error cases.

    An import's data error names the roster's column and what contradicts it; a data
    error reported at the counter carries what the clerk saw. ID numbers are masked:
    the code finds the row in the roster keeper's own file.
    """
    from terminal.services.roster_file import COLUMNS
    from terminal.text import mask_id, mask_phone

    if user is not None:  # None: the command line
        require(user, Permission.FOLLOW_UP)
    by_header = {header: key for key, header in COLUMNS.items()}
    query = _query(user, FailureFilter(reason=FailureReason.DATA_ERROR)).where(
        Failure.status.in_(OPEN_STATUSES)
    )
    rows: list[dict[str, Any]] = []
    for failure in session.scalars(query.order_by(Failure.id)):
        person = failure.beneficiary
        who = failure.user.username if failure.user else "import"
        when = to_local(failure.created_at)
        text = failure.detail or detail_text(failure.detail_code, params_of(failure))
        # "Roster 2021-10: Số CCCD/CMND: ...; Người nhận thay: ..." from an import.
        body = text.split(": ", 1)[1] if text.startswith("Roster ") and ": " in text else text
        for part in [p.strip() for p in body.split("; ") if p.strip()] or [""]:
            header, _sep, seen = part.partition(": ")
            key = by_header.get(header)
            if key is None:
                header, seen = "", part
            value = _roster_value(person, key)
            if key in ("id_number", "proxy_id_number"):
                value = mask_id(value) if value else ""
            elif key == "phone":
                value = mask_phone(value) if value else ""
            rows.append(
                {
                    "code": person.code if person else "",
                    "field": header,
                    "value_on_roster": value,
                    "value_seen": seen,
                    "who": who,
                    "when": when,
                    "case": failure.id,
                }
            )
    return rows


def _roster_value(person: Beneficiary | None, key: str | None) -> str:
    """Return what the roster says for a column of a person (their live proxy's too)."""
    if person is None or key is None:
        return ""
    if key.startswith("proxy_"):
        proxy = next((p for p in person.proxies if p.revoked_at is None), None)
        if proxy is None:
            return ""
        attribute = {"proxy_name": "full_name", "proxy_id_number": "id_number"}.get(key, "")
        return str(getattr(proxy, attribute, "") or "")
    value = getattr(person, key, None)
    return "" if value is None else str(getattr(value, "value", value))


def corrections_export(rows: list[dict[str, Any]], fmt: str) -> bytes:
    """Return the correction list as CSV (UTF-8 with BOM, for Excel) or XLSX."""

    def cells(row: dict[str, Any]) -> list[Any]:
        values = [row[c] for c in CORRECTION_COLUMNS]
        values[5] = row["when"].strftime("%d/%m/%Y %H:%M")
        return values

    return table_export("corrections", CORRECTION_COLUMNS, map(cells, rows), fmt)


# ---- the failures export (auditors) -----------------------------------------------------

FAILURE_COLUMNS = (
    "id",
    "case",
    "reason",
    "status",
    "point",
    "commune",
    "beneficiary_code",
    "beneficiary_name",
    "entitlement_id",
    "detail",
    "channel",
    "provider_ref",
    "created_at",
    "due_by",
    "age_days",
    "overdue",
    "owner",
    "note",
    "resolved_payout_id",
)


def failures_export(session: Session, user: User | None, fmt: str) -> tuple[bytes, int]:
    """Return every failure the reader may export (oldest first) as CSV or XLSX, and the count.

    Exports of personal data are for auditors (DESIGN rule 8); the command line
    (``user`` None) exports everything. Names are masked as in the list. The export
    is recorded as an audit event before the file is handed back.
    """
    if user is not None:
        require(user, Permission.EXPORT)
    today = today_local()
    query = _query(user, FailureFilter()).order_by(Failure.id)
    count = 0

    def cells(failure: Failure) -> list[Any]:
        nonlocal count
        count += 1
        item = item_of(failure, today)
        item["created_at"] = item["created_at"].strftime("%d/%m/%Y %H:%M")
        item["due_by"] = item["due_by"].strftime("%d/%m/%Y")
        for column in ("case", "overdue"):
            item[column] = "yes" if item[column] else "no"
        return [item[column] for column in FAILURE_COLUMNS]

    rows = session.scalars(query.execution_options(yield_per=1000))
    body = table_export("failures", FAILURE_COLUMNS, map(cells, rows), fmt)
    actor = user.username if user is not None else "cli"
    record_export(session, actor=actor, kind="failures", fmt=fmt, rows=count)
    return body, count
