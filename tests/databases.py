"""Test databases: migrated once per run, saved states, and a fresh copy for each test.

A state ("empty", "world", a browser module's seeded data) is built once through the
real code, saved, and then given to every test that needs it: on SQLite as a copy of a
file, on PostgreSQL by emptying the tables that have rows and copying the saved rows
back. Both are far cheaper than inserting the rows again or truncating every table
(PostgreSQL makes and syncs new files for each table a TRUNCATE touches).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import Connection, create_engine, inspect, text
from sqlalchemy.engine import make_url

from terminal.db import make_engine
from terminal.schema import upgrade

# Past this many bytes of table data emptying by DELETE leaves more dead rows than a
# TRUNCATE of every table costs (after a roster import of thousands of people).
TRUNCATE_OVER_BYTES = 4 * 1024 * 1024


class TestDatabase(Protocol):
    """The run's database, whatever the engine."""

    def fresh(self, state: str, name: str = "test") -> str:
        """Return the URL of a database holding a saved state: a new copy, or reset in place."""

    def discard(self, name: str = "test") -> None:
        """Free what a fresh database took."""

    def save(self, state: str, url: str) -> None:
        """Save the database at a URL as a named state."""

    def restore(self, state: str, url: str) -> None:
        """Put a saved state back into the database at a URL, in place."""

    def has(self, state: str) -> bool:
        """Tell whether a state was saved."""

    def close(self) -> None:
        """Remove everything the run created."""


def sqlite_files(path: Path) -> list[Path]:
    """Return a SQLite database file and its write-ahead log files."""
    return [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]


def remove_sqlite(path: Path) -> None:
    """Delete a SQLite database and its log files."""
    for file in sqlite_files(path):
        file.unlink(missing_ok=True)


class SQLiteDatabase:
    """Saved states as files in a folder; a test gets a copy of one."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        (folder / "states").mkdir()
        template = self._file("empty")
        engine = make_engine(f"sqlite:///{template}")
        upgrade(engine)
        engine.dispose()
        _checkpoint(template)

    def _file(self, state: str) -> Path:
        return self.folder / "states" / f"{state}.db"

    def has(self, state: str) -> bool:
        return self._file(state).exists()

    def fresh(self, state: str, name: str = "test") -> str:
        target = self.folder / name / "terminal.db"
        target.parent.mkdir(exist_ok=True)
        remove_sqlite(target)
        shutil.copyfile(self._file(state), target)
        return f"sqlite:///{target}"

    def discard(self, name: str = "test") -> None:
        remove_sqlite(self.folder / name / "terminal.db")

    def save(self, state: str, url: str) -> None:
        _backup(_path(url), self._file(state))
        _checkpoint(self._file(state))

    def restore(self, state: str, url: str) -> None:
        # Through SQLite's backup, not a file copy: a served terminal keeps the file open.
        _backup(self._file(state), _path(url))

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _path(url: str) -> Path:
    database = make_url(url).database
    assert database, url
    return Path(database)


def _backup(source: Path, target: Path) -> None:
    """Copy one SQLite database over another with the backup API, which takes its locks."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()


def _checkpoint(path: Path) -> None:
    """Fold the write-ahead log into the file, so that copying the file copies everything."""
    conn = sqlite3.connect(path, timeout=30)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()


@dataclass
class _Saved:
    """A saved PostgreSQL state: its schema, the tables with rows, the sequences."""

    schema: str
    tables: list[str]
    sequences: dict[str, tuple[int, bool]] = field(default_factory=dict)


class PostgresDatabase:
    """One schema migrated for the run (per xdist worker); saved states in schemas beside it."""

    def __init__(self, base_url: str) -> None:
        self.schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        self.admin = create_engine(make_url(base_url).set(drivername="postgresql+psycopg"))
        with self.admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{self.schema}"'))
        self.url = schema_url(base_url, self.schema)
        migrated = make_engine(self.url)
        upgrade(migrated)
        migrated.dispose()
        self.engine = create_engine(self.url, pool_size=1)
        with self.engine.connect() as conn:
            # Parents before children: rows are copied in this order, deleted in reverse.
            self.tables = [
                name
                for name, _ in inspect(conn).get_sorted_table_and_fkc_names()
                if name and name != "alembic_version"
            ]
            self.sequence_names = list(
                conn.execute(
                    text(
                        "SELECT sequencename FROM pg_sequences "
                        "WHERE schemaname = current_schema() ORDER BY sequencename"
                    )
                ).scalars()
            )
        self.saved: dict[str, _Saved] = {}
        self.save("empty", self.url)

    def has(self, state: str) -> bool:
        return state in self.saved

    def fresh(self, state: str, name: str = "test") -> str:
        self.restore(state, self.url)
        return self.url

    def discard(self, name: str = "test") -> None:
        """Leave the rows: the next test's reset deletes only what is there."""

    def save(self, state: str, url: str) -> None:
        assert url == self.url, "one PostgreSQL database per run"
        schema = f"{self.schema}_{state}"
        with self.engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
            tables = [name for name, _ in self._filled(conn)]
            for name in tables:
                conn.execute(text(f'CREATE TABLE "{schema}"."{name}" AS TABLE "{name}"'))
            self.saved[state] = _Saved(schema, tables, self._sequences(conn))

    def restore(self, state: str, url: str) -> None:
        assert url == self.url, "one PostgreSQL database per run"
        saved = self.saved[state]
        with self.engine.begin() as conn:
            # A connection some test left open would make this wait for ever: fail fast.
            conn.execute(text("SET LOCAL lock_timeout = '20s'"))
            # The audit trail refuses DELETE and TRUNCATE (triggers, migration 0007):
            # the tests' own reset runs as a replica, which skips user triggers.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            filled = self._filled(conn)
            if sum(size for _, size in filled) > TRUNCATE_OVER_BYTES:
                conn.execute(text(f"TRUNCATE {', '.join(self.tables)}"))
            else:
                for name, _ in reversed(filled):
                    conn.execute(text(f'DELETE FROM "{name}"'))
            for name in saved.tables:
                conn.execute(text(f'INSERT INTO "{name}" TABLE "{saved.schema}"."{name}"'))
            now = self._sequences(conn)
            changed = {seq: v for seq, v in saved.sequences.items() if now.get(seq) != v}
            if changed:
                calls = ", ".join(
                    f"setval('\"{seq}\"', {value}, {'true' if called else 'false'})"
                    for seq, (value, called) in changed.items()
                )
                conn.execute(text(f"SELECT {calls}"))

    def _filled(self, conn: Connection) -> list[tuple[str, int]]:
        """Return the tables holding rows (parents first) with their size in bytes."""
        query = " UNION ALL ".join(
            f"SELECT {i} AS n, pg_relation_size('\"{name}\"') AS size "
            f'WHERE EXISTS (SELECT FROM "{name}")'
            for i, name in enumerate(self.tables)
        )
        rows = conn.execute(text(f"SELECT n, size FROM ({query}) AS t ORDER BY n")).all()
        return [(self.tables[n], size) for n, size in rows]

    def _sequences(self, conn: Connection) -> dict[str, tuple[int, bool]]:
        """Return each sequence's last value and whether it was used."""
        if not self.sequence_names:
            return {}
        query = " UNION ALL ".join(
            f"SELECT '{seq}', last_value, is_called FROM \"{seq}\"" for seq in self.sequence_names
        )
        return {seq: (value, called) for seq, value, called in conn.execute(text(query))}

    def close(self) -> None:
        self.engine.dispose()
        with self.admin.begin() as conn:
            for saved in self.saved.values():
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{saved.schema}" CASCADE'))
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        self.admin.dispose()


def schema_url(base: str, schema: str) -> str:
    """Return a PostgreSQL URL whose connections use only the given schema."""
    url = make_url(base).set(drivername="postgresql+psycopg")
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def fast_folder(fallback: Callable[[], Path]) -> Path:
    """Return a new folder in memory (/dev/shm) if there is one, else the fallback.

    The suite's SQLite files live there: with synchronous=FULL every commit waits for
    the disk (milliseconds each, thousands per run) and a test proves nothing by it.
    """
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="terminal-tests-", dir=shm))
    return fallback()
