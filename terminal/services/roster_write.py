"""Bulk writes of a roster import: plain driver rows, COPY on PostgreSQL, ids in blocks.

An import adds up to millions of rows in one transaction. Through the ORM or Core
every row costs its parameters' conversion, and on PostgreSQL an INSERT per row a
round trip: here the rows are given to the driver as tuples already in the form the
column types store (the same text SQLAlchemy writes on SQLite), in one executemany
per batch on SQLite and one COPY per batch on PostgreSQL. New beneficiaries' ids
are reserved before their rows are written, so no query reads them back.

On PostgreSQL the import connection does not prepare its statements on the server
(a plan prepared while the tables were empty would be kept for the whole import),
and the touched tables are analysed each time they double during the import, so
the planner never judges a table of a million rows by the handful it had at first.

On SQLite, a first load into an empty roster (a province's or the country's whole
list) defers the tables' secondary indexes: they are dropped inside the import's
transaction and built again, from the models' own definitions, before it commits.
Keeping a random-order index (a folded name, an ID number) while rows arrive costs a
B-tree descent per row per index; building it once is a sort. The unique indexes stay,
because they are the guard against a code (or a person's entitlement of the period)
written twice. DDL is transactional, so an import that fails leaves every index as it
was, and readers keep their snapshot (WAL) meanwhile. PostgreSQL keeps its indexes:
DROP INDEX there waits for every open transaction that read the table and then blocks
all its readers until commit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection, Index, Table, text

ANALYZE_FROM = 2048  # rows added before the first ANALYZE; then at each doubling


def _sqlite_day(value: date | None) -> str | None:
    """Return a date as SQLAlchemy stores it in SQLite: 2021-10-01."""
    return None if value is None else value.isoformat()


def _sqlite_stamp(value: datetime) -> str:
    """Return a timestamp as UTCDateTime stores it in SQLite: UTC, no zone, microseconds."""
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def _same(value: Any) -> Any:
    """Return a value psycopg adapts as it is."""
    return value


class BulkWriter:
    """Write an import's rows on its connection, in batches, with few statements."""

    def __init__(self, connection: Connection, tables: Sequence[str]) -> None:
        self.connection = connection
        self.postgres = connection.dialect.name == "postgresql"
        self.tables = list(tables)
        self.added = 0
        self.next_analyze = ANALYZE_FROM
        self._next_id: dict[str, int] = {}
        self._deferred: list[Index] = []
        # Rows are given in the form the columns store: enums as their values (the
        # caller's job), dates and times as SQLAlchemy writes them on SQLite.
        self.day: Callable[[date | None], Any] = _same if self.postgres else _sqlite_day
        self.stamp: Callable[[datetime], Any] = _same if self.postgres else _sqlite_stamp

    @contextmanager
    def unprepared(self) -> Iterator[None]:
        """On PostgreSQL, send statements unprepared for the block, then restore."""
        if not self.postgres:
            yield
            return
        driver = self.connection.connection.dbapi_connection
        before = driver.prepare_threshold  # type: ignore[union-attr]
        driver.prepare_threshold = None  # type: ignore[union-attr]
        try:
            yield
        finally:
            driver.prepare_threshold = before  # type: ignore[union-attr]

    def reserve_ids(self, table: str, count: int) -> list[int]:
        """Return count fresh ids for a table's rows, in one statement or none."""
        if table not in self.tables:
            raise ValueError(f"not a table an import writes: {table}")
        if count == 0:
            return []
        if self.postgres:
            return list(
                self.connection.execute(
                    text(
                        "SELECT nextval(pg_get_serial_sequence(:t, 'id')) "
                        "FROM generate_series(1, :n)"
                    ),
                    {"t": table, "n": count},
                ).scalars()
            )
        # SQLite: the import holds the write lock (begin_write), so nobody else adds.
        start = self._next_id.get(table)
        if start is None:
            quoted = self.connection.dialect.identifier_preparer.quote(table)
            query = f"SELECT coalesce(max(id), 0) FROM {quoted}"  # noqa: S608
            start = self.connection.exec_driver_sql(query).scalar_one() + 1
        self._next_id[table] = start + count
        return list(range(start, start + count))

    def insert(self, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
        """Insert rows (stored forms, in the order of columns): one COPY or one executemany."""
        if table not in self.tables:
            raise ValueError(f"not a table an import writes: {table}")
        if not rows:
            return
        quote = self.connection.dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in columns)
        if self.postgres:
            cursor = self.connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
            try:
                with cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
            finally:
                cursor.close()
            return
        marks = ", ".join("?" for _ in columns)
        self.connection.exec_driver_sql(
            f"INSERT INTO {quote(table)} ({names}) VALUES ({marks})",  # noqa: S608
            rows,
        )

    def grown(self, rows: int) -> None:
        """Count added rows; on PostgreSQL analyse the tables each time they double."""
        self.added += rows
        if not self.postgres or self.added < self.next_analyze:
            return
        while self.next_analyze <= self.added:
            self.next_analyze *= 2
        quote = self.connection.dialect.identifier_preparer.quote
        self.connection.exec_driver_sql("ANALYZE " + ", ".join(quote(t) for t in self.tables))

    def defer_indexes(self, tables: Sequence[Table]) -> None:
        """Drop the tables' non-unique indexes until build_indexes.

        Only for tables the import writes, and only worth it when they start empty.
        """
        for table in tables:
            if table.name not in self.tables:
                raise ValueError(f"not a table an import writes: {table.name}")
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                if not index.unique:
                    index.drop(self.connection)
                    self._deferred.append(index)

    def build_indexes(self) -> None:
        """Build the deferred indexes again, as the models define them."""
        for index in self._deferred:
            index.create(self.connection)
        self._deferred.clear()
