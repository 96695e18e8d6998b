"""Bulk loading: periods, people with their proxies and entitlements, payouts and receipts.

Speed comes from Core ``executemany`` inserts in batches with ids allocated up front (so no
row is read back to learn its id), from building the secondary indexes of empty tables after
the load, and from streaming: memory stays bounded whatever the number of people. What the
rows say (receipt numbers, channels, name keys, entitlements, data-error cases, periods) is
decided by the same functions the counter and the roster import use.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from terminal.formatting import VIETNAM
from terminal.models import (
    Beneficiary,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Failure,
    Payout,
    PayoutLine,
    PayoutStatus,
    Provider,
    Proxy,
    Receipt,
    ReceiptCounter,
)
from terminal.models.roster import authorisation_status
from terminal.rules import channel_for, format_receipt_no, receipt_year
from terminal.services.roster import (
    data_error_case,
    entitlement_vnd,
    is_owed,
    open_period,
    period_code,
    period_start,
)
from terminal.services.roster_file import id_number_flag, is_guardian
from terminal.synthetic.people import CODE_DIGITS, CODE_PREFIX, commune_plan, month_start
from terminal.synthetic.places import Commune, Point
from terminal.text import cccd_facts, name_keys

BATCH = 10_000  # rows per executemany: big enough to amortise, small enough to stream


@dataclass
class _Slot:
    """Where a commune's people fall in its point's month: payouts go commune by commune."""

    rank: int  # this commune's place among the point's communes
    communes: int  # how many of this run's communes the point serves
    people: int  # the size of this commune's block of people
    seen: int = 0


@dataclass(frozen=True)
class _PeriodRef:
    """A period being written: its row, its first instant and its working days."""

    id: int
    code: str
    starts_at: datetime
    weekdays: tuple[date, ...]


def period_codes(last: str, count: int) -> list[str]:
    """Return `count` consecutive period codes ending with `last`, oldest first."""
    first_day = period_start(last)
    return [period_code(month_start(first_day, back)) for back in range(count - 1, -1, -1)]


def _weekdays(year: int, month: int) -> tuple[date, ...]:
    """Return the working days (Monday to Friday) of a month."""
    day = date(year, month, 1)
    days = []
    while day.month == month:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def period_refs(session: Session, codes: Sequence[str]) -> list[_PeriodRef]:
    """Return the periods with these codes, creating the missing ones as open.

    A closed period is refused, as the roster import refuses it: nothing adds to a month
    that has been closed.
    """
    refs = []
    for code in codes:
        period = open_period(session, code)
        assert period is not None
        day = period_start(code)
        starts = datetime(day.year, day.month, 1, tzinfo=VIETNAM).astimezone(UTC)
        refs.append(_PeriodRef(period.id, code, starts, _weekdays(day.year, day.month)))
    return refs


def next_code(session: Session, floor: int) -> int:
    """Return the first synthetic code number above every TTH + 7-digit code in use."""
    column = Beneficiary.code
    highest = session.scalars(
        select(column)
        .where(column >= f"{CODE_PREFIX}{0:0{CODE_DIGITS}d}")
        .where(column <= f"{CODE_PREFIX}{10**CODE_DIGITS - 1}")
        .order_by(column.desc())
        .limit(100)
    )
    for code in highest:
        digits = code[len(CODE_PREFIX) :]
        # The range also holds codes like "TTH12X...": only exact TTH + 7 digits count.
        if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit():
            return max(floor, int(digits) + 1)
    return floor


# PostgreSQL hands out ids from the column's own sequence: safe beside other writers.
_RESERVE_IDS = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")


class _Ids:
    """Primary keys handed out before the insert, so that no row is read back for its id."""

    def __init__(self, session: Session, table: Table) -> None:
        self.session = session
        self.table = table
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        if self.sqlite:
            # The writer holds SQLite's write lock (BEGIN IMMEDIATE): nobody else inserts.
            self.next = (session.scalar(select(func.max(table.c.id))) or 0) + 1

    def take(self, count: int) -> Sequence[int]:
        """Return `count` unused ids, in increasing order."""
        if self.sqlite:
            ids = range(self.next, self.next + count)
            self.next += count
            return ids
        return sorted(
            self.session.execute(
                _RESERVE_IDS,
                {"t": self.table.name, "n": count},
            ).scalars()
        )


@contextmanager
def indexes_built_after(session: Session, tables: Sequence[Table]) -> Iterator[None]:
    """Drop the secondary indexes of the empty tables among these, and build them after.

    Keeping an index up to date row by row costs several times more than building it once
    at the end (PERFORMANCE.md: 1M rows load in 3.8 s plus 1-2 s per index, or 18 s with
    the indexes in place). Only empty tables are treated so: nobody is searching them yet.
    Unique indexes stay, since they are rules. On an error the transaction's rollback
    brings the dropped indexes back.
    """
    connection = session.connection()
    dropped = []
    for table in tables:
        if session.execute(select(table.c.id).limit(1)).first() is not None:
            continue
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if not index.unique:
                index.drop(connection)
                dropped.append(index)
    yield
    for index in dropped:
        index.create(connection)


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of up to `size` items."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


class RosterWriter:
    """Writes people, their proxies and entitlements (and data-error cases) in batches."""

    def __init__(
        self,
        session: Session,
        *,
        communes: Sequence[Commune],
        periods: Sequence[_PeriodRef],
        slots: Mapping[int, _Slot] | None = None,
        seed: int = 0,
    ) -> None:
        self.session = session
        self.commune_ids = {(c.district, c.commune): c.commune_id for c in communes}
        self.periods = periods
        self.slots = slots or {}
        self.rng = random.Random(f"{seed}-paid-at")
        self.ids = _Ids(session, Beneficiary.__table__)
        # Rows carry the date they would have entered the system: the first period's start.
        self.created_at = periods[0].starts_at
        self.first_day = period_start(periods[0].code)
        self.beneficiaries = self.proxies = self.entitlements = self.data_errors = 0
        self.first_id: int | None = None
        self.last_id = 0
        self.first_code: str | None = None
        self.last_code: str | None = None

    def write_all(
        self, people: Iterable[dict[str, Any]], progress: Callable[[int], None] | None = None
    ) -> None:
        """Insert people batch by batch, telling `progress` how many are written so far."""
        for batch in batched(people, BATCH):
            self.write(batch)
            if progress is not None:
                progress(self.beneficiaries)

    def write(self, people: Sequence[dict[str, Any]]) -> None:
        """Insert one batch of people with everything that hangs off them."""
        ids = self.ids.take(len(people))
        beneficiaries, proxies, entitlements, failures = [], [], [], []
        created = self.created_at
        last_period = len(self.periods) - 1
        for person_id, person in zip(ids, people, strict=True):
            commune_id = self.commune_ids[(person["district"], person["commune"])]
            name_key, given_key = name_keys(person["full_name"])
            error = None
            id_number = person["id_number"]
            # A CCCD whose digits say what the row says has nothing to flag, and cccd_facts
            # is cheap: the import's wording is asked for only by the ~2 % that differ.
            if id_number is not None and cccd_facts(id_number) != (
                person["gender"],
                person["birth_year"],
            ):
                error = id_number_flag(
                    id_number, gender=person["gender"], birth_year=person["birth_year"]
                )
                if error:
                    failures.append(
                        data_error_case(
                            person_id,
                            period=self.periods[0].code,
                            flags=[error],
                            today=self.first_day,
                            at=created,
                        )
                    )
            beneficiaries.append(
                {
                    "id": person_id,
                    "code": person["code"],
                    "full_name": person["full_name"],
                    "name_key": name_key,
                    "given_key": given_key,
                    "date_of_birth": person["date_of_birth"],
                    "birth_year": person["birth_year"],
                    "gender": person["gender"],
                    "category": person["category"],
                    "id_number": person["id_number"],
                    "phone": person["phone"],
                    "commune_id": commune_id,
                    "village": person["village"],
                    "address": f"{person['village']}, {person['commune']}, {person['district']}",
                    "payment_method": person["payment_method"],
                    "provider": person["provider"],
                    "account_no": person["account_no"],
                    "monthly_vnd": person["monthly_vnd"],
                    "status": person["status"],
                    "data_error": error,
                    "created_at": created,
                }
            )
            if person["proxy_name"] is not None:
                proxies.append(
                    {
                        "beneficiary_id": person_id,
                        "full_name": person["proxy_name"],
                        "id_number": person["proxy_id_number"],
                        "relationship": person["proxy_relationship"],
                        "is_guardian": is_guardian(person["proxy_relationship"]),
                        "valid_from": person["proxy_valid_from"],
                        "valid_until": person["proxy_valid_until"],
                        "created_at": created,
                    }
                )
            slot = self.slots.get(commune_id)
            if slot is not None:
                slot.seen += 1
            if not is_owed(person["status"]):
                continue
            for index, period in enumerate(self.periods):
                paid = index < last_period
                arrears = 0 if paid else person["arrears_vnd"]
                monthly = person["monthly_vnd"]
                entitlements.append(
                    {
                        "beneficiary_id": person_id,
                        "period_id": period.id,
                        "monthly_vnd": monthly,
                        "arrears_vnd": arrears,
                        "amount_vnd": entitlement_vnd(monthly, arrears),
                        "status": (EntitlementStatus.PAID if paid else EntitlementStatus.DUE).value,
                        "created_at": period.starts_at,
                        # A paid entitlement changed status when it was paid: the payout
                        # writer reads this back as the payout's time.
                        "updated_at": self._paid_at(period, slot) if paid else None,
                    }
                )
        session = self.session
        session.execute(insert(Beneficiary.__table__), beneficiaries)
        if proxies:
            session.execute(insert(Proxy.__table__), proxies)
        if entitlements:
            session.execute(insert(Entitlement.__table__), entitlements)
        if failures:
            session.execute(insert(Failure.__table__), failures)
        self.beneficiaries += len(beneficiaries)
        self.proxies += len(proxies)
        self.entitlements += len(entitlements)
        self.data_errors += len(failures)
        if self.first_id is None:
            self.first_id, self.first_code = ids[0], people[0]["code"]
        self.last_id, self.last_code = ids[-1], people[-1]["code"]

    def _paid_at(self, period: _PeriodRef, slot: _Slot | None) -> datetime:
        """Return when this person was paid: a weekday, 07:30-16:30 Vietnam time.

        A point pays its communes one after the other through the month and each
        commune's people in code order, so receipt numbers rise with the time of payment.
        """
        if slot is None:
            raise RuntimeError("a paid period needs the communes' payout points")
        position = (slot.seen - 1 + self.rng.random()) / slot.people
        working_minutes = (slot.rank + position) / slot.communes * len(period.weekdays) * 540
        day_index, minute = divmod(working_minutes, 540)
        day = period.weekdays[min(int(day_index), len(period.weekdays) - 1)]
        local = datetime(day.year, day.month, day.day, 7, 30, tzinfo=VIETNAM)
        return (local + timedelta(seconds=int(minute * 60))).astimezone(UTC)


class PayoutWriter:
    """Pays the entitlements of the paid periods: payouts, lines, receipts and counters."""

    def __init__(
        self,
        session: Session,
        *,
        points: Mapping[int, Point],
        staff: Mapping[int, int],
        beneficiary_ids: tuple[int, int],
        seed: int,
    ) -> None:
        self.session = session
        self.points = points  # by commune id
        self.staff = staff  # user id by point id
        self.low, self.high = beneficiary_ids
        self.rng = random.Random(f"{seed}-payouts")
        self.ids = _Ids(session, Payout.__table__)
        self.payouts = 0
        point_ids = sorted({p.id for p in points.values()})
        counters = session.execute(
            select(ReceiptCounter.point_id, ReceiptCounter.year, ReceiptCounter.last_seq)
            .where(ReceiptCounter.point_id.in_(point_ids))
            .with_for_update()
        ).all()
        self.known = {(p, y): seq for p, y, seq in counters}
        self.seq: dict[tuple[int, int], int] = dict(self.known)

    def pay(self, period: _PeriodRef) -> None:
        """Pay every entitlement of this run in one period, in code order."""
        ent, ben, prx = Entitlement.__table__, Beneficiary.__table__, Proxy.__table__
        above, up_to = bindparam("above"), bindparam("up_to")
        query = (
            select(
                ent.c.id,
                ent.c.beneficiary_id,
                ent.c.amount_vnd,
                ent.c.updated_at,
                ben.c.commune_id,
                ben.c.payment_method,
                ben.c.provider,
                prx.c.id,
                prx.c.is_guardian,
                prx.c.valid_from,
                prx.c.valid_until,
            )
            .join(ben, ben.c.id == ent.c.beneficiary_id)
            .outerjoin(prx, and_(prx.c.beneficiary_id == ben.c.id, prx.c.revoked_at.is_(None)))
            .where(
                # Pages are windows of beneficiary ids, not LIMITs, and "+ 0" keeps the
                # planner off the (period_id, status) index: without statistics on the fresh
                # rows either would let a page read (and sort) the whole rest of the period.
                ent.c.beneficiary_id > above,
                ent.c.beneficiary_id <= up_to,
                ent.c.period_id + 0 == period.id,
                ent.c.status == EntitlementStatus.PAID.value,
            )
            .order_by(ent.c.beneficiary_id)
        )
        for start in range(self.low - 1, self.high, BATCH):
            window = {"above": start, "up_to": min(start + BATCH, self.high)}
            rows = self.session.execute(query, window).all()
            if rows:
                self._write(rows)

    def _write(self, rows: Sequence[Any]) -> None:
        """Insert the payouts, lines and receipts of one batch of paid entitlements."""
        rng = self.rng
        ids = self.ids.take(len(rows))
        payouts, lines, receipts = [], [], []
        for payout_id, row in zip(ids, rows, strict=True):
            (ent_id, person_id, amount, paid_at, commune_id, method, provider) = row[:7]
            proxy_id, guardian, valid_from, valid_until = row[7:]
            point = self.points[commune_id]
            day = paid_at.astimezone(VIETNAM).date()
            via_proxy = (
                proxy_id is not None
                and authorisation_status(day, valid_from=valid_from, valid_until=valid_until)
                == "active"
                # Some with a proxy still come themselves; a guardian always collects.
                and (guardian or rng.random() < 0.95)
            )
            channel = channel_for(point.kind, method)
            provider_ref = None
            if channel is Channel.ACCOUNT:
                bank = "VTP" if provider == Provider.VIETTEL_PAY else "VTB"
                provider_ref = f"{bank}-{day:%Y%m%d}-{rng.randrange(10**8):08d}"
            year = receipt_year(paid_at)
            key = (point.id, year)
            seq = self.seq.get(key, 0) + 1
            self.seq[key] = seq
            payouts.append(
                {
                    "id": payout_id,
                    "point_id": point.id,
                    "user_id": self.staff[point.id],
                    "beneficiary_id": person_id,
                    "channel": channel.value,
                    "collector_type": (
                        CollectorType.PROXY if via_proxy else CollectorType.BENEFICIARY
                    ).value,
                    "proxy_id": proxy_id if via_proxy else None,
                    "provider_ref": provider_ref,
                    "amount_vnd": amount,
                    "status": PayoutStatus.COMPLETED.value,
                    "paid_at": paid_at,
                }
            )
            lines.append({"payout_id": payout_id, "entitlement_id": ent_id, "amount_vnd": amount})
            receipts.append(
                {
                    "payout_id": payout_id,
                    "receipt_no": format_receipt_no(point.code, year, seq),
                    "point_id": point.id,
                    "year": year,
                    "seq": seq,
                    "format": point.receipt_format,
                    "reprint_count": 0,
                    "created_at": paid_at,
                }
            )
        session = self.session
        session.execute(insert(Payout.__table__), payouts)
        session.execute(insert(PayoutLine.__table__), lines)
        session.execute(insert(Receipt.__table__), receipts)
        self.payouts += len(payouts)

    def finish(self) -> None:
        """Move every receipt counter touched to the last number used."""
        table = ReceiptCounter.__table__
        for (point_id, year), seq in sorted(self.seq.items()):
            if (point_id, year) in self.known:
                if self.known[(point_id, year)] != seq:
                    self.session.execute(
                        update(table)
                        .where(table.c.point_id == point_id, table.c.year == year)
                        .values(last_seq=seq)
                    )
            else:
                self.session.execute(
                    insert(table).values(point_id=point_id, year=year, last_seq=seq)
                )


ROSTER_TABLES = (
    Beneficiary.__table__,
    Proxy.__table__,
    Entitlement.__table__,
    Failure.__table__,
)
PAYOUT_TABLES = (Payout.__table__, PayoutLine.__table__, Receipt.__table__)


def commune_slots(
    communes: Sequence[Commune], points: Mapping[int, Point], total: int
) -> dict[int, _Slot]:
    """Return each commune's place in its point's month, and its share of the people."""
    sizes = commune_plan(total, len(communes))
    served: dict[int, list[int]] = defaultdict(list)
    for c in communes:
        served[points[c.commune_id].id].append(c.commune_id)
    result = {}
    for c, size in zip(communes, sizes, strict=True):
        mine = served[points[c.commune_id].id]
        result[c.commune_id] = _Slot(rank=mine.index(c.commune_id), communes=len(mine), people=size)
    return result
