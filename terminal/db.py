"""The database connection: one engine per app, one session per request.

SQLite is set up for payouts that survive power loss (WAL, ``synchronous=FULL``,
foreign keys, a busy timeout) and writers take the write lock up front with
``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes can fail
with "database is locked" without waiting. PostgreSQL is checked for settings that
would lose commits. See ``begin_write``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Connection, Engine, create_engine, event, literal, select, table
from sqlalchemy.engine import make_url
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from terminal.config import ConfigError

WRITE_OPTION = "terminal_write"


class CommitOutcomeUnknown(Exception):
    """The COMMIT was sent but its answer was lost: the change may or may not be saved."""


def commit_or_unknown(session: Session) -> None:
    """Commit, telling a lost COMMIT answer apart from an error before it (RELIABILITY S07).

    Errors of the flush are ordinary (nothing was saved); an error from the COMMIT
    itself (the connection dropped) leaves the outcome unknown, and saying "nothing
    was changed" then could hand cash over twice or not at all.
    """
    session.flush()
    try:
        session.commit()
    except (OperationalError, InterfaceError) as exc:
        raise CommitOutcomeUnknown(str(exc.orig if exc.orig is not None else exc)) from exc


def make_engine(url: str, *, synchronous: str = "FULL", busy_timeout_ms: int = 15000) -> Engine:
    """Create an engine whose every connection is set up for durable payouts."""
    if url.startswith("sqlite"):
        _create_private_file(make_url(url).database)
        engine = create_engine(
            url, connect_args={"timeout": busy_timeout_ms / 1000}, hide_parameters=True
        )
        _setup_sqlite(engine, synchronous, busy_timeout_ms)
    else:
        engine = create_engine(
            url, pool_pre_ping=True, pool_size=5, max_overflow=10, hide_parameters=True
        )
    return engine


def _create_private_file(path: str | None) -> None:
    """Create a new SQLite file readable by its owner only (it holds ID numbers).

    SQLite gives the -wal and -shm files the database file's permissions, so they are
    private too. An existing file keeps the permissions its owner chose.
    """
    if not path or path == ":memory:" or path.startswith("file:"):
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError:
        return  # a missing folder and the like: SQLite's own error says it better
    os.close(fd)


def _setup_sqlite(engine: Engine, synchronous: str, busy_timeout_ms: int) -> None:
    """Install the pragmas and the explicit BEGIN handling on every SQLite connection."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        mode = cursor.execute("PRAGMA journal_mode").fetchone()[0]
        if mode.lower() != "wal":
            # Switching to WAL needs a moment without other connections; retried by
            # the busy timeout. It is persistent, so this runs once per file.
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute(f"PRAGMA synchronous = {synchronous}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def check_durability(engine: Engine) -> None:
    """Refuse a database set up to lose committed payouts (RELIABILITY S06)."""
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                level = conn.exec_driver_sql("PRAGMA synchronous").scalar()
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                if int(level) < 2:
                    raise ConfigError(
                        "SQLite synchronous is below FULL: a committed payout could be lost"
                    )
                if str(mode).lower() != "wal":
                    raise ConfigError(f"SQLite journal_mode is {mode}, expected wal")
            else:
                for setting in ("fsync", "synchronous_commit"):
                    value = conn.exec_driver_sql(f"SHOW {setting}").scalar()
                    if str(value).lower() == "off":
                        raise ConfigError(
                            f"PostgreSQL {setting} is off: a committed payout could be lost"
                        )
    except OperationalError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else str(exc)
        raise ConfigError(f"cannot open the database: {reason}") from None


def init_app(app: Flask) -> None:
    """Create the app's engine and session factory and close sessions after requests."""
    engine = make_engine(
        app.config["DATABASE_URL"],
        synchronous=app.config["SQLITE_SYNCHRONOUS"],
        busy_timeout_ms=app.config["SQLITE_BUSY_TIMEOUT_MS"],
    )
    check_durability(engine)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    app.extensions["terminal.db"] = {"engine": engine, "sessionmaker": factory}
    app.teardown_appcontext(_close_session)


def get_engine(app: Flask | None = None) -> Engine:
    """Return the engine of the current (or given) app."""
    return (app or current_app).extensions["terminal.db"]["engine"]


def new_session(app: Flask | None = None) -> Session:
    """Open a session that the caller closes (CLI commands, background work)."""
    return (app or current_app).extensions["terminal.db"]["sessionmaker"]()


def get_session() -> Session:
    """Return this request's session, opened on first use."""
    if "db_session" not in g:
        g.db_session = new_session()
    return g.db_session


def _close_session(_exc: BaseException | None) -> None:
    """Roll back whatever the request left open and return the connection."""
    session = g.pop("db_session", None)
    if session is not None:
        session.close()


def begin_write(session: Session) -> None:
    """Start a write transaction, on SQLite holding the write lock from the start.

    Any read transaction still open is ended first, so the writer works on the
    latest committed data under the lock.
    """
    if session.in_transaction():
        session.rollback()
    session.connection(execution_options={WRITE_OPTION: True})


def refresh_statistics(target: Session | Engine, *, if_missing: bool = False) -> bool:
    """Gather the query planner's statistics; return whether ANALYZE ran.

    Without them SQLite answers a scoped search through the commune index, reading
    every person of a point: a search of a millisecond takes hundreds (PERFORMANCE.md).
    Run after bulk changes (imports, generated data) and at start-up, where
    ``if_missing`` analyses only a database whose non-empty tables have indexes never
    analysed, then lets SQLite's ``PRAGMA optimize`` decide. A session's pending work
    must be committed first: this runs in a transaction of its own. PostgreSQL
    analyses on its own too (autovacuum), but only some time after an import.
    """
    if isinstance(target, Session):
        if target.in_transaction():
            target.rollback()
        with write_transaction(target):
            return _analyze(target.connection(), if_missing=if_missing)
    with target.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
        return _analyze(conn, if_missing=if_missing)


def _analyze(conn: Connection, *, if_missing: bool) -> bool:
    """Run ANALYZE on this connection's database, in its open write transaction."""
    if conn.dialect.name != "sqlite":
        if if_missing:
            return False  # autovacuum keeps a running PostgreSQL analysed
        from terminal.models import Base

        # Only our tables: a bare ANALYZE would visit every schema of the database.
        names = ", ".join(conn.dialect.identifier_preparer.quote(t) for t in Base.metadata.tables)
        conn.exec_driver_sql(f"ANALYZE {names}")
        return True
    if if_missing and not _sqlite_unanalysed(conn):
        # A no-op on a fresh connection before SQLite 3.46; there 0x10000 makes it look
        # at every table and re-analyse those that grew or shrank a lot.
        conn.exec_driver_sql("PRAGMA optimize=0x10002")
        return False
    conn.exec_driver_sql("ANALYZE")
    # Other open connections keep the statistics they loaded with the schema until
    # the schema changes: change it, so that every worker plans with the new ones.
    conn.exec_driver_sql("CREATE TABLE terminal_statistics_reload (x INTEGER)")
    conn.exec_driver_sql("DROP TABLE terminal_statistics_reload")
    return True


def _sqlite_unanalysed(conn: Connection) -> bool:
    """Tell whether a non-empty table has an index that ANALYZE has never seen."""
    has_stats = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).first()
    indexes = conn.exec_driver_sql(
        "SELECT tbl_name, name FROM sqlite_master "
        "WHERE type = 'index' AND tbl_name NOT LIKE 'sqlite%'"
    ).all()
    seen = (
        set(conn.exec_driver_sql("SELECT idx FROM sqlite_stat1").scalars()) if has_stats else set()
    )
    tables = {table_name for table_name, index in indexes if index not in seen}
    return any(
        conn.execute(select(literal(1)).select_from(table(name)).limit(1)).first() is not None
        for name in sorted(tables)
    )


@contextmanager
def write_transaction(session: Session) -> Iterator[Session]:
    """Run a block as one write transaction: commit on success, roll back on error."""
    begin_write(session)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
