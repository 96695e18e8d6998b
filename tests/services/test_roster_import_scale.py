"""The roster import grows linearly: the same statements per batch at 2,000 and 8,000 rows.

A step that grows with the table instead of the batch (a query per row, one that
reads everything written so far, statistics taken once on an empty table) is what
made a 100,000-row import on PostgreSQL take minutes. Timing it here would be noisy,
so the statements are counted: every batch of the first import, of the same file
again and of the file with changes sends the same number, whatever the size.
benchmarks/roster_import.py measures the speed.
"""

from __future__ import annotations

import csv
import itertools
import unicodedata
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, func, inspect, select

from terminal.models import AuditEvent, Beneficiary, Entitlement, Proxy
from terminal.services.audit import verify_chain
from terminal.services.roster import import_roster
from terminal.services.roster_file import (
    FastRowCheck,
    check_row,
    map_header,
    open_roster,
    stream_rows,
    write_roster_csv,
)
from terminal.synthetic import PILOT_DISTRICTS, synthetic_people

TODAY = date(2021, 10, 15)


def roster(path: Path, rows: int) -> tuple[Path, Path, int, int]:
    """Write a roster and a copy with one row in ten's amount changed.

    Returns the two files, the rows changed and how many of those are owed.
    """
    districts = [(d.name, d.communes) for d in PILOT_DISTRICTS]
    people = synthetic_people(rows, seed=5, districts=districts, today=date(2021, 10, 1))
    first = path / f"roster-{rows}.csv"
    write_roster_csv(people, first)
    changed = path / f"roster-{rows}-changed.csv"
    count = owed = 0
    with (
        first.open(encoding="utf-8-sig", newline="") as source,
        changed.open("w", encoding="utf-8-sig", newline="") as out,
    ):
        reader, writer = csv.reader(source), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        amount, status = header.index("Mức hưởng"), header.index("Trạng thái")
        for number, row in enumerate(reader):
            if number % 10 == 0:
                row[amount] = str(int(row[amount]) + 10_000)
                count += 1
                owed += row[status] in ("", "Đang hưởng")
            writer.writerow(row)
    return first, changed, count, owed


class Statements:
    """Count the statements sent on an engine (COPY included), between two marks."""

    def __init__(self, engine: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.kinds: Counter[str] = Counter()
        self.total = 0
        event.listen(engine, "before_cursor_execute", self._seen)
        self.engine = engine
        if engine.dialect.name == "postgresql":
            import psycopg

            original = psycopg.Cursor.copy

            def copy(cursor: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
                self._count(str(statement))
                return original(cursor, statement, *args, **kwargs)

            monkeypatch.setattr(psycopg.Cursor, "copy", copy)

    def _seen(self, conn, cursor, statement, parameters, context, executemany) -> None:
        self._count(statement)

    def _count(self, statement: str) -> None:
        word = statement.lstrip().split(None, 1)[0].upper()
        if word in ("SELECT", "INSERT") and "areas" in statement.split("WHERE", 1)[0]:
            # Finding or adding the file's communes: a few per commune, once per import.
            word = "AREAS"
        self.kinds[word] += 1
        if word not in ("ANALYZE", "AREAS"):  # ANALYZE: at each doubling of the tables
            self.total += 1

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._seen)


def per_batch(session: Any, path: Path, statements: Statements) -> tuple[Any, list[int]]:
    """Import a file; return the report and the statements sent by each batch."""
    marks: list[int] = []
    report = import_roster(
        session,
        path,
        period="2021-10",
        actor="test",
        today=TODAY,
        progress=lambda _fraction: marks.append(statements.total),
    )
    return report, [later - earlier for earlier, later in itertools.pairwise(marks)]


def run_sizes(session: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int) -> dict:
    """Import a roster of this size three ways; return each way's statements per batch."""
    first, changed, count, owed = roster(tmp_path, rows)
    statements = Statements(session.get_bind(), monkeypatch)
    try:
        added, new_batches = per_batch(session, first, statements)
        assert added.added == rows and added.rejected == 0
        analyzed = statements.kinds["ANALYZE"]
        areas = statements.kinds["AREAS"]
        again, same_batches = per_batch(session, first, statements)
        assert again.unchanged == rows and again.updated == 0
        updated, changed_batches = per_batch(session, changed, statements)
        assert updated.updated == count and updated.added == 0
        assert updated.entitlements_updated == owed > 0
    finally:
        statements.close()
    assert session.scalar(select(func.count(Beneficiary.id))) == rows
    assert session.scalar(select(func.count(Entitlement.id))) == added.entitlements_created
    assert session.scalar(select(func.count(Proxy.id))) > 0
    assert session.scalar(select(func.count(AuditEvent.seq))) >= count
    assert verify_chain(session).ok
    return {
        "new": new_batches,
        "same": same_batches,
        "changed": changed_batches,
        "analyzed": analyzed,
        "areas": areas,
    }


@pytest.mark.parametrize("rows", [2_000, 8_000])
def test_statements_per_batch_do_not_grow_with_the_roster(session, tmp_path, monkeypatch, rows):
    counts = run_sizes(session, tmp_path, monkeypatch, rows)
    batches = rows // 1000
    for way in ("new", "same", "changed"):
        # The progress marks fall after each batch: batches - 1 differences.
        assert len(counts[way]) == batches - 1, (way, counts[way])
    # A few statements per commune of the file (found, or added with its district).
    assert counts["areas"] <= 5 * sum(len(d.communes) + 1 for d in PILOT_DISTRICTS)
    # After the first batch (which may create the file's communes) every batch sends
    # the same statements at 2,000 rows as at 8,000: none per row, none per row
    # already stored. 1,000 rows a batch, so these are the statements per 1,000 rows.
    expected = PER_BATCH[session.get_bind().dialect.name]
    assert {way: set(counts[way]) for way in expected} == {way: {n} for way, n in expected.items()}
    # PostgreSQL's tables are analysed as they double (from 2,048 rows), not each
    # batch; both databases' once more when the import is committed.
    doublings = max(rows.bit_length() - 11, 0)
    postgres = session.get_bind().dialect.name == "postgresql"
    assert counts["analyzed"] == (doublings if postgres else 0) + 1, counts["analyzed"]


# Statements per batch of 1,000 rows: a new roster reserves ids (PostgreSQL) and writes
# beneficiaries, proxies and entitlements; a known one reads the batch's people, live
# proxies and entitlements, and writes what changed.
PER_BATCH = {
    "sqlite": {"new": 3, "same": 3, "changed": 5},
    "postgresql": {"new": 4, "same": 3, "changed": 5},
}


def test_the_quick_check_accepts_only_what_check_row_accepts_the_same(tmp_path):
    """Every row the quick path accepts is exactly check_row's answer; the rest go there."""
    first, _changed, _count, _owed = roster(tmp_path, 2_000)
    source = open_roster(first)
    positions, _ignored = map_header(source.header)
    rows = list(source.rows)
    source.close()
    quick = FastRowCheck(positions, TODAY)
    taken = 0
    for number, cells in rows:
        result = quick.check(number, cells)
        if result is not None:
            taken += 1
            assert result == check_row(number, cells, positions, TODAY)
    assert taken > 0.9 * len(rows)
    # Cells in any other form, good or bad, are left to check_row (and their answer is
    # what stream_rows yields: the reasons for a rejected row are check_row's).
    number, cells = rows[0]
    key = {name: positions[name] for name in positions}
    variants = {
        "full_name": [
            unicodedata.normalize("NFD", "Lê Thị Hương"),
            "Lê  Thị",
            " Lê Thị",
            "H'Hen Niê",
            "Lê 2",
        ],
        "code": ["tth1", " TTH1", "TTH 1", ""],
        "id_number": ["46153060816", "046153060816.0", "000000000000", "04615306081"],
        "phone": ["928816302", "+84928816302", "0928 816 302"],
        "monthly_amount": ["540.000", "0", "-5", "abc"],
        "date_of_birth": ["1953", "31/02/1953", "12/10/2030", ""],
        "status": ["Tạm dừng", "???"],
        "account_no": ["", "12 34 56 78", "x"],
    }
    for column, values in variants.items():
        for value in values:
            changed = list(cells)
            changed[key[column]] = value
            result = quick.check(number, changed)
            expected = check_row(number, changed, positions, TODAY)
            assert result is None or result == expected, (column, value)
            if isinstance(expected, list):
                assert result is None, (column, value)
            streamed = next(stream_rows(_Source([(number, changed)]), positions, TODAY))
            assert streamed == (number, expected), (column, value)


class _Source:
    """A roster source over given rows, for stream_rows."""

    def __init__(self, rows: list[tuple[int, list[Any]]]) -> None:
        self.rows = iter(rows)


def indexes(session: Any) -> dict[str, list[tuple[str, tuple[str, ...], bool]]]:
    """Return each imported table's indexes as the database has them now."""
    session.rollback()
    found = inspect(session.connection())
    answer = {
        table: sorted(
            (i["name"], tuple(i["column_names"]), bool(i["unique"]))
            for i in found.get_indexes(table)
        )
        for table in ("beneficiaries", "proxies", "entitlements")
    }
    session.rollback()
    return answer


def test_a_first_load_builds_its_deferred_indexes_again_and_a_failed_one_keeps_them(
    session, tmp_path
):
    """A first load on SQLite drops the secondary indexes while it writes and builds them
    before it commits; an import that fails midway leaves them as they were; a later
    import into a roster that holds people keeps them all the way through."""
    first, changed, _count, _owed = roster(tmp_path, 2_500)
    before = indexes(session)
    assert before["beneficiaries"] and before["proxies"] and before["entitlements"]
    names = {t: {i[0] for i in found} for t, found in before.items()}
    assert "ix_beneficiaries_name_key" in names["beneficiaries"]

    seen_during: list[set[str]] = []

    def look(_fraction: float) -> None:
        # The import's own connection: the indexes it dropped are gone for it.
        live = inspect(session.connection()).get_indexes("beneficiaries")
        seen_during.append({i["name"] for i in live})

    def fail(_fraction: float) -> None:
        raise RuntimeError("power cut")

    with pytest.raises(RuntimeError):
        import_roster(session, first, period="2021-10", actor="test", today=TODAY, progress=fail)
    assert indexes(session) == before
    assert session.scalar(select(func.count(Beneficiary.id))) == 0

    report = import_roster(
        session, first, period="2021-10", actor="test", today=TODAY, progress=look
    )
    assert report.added == 2_500 and report.missing == 0
    assert seen_during
    if session.get_bind().dialect.name == "sqlite":
        assert "ix_beneficiaries_name_key" not in seen_during[0]
        assert "ix_beneficiaries_id_number" not in seen_during[0]
    else:  # PostgreSQL keeps them: dropping one would hold every reader off
        assert all("ix_beneficiaries_name_key" in during for during in seen_during)
    assert indexes(session) == before
    # The unique guards were never dropped: a code cannot be written twice.
    session.rollback()
    unique = inspect(session.connection()).get_unique_constraints("beneficiaries")
    assert ["code"] in [u["column_names"] for u in unique]
    session.rollback()

    seen_during.clear()
    again = import_roster(
        session, changed, period="2021-10", actor="test", today=TODAY, progress=look
    )
    assert again.added == 0 and again.updated > 0
    assert all("ix_beneficiaries_name_key" in during for during in seen_during)
    assert indexes(session) == before
    assert verify_chain(session).ok
