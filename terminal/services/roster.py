"""Importing the monthly roster: beneficiaries, proxies and the period's entitlements.

Rules from shared/data/roster-format.md: a bad row is rejected with its number,
column and reason while the good rows are imported; the whole import is one
transaction (a crash leaves the database as it was) and ``dry_run`` writes
nothing at all; a code seen before updates that beneficiary and says what
changed; importing the same file twice changes nothing the second time; active
beneficiaries get one entitlement for the period, stopped ones none (a due one
is cancelled), paid entitlements are never touched.

Rows are processed in batches of 1,000 with the same few statements each, whatever
the size of the roster (tests/services/test_roster_import_scale.py counts them), so
time grows with the file and memory stays bounded by the batch (the codes seen are
kept to find duplicates and the beneficiaries missing from the list). New people
are written by roster_write (COPY on PostgreSQL), a roster's next batches are read
and checked in a thread meanwhile, and a batch of a new roster reads nothing back.
"""

from __future__ import annotations

import hashlib
import json
import logging
import queue
import re
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, inspect, select, text, update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from terminal.clock import VIETNAM
from terminal.db import begin_write, refresh_statistics
from terminal.models import (
    Area,
    AreaLevel,
    AuditAction,
    Beneficiary,
    BeneficiaryStatus,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    Period,
    PeriodStatus,
    Proxy,
    RosterImport,
    utcnow,
)
from terminal.services.audit import EventData, record_event, record_events
from terminal.services.errors import InvalidInput, Refused
from terminal.services.failures import follow_up_due
from terminal.services.places import get_or_create_commune, get_or_create_district
from terminal.services.roster_file import (
    COLUMNS,
    RosterRow,
    RowProblem,
    map_header,
    open_roster,
    stream_rows,
)
from terminal.services.roster_write import BulkWriter
from terminal.text import fold, name_keys

log = logging.getLogger("terminal")

PERIOD_RE = re.compile(r"^([0-9]{4})-([0-9]{2})$")
BATCH = 1000
REPORT_CAP = 2000  # changes and missing codes listed one by one; beyond, only counted

# Beneficiary columns a roster row sets, compared to say what changed.
COMPARED = (
    "full_name",
    "date_of_birth",
    "birth_year",
    "gender",
    "category",
    "id_number",
    "phone",
    "commune_id",
    "village",
    "payment_method",
    "provider",
    "account_no",
    "monthly_vnd",
    "status",
    "data_error",
)
FIELD_LABELS = {
    "full_name": COLUMNS["full_name"],
    "date_of_birth": COLUMNS["date_of_birth"],
    "birth_year": COLUMNS["date_of_birth"],
    "gender": COLUMNS["gender"],
    "category": COLUMNS["category"],
    "id_number": COLUMNS["id_number"],
    "phone": COLUMNS["phone"],
    "commune_id": COLUMNS["commune"],
    "village": COLUMNS["village"],
    "payment_method": COLUMNS["payment_method"],
    "provider": COLUMNS["provider"],
    "account_no": COLUMNS["account_no"],
    "monthly_vnd": COLUMNS["monthly_amount"],
    "status": COLUMNS["status"],
    "data_error": "data errors",
    "proxy": COLUMNS["proxy_name"],
    "entitlement": "entitlement",
}


def parse_period(code: str) -> str:
    """Return a YYYY-MM period code or refuse it."""
    match = PERIOD_RE.match((code or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
        raise InvalidInput("the period must be YYYY-MM, e.g. 2021-10", code="period_invalid")
    return match.group(0)


def period_start(code: str) -> date:
    """Return the first day of a period's month, refusing a malformed code."""
    year, month = parse_period(code).split("-")
    return date(int(year), int(month), 1)


def period_code(day: date) -> str:
    """Return the code of the period a day falls in: 2021-10."""
    return f"{day.year:04d}-{day.month:02d}"


def is_owed(status: BeneficiaryStatus | str) -> bool:
    """Tell whether a beneficiary in this status is owed an entitlement for a period."""
    # Suspended, deceased and moved people are owed nothing until the roster says otherwise.
    return status == BeneficiaryStatus.ACTIVE


def entitlement_vnd(monthly_vnd: int, arrears_vnd: int) -> int:
    """Return what an entitlement pays: the month's allowance plus the earlier unpaid months."""
    return monthly_vnd + arrears_vnd


def data_error_case(
    beneficiary_id: int, *, period: str, flags: Sequence[str], today: date, at: datetime
) -> dict[str, Any]:
    """Return the follow-up case (a row of ``failures``) of a beneficiary with data errors."""
    return {
        "beneficiary_id": beneficiary_id,
        "reason": FailureReason.DATA_ERROR,
        "detail": ("Roster " + period + ": " + "; ".join(flags))[:1000],
        "status": FailureStatus.OPEN,
        "due_by": follow_up_due(today),
        "note": "",
        "created_at": at,
    }


def open_period(session: Session, code: str, *, create: bool = True) -> Period | None:
    """Return the period with this code, created open when missing; refuse a closed one."""
    period = session.scalar(select(Period).where(Period.code == code))
    if period is not None and period.status is PeriodStatus.CLOSED:
        raise Refused(f"period {code} is closed", code="period_closed")
    if period is None and create:
        period = Period(code=code, status=PeriodStatus.OPEN)
        session.add(period)
        session.flush()
    return period


@dataclass
class RosterReport:
    """What an import did (or, dry, would do)."""

    filename: str
    period: str
    dry_run: bool
    sha256: str = ""
    rows: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    stopped: int = 0
    missing: int = 0
    rejected: int = 0
    entitlements_created: int = 0
    entitlements_updated: int = 0
    entitlements_cancelled: int = 0
    entitlements_paid_kept: int = 0
    rejections: list[RowProblem] = field(default_factory=list)
    flags: list[RowProblem] = field(default_factory=list)
    changes: list[tuple[str, list[str]]] = field(default_factory=list)
    missing_codes: list[str] = field(default_factory=list)
    new_communes: list[str] = field(default_factory=list)
    ignored_columns: list[str] = field(default_factory=list)
    import_id: int | None = None

    def counts(self) -> dict[str, int]:
        """Return the six row counts of the report."""
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stopped": self.stopped,
            "missing": self.missing,
            "rejected": self.rejected,
        }

    def to_json(self) -> str:
        """Serialise the report's detail for the import record."""
        return json.dumps(
            {
                "counts": self.counts(),
                "entitlements": {
                    "created": self.entitlements_created,
                    "updated": self.entitlements_updated,
                    "cancelled": self.entitlements_cancelled,
                    "paid_kept": self.entitlements_paid_kept,
                },
                "rejections": [p.__dict__ for p in self.rejections[:REPORT_CAP]],
                "flags": [p.__dict__ for p in self.flags[:REPORT_CAP]],
                "changes": self.changes[:REPORT_CAP],
                "missing_codes": self.missing_codes[:REPORT_CAP],
                "new_communes": self.new_communes,
                "ignored_columns": self.ignored_columns,
            },
            ensure_ascii=False,
        )


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def import_roster(
    session: Session,
    path: Path,
    *,
    period: str,
    actor: str,
    dry_run: bool = False,
    filename: str | None = None,
    progress: Callable[[float], None] | None = None,
    today: date | None = None,
) -> RosterReport:
    """Import a roster file for a period, as one transaction (or none when dry)."""
    period_code = parse_period(period)
    name = filename or path.name
    today = today or utcnow().astimezone(VIETNAM).date()
    report = RosterReport(filename=name, period=period_code, dry_run=dry_run)
    report.sha256 = file_sha256(path)
    source = open_roster(path, name)
    try:
        positions, report.ignored_columns = map_header(source.header)
        if dry_run:
            # A read-only transaction: a dry run never holds the write lock.
            if session.in_transaction():
                session.rollback()
        else:
            begin_write(session)
        _plan_each_batch(session)
        writer = BulkWriter(session.connection(), _GROWING)
        run = _ImportRun(session, report, period_code, dry_run, today, writer)
        with writer.unprepared():
            run.prepare()
            rows = stream_rows(source, positions, today)
            with closing(_read_ahead(_batches(rows, BATCH))) as batches:
                for batch in batches:
                    run.apply(batch)
                    if progress is not None:
                        progress(source.progress())
            run.finish(actor)
        if dry_run:
            session.rollback()
        else:
            session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        source.close()
    if not dry_run:
        _refresh_statistics(session)
    return report


def _plan_each_batch(session: Session) -> None:
    """On PostgreSQL, plan each batch's statements afresh for the rest of the import.

    psycopg prepares a statement run five times, and PostgreSQL may then keep one
    generic plan: made while the tables were still empty, it reads the whole table for
    every batch, and a 100,000-row import into a new database took minutes instead of
    seconds. A custom plan sees the table as it is now; planning a batch costs well
    under a millisecond.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def _refresh_statistics(session: Session) -> None:
    """Let the planner see the new roster; the import stands even if this fails."""
    try:
        refresh_statistics(session)
    except SQLAlchemyError as exc:
        session.rollback()
        log.warning("statistics not refreshed after the import: %s", type(exc).__name__)


def _batches(rows: Iterator[Any], size: int) -> Iterator[list[Any]]:
    """Group an iterator into lists of at most size items."""
    batch = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


_END = object()


def _read_ahead(batches: Iterator[list[Any]], depth: int = 4) -> Generator[list[Any], None, None]:
    """Read and check the next batches in a thread while this one is written.

    While a batch's statements run, the database (PostgreSQL's server, SQLite's C
    code) works without Python's lock, so the file's next rows are checked
    meanwhile. The batches come in order, and a problem with the file is raised here,
    where it would have been; stopping early stops the thread.
    """
    ready: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for batch in batches:
                if not put(batch):
                    return
            put(_END)
        except BaseException as exc:  # handed over to be raised in the importing thread
            put(exc)

    reader = threading.Thread(target=read, name="roster-read-ahead", daemon=True)
    reader.start()
    try:
        while True:
            item = ready.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def _columns(model: type) -> list[Any]:
    """Return a model's columns labelled with its attribute names, to read plain rows.

    A batch compares thousands of rows and changes few: plain rows cost a fraction
    of ORM objects to load, and nothing needs letting go of afterwards.
    """
    return [prop.columns[0].label(prop.key) for prop in inspect(model).column_attrs]


_BENEFICIARY_COLUMNS = _columns(Beneficiary)
# The tables an import grows, analysed as they double (roster_write).
_GROWING = ("beneficiaries", "proxies", "entitlements")
# PostgreSQL advisory lock key serialising imports (schema.py's upgrade uses 727001).
ROSTER_IMPORT_LOCK = 727002
# A new beneficiary's columns as written: these, then COMPARED's in its order.
_NEW_BENEFICIARY = ("id", "code", "name_key", "given_key", "address", "created_at", *COMPARED)
_NEW_PROXY = (
    "beneficiary_id",
    "full_name",
    "id_number",
    "relationship",
    "is_guardian",
    "valid_from",
    "valid_until",
    "created_at",
)
_NEW_ENTITLEMENT = (
    "beneficiary_id",
    "period_id",
    "monthly_vnd",
    "arrears_vnd",
    "amount_vnd",
    "status",
    "created_at",
)
_PROXY_COLUMNS = _columns(Proxy)
_ENTITLEMENT_COLUMNS = _columns(Entitlement)


class _ImportRun:
    """The state of one import while its batches are applied."""

    def __init__(
        self,
        session: Session,
        report: RosterReport,
        period: str,
        dry: bool,
        today: date,
        writer: BulkWriter,
    ):
        self.session = session
        self.writer = writer
        # Nobody on the roster yet: every row is new (duplicates in the file are
        # rejected), so no batch needs to look its codes up.
        self.roster_empty = False
        self.report = report
        self.period_code = period
        self.dry = dry
        self.today = today
        self.period: Period | None = None
        self.seen_codes: dict[str, int] = {}
        self.seen_ids: set[int] = set()
        self.districts: set[int] = set()
        self.communes: dict[tuple[str, str], int | None] = {}
        self.events: list[EventData] = []
        self.unchanged_codes: set[str] = set()
        self.failures: list[dict[str, Any]] = []

    # -- set-up and areas --------------------------------------------------------

    def prepare(self) -> None:
        """Wait for any other import, find or create the period (refusing a closed one),
        and on a first load into an empty roster defer the secondary indexes."""
        if not self.dry and self.writer.postgres:
            # Imports wait for each other (SQLite's write lock does this there), so the
            # roster read next is the one this import writes over.
            self.session.execute(select(func.pg_advisory_xact_lock(ROSTER_IMPORT_LOCK)))
        self.period = open_period(self.session, self.period_code, create=not self.dry)
        self.roster_empty = self.session.scalar(select(Beneficiary.id).limit(1)) is None
        if self.roster_empty and not self.dry and not self.writer.postgres:
            # A first load on SQLite: the secondary indexes are built once at the end
            # (roster_write). Not on PostgreSQL: DROP INDEX would wait for every open
            # transaction that read the table, and then hold every reader off until
            # the import commits.
            self.writer.defer_indexes(
                [Beneficiary.__table__, Proxy.__table__, Entitlement.__table__]  # type: ignore[list-item]
            )

    def commune_id(self, district: str, commune: str) -> int | None:
        """Return the id of a commune, creating it (and its district) unless dry."""
        key = (fold(district), fold(commune))
        if key in self.communes:
            return self.communes[key]
        districts = select(Area.id).where(Area.level == AreaLevel.DISTRICT, Area.name_key == key[0])
        found = self.session.execute(
            select(Area.id, Area.parent_id).where(
                Area.level == AreaLevel.COMMUNE,
                Area.name_key == key[1],
                Area.parent_id.in_(districts.scalar_subquery()),
            )
        ).first()
        if found is not None:
            commune_id, district_id = found
        elif self.dry:
            commune_id, district_id = None, None
            self.report.new_communes.append(f"{commune} ({district})")
        else:
            area = get_or_create_district(self.session, district)
            created = get_or_create_commune(self.session, area, commune)
            commune_id, district_id = created.id, area.id
            self.report.new_communes.append(f"{created.name} ({area.name})")
        if district_id is not None:
            self.districts.add(district_id)
        self.communes[key] = commune_id
        return commune_id

    # -- one batch -----------------------------------------------------------------

    def apply(self, batch: list[tuple[int, RosterRow | list[RowProblem]]]) -> None:
        """Check duplicates, then add, update and pay out entitlements for one batch."""
        rows: list[RosterRow] = []
        for number, result in batch:
            self.report.rows += 1
            if isinstance(result, list):
                self.report.rejected += 1
                self.report.rejections.extend(result)
                continue
            first = self.seen_codes.get(result.code)
            if first is not None:
                self.report.rejected += 1
                self.report.rejections.append(
                    RowProblem(
                        number,
                        COLUMNS["code"],
                        f"duplicate of row {first}; the first counts",
                        result.code,
                    )
                )
                continue
            self.seen_codes[result.code] = number
            for flag in result.flags:
                column, _, message = flag.partition(": ")
                self.report.flags.append(RowProblem(number, column, message, result.code))
            rows.append(result)
        if not rows:
            return
        existing = {}
        if not self.roster_empty:
            existing = {
                b.code: b
                for b in self.session.connection().execute(
                    select(*_BENEFICIARY_COLUMNS).where(
                        Beneficiary.code.in_([r.code for r in rows])
                    )
                )
            }
        self.unchanged_codes = set()
        new_rows = [r for r in rows if r.code not in existing]
        known_rows = [r for r in rows if r.code in existing]
        new_ids = self._add(new_rows)
        self._update(known_rows, existing)
        known_ids = {r.code: existing[r.code].id for r in known_rows}
        self.seen_ids.update(new_ids.values())
        self.seen_ids.update(known_ids.values())
        self._entitlements(rows, new_ids, known_ids)
        self.writer.grown(len(new_ids))

    def _values(self, row: RosterRow) -> dict[str, Any]:
        """Return the beneficiary columns a row sets."""
        return {
            "full_name": row.full_name,
            "date_of_birth": row.date_of_birth,
            "birth_year": row.birth_year,
            "gender": row.gender,
            "category": row.category,
            "id_number": row.id_number,
            "phone": row.phone,
            "commune_id": self.commune_id(row.district, row.commune),
            "village": row.village,
            "payment_method": row.payment_method,
            "provider": row.provider,
            "account_no": row.account_no,
            "monthly_vnd": row.monthly_vnd,
            "status": row.status,
            "data_error": "; ".join(row.flags) or None,
        }

    def _add(self, rows: list[RosterRow]) -> dict[str, int]:
        """Insert new beneficiaries and their proxies; return their ids by code."""
        self.report.added += len(rows)
        if not rows or self.dry:
            for row in rows:
                self._values(row)  # notes new communes for the dry report
            return {}
        now = utcnow()
        day, stamp = self.writer.day, self.writer.stamp(now)
        new_ids = self.writer.reserve_ids("beneficiaries", len(rows))
        ids = {}
        people = []
        proxies = []
        for row, person_id in zip(rows, new_ids, strict=True):
            ids[row.code] = person_id
            name_key, given = name_keys(row.full_name)
            # The columns of _NEW_BENEFICIARY, in the form they are stored.
            people.append(
                (
                    person_id,
                    row.code,
                    name_key,
                    given,
                    "",
                    stamp,
                    row.full_name,
                    day(row.date_of_birth),
                    row.birth_year,
                    row.gender.value,
                    row.category.value,
                    row.id_number,
                    row.phone,
                    self.commune_id(row.district, row.commune),
                    row.village,
                    row.payment_method.value,
                    row.provider.value,
                    row.account_no,
                    row.monthly_vnd,
                    row.status.value,
                    "; ".join(row.flags) or None,
                )
            )
            if row.has_proxy:
                proxies.append(
                    (
                        person_id,
                        row.proxy_name,
                        row.proxy_id_number,
                        row.proxy_relationship,
                        row.proxy_is_guardian,
                        day(row.proxy_valid_from),
                        day(row.proxy_valid_until),
                        stamp,
                    )
                )
            if row.flags:
                self._flag(person_id, row)
        self.writer.insert("beneficiaries", _NEW_BENEFICIARY, people)
        self.writer.insert("proxies", _NEW_PROXY, proxies)
        return ids

    def _proxy_values(self, row: RosterRow, beneficiary_id: int, now: Any) -> dict[str, Any]:
        """Return the proxy columns of a row."""
        return {
            "beneficiary_id": beneficiary_id,
            "full_name": row.proxy_name,
            "id_number": row.proxy_id_number,
            "relationship_label": row.proxy_relationship,
            "is_guardian": row.proxy_is_guardian,
            "valid_from": row.proxy_valid_from,
            "valid_until": row.proxy_valid_until,
            "created_at": now,
        }

    def _update(self, rows: list[RosterRow], existing: dict[str, Any]) -> None:
        """Compare known beneficiaries with their rows; write and report what changed."""
        if not rows:
            return
        ids = [existing[r.code].id for r in rows]
        live_proxies: dict[int, list[Any]] = {}
        for proxy in self.session.connection().execute(
            select(*_PROXY_COLUMNS).where(Proxy.beneficiary_id.in_(ids), Proxy.revoked_at.is_(None))
        ):
            live_proxies.setdefault(proxy.beneficiary_id, []).append(proxy)
        now = utcnow()
        updates = []
        for row in rows:
            person = existing[row.code]
            values = self._values(row)
            # In a dry run a commune not yet created has no id: that is a change too.
            stored = person._mapping
            changed = [name for name in COMPARED if stored[name] != values[name]]
            proxy_change = self._proxy_change(row, person.id, live_proxies.get(person.id, []), now)
            if proxy_change:
                changed.append("proxy")
            if not changed:
                self.report.unchanged += 1
                self.unchanged_codes.add(row.code)
                continue
            stopping = (
                person.status is BeneficiaryStatus.ACTIVE
                and row.status is not BeneficiaryStatus.ACTIVE
            )
            if stopping:
                self.report.stopped += 1
            else:
                self.report.updated += 1
            labels = sorted({FIELD_LABELS[name] for name in changed})
            if len(self.report.changes) < REPORT_CAP:
                self.report.changes.append((row.code, labels))
            column_changes = {name: values[name] for name in changed if name in values}
            if column_changes and not self.dry:
                if "full_name" in column_changes:
                    keys = name_keys(row.full_name)
                    column_changes["name_key"], column_changes["given_key"] = keys
                column_changes.update(id=person.id, updated_at=now)
                updates.append(column_changes)
            if "data_error" in changed and row.flags:
                self._flag(person.id, row)
            self.events.append(
                EventData(
                    action=(
                        AuditAction.BENEFICIARY_STOPPED
                        if stopping
                        else AuditAction.BENEFICIARY_UPDATED
                    ),
                    object_type="beneficiary",
                    object_id=person.id,
                    data={"code": row.code, "fields": sorted(changed), "period": self.period_code},
                )
            )
        if updates:
            # Bulk UPDATE by primary key, one statement per distinct set of columns.
            for shape in {tuple(sorted(u)) for u in updates}:
                same = [u for u in updates if tuple(sorted(u)) == shape]
                self.session.execute(update(Beneficiary), same)

    def _proxy_change(self, row: RosterRow, person_id: int, live: list[Any], now: Any) -> bool:
        """Make the live proxy match the row; return True if anything changed."""
        if not row.has_proxy:
            if not live:
                return False
            if not self.dry:
                self.session.execute(
                    update(Proxy)
                    .where(Proxy.id.in_([p.id for p in live]))
                    .values(revoked_at=now, revoked_reason="no longer on the roster")
                )
            return True
        wanted = self._proxy_values(row, person_id, now)
        match = next((p for p in live if p.id_number == row.proxy_id_number), None)
        others = [p for p in live if p is not match]
        same = match is not None and all(
            getattr(match, key) == wanted[key]
            for key in (
                "full_name",
                "relationship_label",
                "is_guardian",
                "valid_from",
                "valid_until",
            )
        )
        if same and not others:
            return False
        if self.dry:
            return True
        if others:
            self.session.execute(
                update(Proxy)
                .where(Proxy.id.in_([p.id for p in others]))
                .values(revoked_at=now, revoked_reason="replaced on the roster")
            )
        if match is None:
            self.session.execute(insert(Proxy), [wanted])
        elif not same:
            wanted.pop("created_at")
            wanted.pop("beneficiary_id")
            self.session.execute(update(Proxy).where(Proxy.id == match.id).values(**wanted))
        return True

    def _flag(self, person_id: int, row: RosterRow) -> None:
        """Open a data-error follow-up case for a flagged beneficiary."""
        if self.dry:
            return
        self.failures.append(
            data_error_case(
                person_id, period=self.period_code, flags=row.flags, today=self.today, at=utcnow()
            )
        )

    def _entitlements(
        self, rows: list[RosterRow], new_ids: dict[str, int], known_ids: dict[str, int]
    ) -> None:
        """Create, update or cancel this period's entitlement of every row."""
        current: dict[int, Any] = {}
        # People added by this import have no entitlement yet: only the known are read.
        if self.period is not None and known_ids:
            current = {
                e.beneficiary_id: e
                for e in self.session.connection().execute(
                    select(*_ENTITLEMENT_COLUMNS).where(
                        Entitlement.period_id == self.period.id,
                        Entitlement.beneficiary_id.in_(list(known_ids.values())),
                    )
                )
            }
        now = utcnow()
        stamp = self.writer.stamp(now)
        new = []
        changes: list[dict[str, Any]] = []
        cancels: list[dict[str, Any]] = []
        for row in rows:
            person_id = new_ids.get(row.code) or known_ids.get(row.code)
            entitlement = current.get(person_id) if person_id is not None else None
            amount = entitlement_vnd(row.monthly_vnd, row.arrears_vnd)
            if is_owed(row.status):
                if entitlement is None:
                    self.report.entitlements_created += 1
                    if person_id is not None and self.period is not None and not self.dry:
                        new.append(
                            (
                                person_id,
                                self.period.id,
                                row.monthly_vnd,
                                row.arrears_vnd,
                                amount,
                                EntitlementStatus.DUE.value,
                                stamp,
                            )
                        )
                elif entitlement.status is EntitlementStatus.PAID:
                    if entitlement.amount_vnd != amount:
                        self.report.entitlements_paid_kept += 1
                        self.report.flags.append(
                            RowProblem(
                                row.row,
                                COLUMNS["monthly_amount"],
                                "already paid for this period with another amount; left as paid",
                                row.code,
                            )
                        )
                elif (
                    entitlement.held_by_withdrawal_id is not None
                    or entitlement.reserved_route_id is not None
                ) and (
                    entitlement.amount_vnd != amount or entitlement.arrears_vnd != row.arrears_vnd
                ):
                    self._held(row, entitlement)
                elif (
                    entitlement.status is EntitlementStatus.CANCELLED
                    or entitlement.amount_vnd != amount
                    or entitlement.arrears_vnd != row.arrears_vnd
                ):
                    self.report.entitlements_updated += 1
                    self._note_entitlement_change(row, entitlement, amount)
                    changes.append(
                        {
                            "id": entitlement.id,
                            "monthly_vnd": row.monthly_vnd,
                            "arrears_vnd": row.arrears_vnd,
                            "amount_vnd": amount,
                            "status": EntitlementStatus.DUE,
                            "updated_at": now,
                        }
                    )
            elif entitlement is not None and (
                entitlement.held_by_withdrawal_id is not None
                or entitlement.reserved_route_id is not None
            ):
                self._held(row, entitlement)
            elif entitlement is not None and entitlement.status is EntitlementStatus.DUE:
                self.report.entitlements_cancelled += 1
                cancels.append(
                    {"id": entitlement.id, "status": EntitlementStatus.CANCELLED, "updated_at": now}
                )
        if self.dry:
            return
        # By primary key, one executemany each: a changed month costs no statement per row.
        for same in (changes, cancels):
            if same:
                self.session.execute(update(Entitlement), same)
        self.writer.insert("entitlements", _NEW_ENTITLEMENT, new)

    def _held(self, row: RosterRow, entitlement: Any) -> None:
        """Leave an entitlement a withdrawal or a delivery route holds as it is, and say so.

        A tablet may have paid it offline at the amount it carries: changing the amount
        under it would record money that was never handed over.
        """
        reason = (
            "a withdrawal through the provider is open for this period; left unchanged "
            "(import again once it has ended)"
            if entitlement.held_by_withdrawal_id is not None
            else "reserved for home delivery on a route; left unchanged "
            "(import again once the person is paid or released from the route)"
        )
        self.report.flags.append(RowProblem(row.row, COLUMNS["monthly_amount"], reason, row.code))

    def _note_entitlement_change(self, row: RosterRow, entitlement: Any, amount: int) -> None:
        """Report a changed entitlement, counting its row as updated if nothing else was."""
        if row.code in self.unchanged_codes:
            self.unchanged_codes.discard(row.code)
            self.report.unchanged -= 1
            self.report.updated += 1
            if len(self.report.changes) < REPORT_CAP:
                self.report.changes.append((row.code, [FIELD_LABELS["entitlement"]]))
        self.events.append(
            EventData(
                action=AuditAction.ENTITLEMENT_UPDATED,
                object_type="entitlement",
                object_id=entitlement.id,
                data={
                    "code": row.code,
                    "period": self.period_code,
                    "amount_vnd": [entitlement.amount_vnd, amount],
                    "status": [entitlement.status.value, EntitlementStatus.DUE.value],
                },
            )
        )

    # -- the end -------------------------------------------------------------------

    def finish(self, actor: str) -> None:
        """Report the missing beneficiaries and record the import."""
        self._missing()
        if self.dry:
            return
        self.writer.build_indexes()
        if self.failures:
            self.session.execute(insert(Failure.__table__), self.failures)
        record_events(self.session, actor=actor, events=self.events)
        assert self.period is not None
        record = RosterImport(
            period_id=self.period.id,
            filename=self.report.filename[:255],
            sha256=self.report.sha256,
            actor=actor,
            report=self.report.to_json(),
            **self.report.counts(),
        )
        self.session.add(record)
        self.session.flush()
        self.report.import_id = record.id
        record_event(
            self.session,
            actor=actor,
            action=AuditAction.ROSTER_IMPORTED,
            object_type="roster_import",
            object_id=record.id,
            data={
                "period": self.period_code,
                "file": self.report.filename,
                "sha256": self.report.sha256,
                **self.report.counts(),
                "entitlements_created": self.report.entitlements_created,
                "entitlements_updated": self.report.entitlements_updated,
                "entitlements_cancelled": self.report.entitlements_cancelled,
            },
        )

    def _missing(self) -> None:
        """Find known beneficiaries of the file's districts that the file left out.

        Only the districts present in the file count, so a province importing one
        district's list at a time does not see every other district as missing.
        """
        if not self.districts or self.roster_empty:
            return  # on a first load everyone on the roster came from this file
        communes = select(Area.id).where(Area.parent_id.in_(self.districts))
        query = (
            select(Beneficiary.id, Beneficiary.code)
            .where(Beneficiary.commune_id.in_(communes))
            .order_by(Beneficiary.id)
            .execution_options(yield_per=5000)
        )
        missing_ids = []
        for person_id, code in self.session.execute(query):
            if person_id in self.seen_ids or code in self.seen_codes:
                continue
            self.report.missing += 1
            if len(self.report.missing_codes) < REPORT_CAP:
                self.report.missing_codes.append(code)
            missing_ids.append(person_id)
        if self.period is None or not missing_ids:
            return
        for start in range(0, len(missing_ids), BATCH):
            chunk = missing_ids[start : start + BATCH]
            due = self.session.scalar(
                select(func.count(Entitlement.id)).where(
                    Entitlement.period_id == self.period.id,
                    Entitlement.beneficiary_id.in_(chunk),
                    Entitlement.status == EntitlementStatus.DUE,
                )
            )
            self.report.entitlements_cancelled += due or 0
            if due and not self.dry:
                self.session.execute(
                    update(Entitlement)
                    .where(
                        Entitlement.period_id == self.period.id,
                        Entitlement.beneficiary_id.in_(chunk),
                        Entitlement.status == EntitlementStatus.DUE,
                    )
                    .values(status=EntitlementStatus.CANCELLED, updated_at=utcnow())
                    .execution_options(synchronize_session=False)
                )


def list_periods(session: Session) -> list[dict[str, Any]]:
    """Return every period with its entitlement counts and amounts, newest first."""
    totals = {
        (period_id, status): (count, amount)
        for period_id, status, count, amount in session.execute(
            select(
                Entitlement.period_id,
                Entitlement.status,
                func.count(Entitlement.id),
                func.coalesce(func.sum(Entitlement.amount_vnd), 0),
            ).group_by(Entitlement.period_id, Entitlement.status)
        )
    }
    result = []
    for period in session.scalars(select(Period).order_by(Period.code.desc())):
        row: dict[str, Any] = {"period": period}
        for status in EntitlementStatus:
            count, amount = totals.get((period.id, status), (0, 0))
            row[f"{status.value}_count"] = count
            row[f"{status.value}_vnd"] = int(amount)
        result.append(row)
    return result


def close_period(session: Session, code: str, *, actor_id: int, actor: str) -> Period:
    """Close a period: no more imports change it (unpaid entitlements stay payable)."""
    begin_write(session)
    try:
        period = session.scalar(select(Period).where(Period.code == parse_period(code)))
        if period is None:
            raise InvalidInput(f"no period {code}", code="period_not_found")
        if period.status is PeriodStatus.CLOSED:
            raise Refused(f"period {code} is already closed", code="period_closed")
        period.status = PeriodStatus.CLOSED
        period.closed_at = utcnow()
        period.closed_by_id = actor_id
        record_event(
            session,
            actor=actor,
            action=AuditAction.PERIOD_CLOSED,
            object_type="period",
            object_id=period.id,
            data={"period": period.code},
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return period


def list_imports(session: Session, limit: int = 50) -> Iterable[RosterImport]:
    """Return the latest committed imports."""
    return session.scalars(select(RosterImport).order_by(RosterImport.id.desc()).limit(limit)).all()
