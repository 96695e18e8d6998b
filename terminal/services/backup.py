"""Backup and restore of the terminal's database, while the terminal keeps paying (S21).

SQLite: SQLite's online backup (``sqlite3.Connection.backup``) reads one consistent
snapshot of the live file (WAL: payouts go on meanwhile) into ``FILE.part``, which is
made a single self-contained file (journal mode DELETE), checked with ``PRAGMA
integrity_check``, synced and only then renamed to FILE. PostgreSQL: ``pg_dump
--format=custom`` (the documented way) of a snapshot exported by this process, so the
summary's counts are those of the dump; restored with ``pg_restore --clean --if-exists
--no-owner --single-transaction``, so a damaged archive changes nothing.

A backup first records ``backup.written`` in the audit trail, committed before the copy is
taken, so the copy holds the trace of its own making. A restore refuses a database that
already holds data (unless forced), migrates an older backup to the current schema and
verifies the audit chain.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from flask import Flask
from sqlalchemy import Connection, Engine, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from terminal.db import get_engine, new_session, write_transaction
from terminal.services.errors import ServiceError

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Tables whose rows say nothing about use: a freshly migrated database holds these.
_BOOKKEEPING = {"alembic_version", "audit_head"}


class BackupError(ServiceError):
    """A backup or restore was refused or failed; nothing of the target was changed."""

    status = 409
    code = "backup_refused"


@dataclass(frozen=True)
class Contents:
    """What a database holds, in the terms an operator checks: payouts and the audit head."""

    payouts: int
    audit_seq: int


@dataclass(frozen=True)
class BackupSummary:
    """A written backup."""

    path: Path
    size: int
    kind: str
    contents: Contents

    def line(self) -> str:
        """Return the one-line summary the command prints."""
        return (
            f"backup written to {self.path} ({self.kind}, {_size(self.size)}): "
            f"{self.contents.payouts} payouts, audit head at sequence {self.contents.audit_seq}"
        )


@dataclass(frozen=True)
class RestoreSummary:
    """A restored database and the verification of its audit chain."""

    path: Path
    size: int
    kind: str
    contents: Contents
    chain_ok: bool
    events: int
    first_bad_seq: int | None
    revision: str | None

    def line(self) -> str:
        """Return the one-line summary the command prints."""
        chain = (
            f"audit chain intact ({self.events} events)"
            if self.chain_ok
            else f"audit chain broken at sequence {self.first_bad_seq}"
        )
        return (
            f"restored {self.path} ({self.kind}, {_size(self.size)}): "
            f"{self.contents.payouts} payouts, audit head at sequence "
            f"{self.contents.audit_seq}, schema {self.revision}; {chain}"
        )


def _size(size: int) -> str:
    """Format a file size for people."""
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    return f"{size / 1024:.1f} kB"


# ---- backup --------------------------------------------------------------------------


def backup(
    app: Flask, target: Path | str, *, force: bool = False, actor: str = "cli"
) -> BackupSummary:
    """Write a consistent copy of the live database to a file, without stopping payouts."""
    path = Path(target).expanduser().absolute()
    if path.exists() and not force:
        raise BackupError(f"{path} already exists; give --force to overwrite it")
    if path.is_dir():
        raise BackupError(f"{path} is a folder, not a file")
    partial = path.with_name(path.name + ".part")
    try:
        # Opened before the audit event: an unwritable place is refused with no trace.
        partial.unlink(missing_ok=True)
        partial.touch(mode=0o600)
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror}") from None
    engine = get_engine(app)
    kind = "sqlite" if engine.dialect.name == "sqlite" else "pg_dump"
    try:
        if kind == "pg_dump":
            find_pg_tool("pg_dump")  # a missing tool is refused before the audit event
        _record_backup(app, path, kind, actor)
        if kind == "sqlite":
            contents = _sqlite_backup(engine, partial, app.config["SQLITE_BUSY_TIMEOUT_MS"])
        else:
            contents = _pg_backup(engine, partial)
        _sync(partial)
        partial.replace(path)
        _sync_folder(path.parent)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return BackupSummary(path, path.stat().st_size, kind, contents)


def _record_backup(app: Flask, path: Path, kind: str, actor: str) -> None:
    """Commit the backup's audit event, so that the copy taken next contains it."""
    from terminal.models import AuditAction
    from terminal.services.audit import record_event

    session = new_session(app)
    try:
        with write_transaction(session):
            record_event(
                session,
                actor=actor,
                action=AuditAction.BACKUP_WRITTEN,
                object_type="backup",
                object_id=path.name,
                data={"format": kind},
            )
    finally:
        session.close()


def _sqlite_backup(engine: Engine, partial: Path, busy_timeout_ms: int) -> Contents:
    """Copy the live SQLite database into ``partial`` with the online backup API."""
    source_path = make_url(str(engine.url)).database
    assert source_path
    source = sqlite3.connect(source_path, timeout=busy_timeout_ms / 1000)
    copy = sqlite3.connect(partial, isolation_level=None)
    try:
        # One step (pages=-1): one read transaction, one snapshot; in WAL mode the
        # writers go on meanwhile and nothing they commit later is half in the copy.
        source.backup(copy)
        # A backup is one file: no -wal beside it to lose on the way to its shelf.
        copy.execute("PRAGMA journal_mode = DELETE")
        _check_integrity(copy, partial)
        return _sqlite_contents(copy)
    except sqlite3.Error as exc:
        raise BackupError(f"the backup failed: {exc}") from None
    finally:
        copy.close()
        source.close()


def _pg_backup(engine: Engine, partial: Path) -> Contents:
    """Dump PostgreSQL with pg_dump from a snapshot this process exported and counted."""
    pg_dump = find_pg_tool("pg_dump")
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            snapshot = conn.execute(text("SELECT pg_export_snapshot()")).scalar_one()
            contents = _contents(conn)
            command = [
                pg_dump,
                "--format=custom",
                "--no-password",
                f"--snapshot={snapshot}",
                f"--file={partial}",
            ]
            schema = _url_schema(engine)
            if schema:
                command.append(f"--schema={schema}")
            _run([*command, _libpq_url(engine)], engine, "pg_dump")
    return contents


# ---- restore -------------------------------------------------------------------------


def restore(app: Flask, source: Path | str, *, force: bool = False) -> RestoreSummary:
    """Load a backup into the configured database, migrate it and verify its audit chain."""
    from terminal.schema import current_revision, upgrade
    from terminal.services.audit import verify_chain

    path = Path(source).expanduser().absolute()
    try:
        with path.open("rb") as handle:
            magic = handle.read(16)
    except OSError as exc:
        raise BackupError(f"cannot read {path}: {exc.strerror}") from None
    engine = get_engine(app)
    sqlite = engine.dialect.name == "sqlite"
    if magic.startswith(SQLITE_MAGIC):
        kind = "sqlite"
    elif magic.startswith(PGDUMP_MAGIC):
        kind = "pg_dump"
    else:
        raise BackupError(f"{path} is not a backup of the terminal (neither SQLite nor pg_dump)")
    if sqlite != (kind == "sqlite"):
        where = "SQLite" if sqlite else "PostgreSQL"
        raise BackupError(f"{path} is a {kind} backup; the configured database is {where}")
    if sqlite:
        _sqlite_restore(app, engine, path, force)
    else:
        _pg_restore(engine, path, force)
    # An older backup is brought to this version's schema, as `init-db` would.
    try:
        upgrade(engine)
    except SQLAlchemyError as exc:
        raise BackupError(f"restored, but migrating it failed: {_first_line(exc)}") from None
    session = new_session(app)
    try:
        report = verify_chain(session)
        contents = _contents(session.connection())
    finally:
        session.close()
    return RestoreSummary(
        path=path,
        size=path.stat().st_size,
        kind=kind,
        contents=contents,
        chain_ok=report.ok,
        events=report.events,
        first_bad_seq=report.first_bad_seq,
        revision=current_revision(engine),
    )


def _sqlite_restore(app: Flask, engine: Engine, path: Path, force: bool) -> None:
    """Check a SQLite backup on a private copy, then copy it into the configured file."""
    target = make_url(str(engine.url)).database
    assert target
    target_path = Path(target)
    fd, name = tempfile.mkstemp(prefix=".restore-", suffix=".part", dir=target_path.parent)
    os.close(fd)
    scratch = Path(name)
    try:
        # Checked on a copy: the operator's backup file is never opened for writing.
        shutil.copyfile(path, scratch)
        copy = sqlite3.connect(scratch, isolation_level=None)
        try:
            _check_integrity(copy, path)
            _check_revision(_sqlite_revision(copy, path), path)
        except sqlite3.Error as exc:
            raise BackupError(f"{path} is damaged: {exc}") from None
        finally:
            copy.close()
        _refuse_filled(engine, force)
        engine.dispose()
        # Into place through SQLite's backup API, not a file copy: it takes the target's
        # locks and writes through its journal, so a stale -wal can never be replayed
        # over the restored pages and a crash midway leaves the old database whole.
        copy = sqlite3.connect(scratch)
        into = sqlite3.connect(target_path, timeout=app.config["SQLITE_BUSY_TIMEOUT_MS"] / 1000)
        try:
            copy.backup(into)
            into.execute("PRAGMA journal_mode = WAL")
            _check_integrity(into, target_path)
        except sqlite3.Error as exc:
            raise BackupError(f"copying {path} into {target_path} failed: {exc}") from None
        finally:
            into.close()
            copy.close()
    finally:
        for leftover in (scratch, Path(f"{scratch}-journal")):
            leftover.unlink(missing_ok=True)


def _pg_restore(engine: Engine, path: Path, force: bool) -> None:
    """Check a pg_dump archive's table of contents, then restore it in one transaction."""
    pg_restore = find_pg_tool("pg_restore")
    listed = subprocess.run(  # noqa: S603 (a fixed tool, arguments as a list)
        [pg_restore, "--list", str(path)], capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        raise BackupError(f"{path} is damaged: {_tool_reason(listed.stderr)}")
    if "TABLE DATA" not in listed.stdout or " alembic_version " not in listed.stdout:
        raise BackupError(f"{path} is not a backup of the terminal's database")
    _refuse_filled(engine, force)
    engine.dispose()
    command = [
        pg_restore,
        "--clean",
        "--if-exists",
        "--no-owner",
        # All or nothing: a truncated archive rolls back and leaves the target as it was.
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
        f"--dbname={_libpq_url(engine)}",
        str(path),
    ]
    _run(command, engine, "pg_restore")


def _refuse_filled(engine: Engine, force: bool) -> None:
    """Refuse to restore over a database that already holds data, unless forced."""
    if force:
        return
    try:
        with engine.connect() as conn:
            filled = _filled_tables(conn)
    except SQLAlchemyError as exc:
        raise BackupError(f"cannot open the database: {_first_line(exc)}") from None
    if filled:
        shown = ", ".join(filled[:3])
        raise BackupError(
            f"the configured database already holds data ({shown}); restore into a new "
            "database, or give --force to replace it"
        )


def _filled_tables(conn: Connection) -> list[str]:
    """Return the terminal's tables that hold rows (bookkeeping tables aside)."""
    from terminal.models import Base

    present = set(inspect(conn).get_table_names())
    filled = []
    for name, table in Base.metadata.tables.items():
        if name in _BOOKKEEPING or name not in present:
            continue
        if conn.execute(select(text("1")).select_from(table).limit(1)).first() is not None:
            filled.append(name)
    if "audit_head" in present:
        seq = conn.execute(text("SELECT last_seq FROM audit_head WHERE id = 1")).scalar()
        if seq:
            filled.append("audit_head")
    return filled


# ---- shared helpers ------------------------------------------------------------------


def _contents(conn: Connection) -> Contents:
    """Count payouts and read the audit head of a database (through SQLAlchemy)."""
    payouts = conn.execute(text("SELECT count(*) FROM payouts")).scalar_one()
    seq = conn.execute(text("SELECT last_seq FROM audit_head WHERE id = 1")).scalar()
    return Contents(int(payouts), int(seq or 0))


def _sqlite_contents(conn: sqlite3.Connection) -> Contents:
    """Count payouts and read the audit head of a SQLite file (through sqlite3)."""
    payouts = conn.execute("SELECT count(*) FROM payouts").fetchone()[0]
    row = conn.execute("SELECT last_seq FROM audit_head WHERE id = 1").fetchone()
    return Contents(int(payouts), int(row[0]) if row else 0)


def _check_integrity(conn: sqlite3.Connection, path: Path) -> None:
    """Raise BackupError unless SQLite's integrity check of a file says ok."""
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is damaged: {exc}") from None
    if [tuple(row) for row in rows] != [("ok",)]:
        raise BackupError(f"{path} is damaged: integrity check says {rows[0][0]}")


def _sqlite_revision(conn: sqlite3.Connection, path: Path) -> str:
    """Return the schema revision a SQLite backup was made at."""
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        row = None
    if row is None:
        raise BackupError(f"{path} is not a backup of the terminal's database")
    return str(row[0])


def _check_revision(revision: str, path: Path) -> None:
    """Refuse a backup made by a newer terminal: its schema cannot be read here."""
    from alembic.script import ScriptDirectory

    from terminal.schema import alembic_config

    scripts = ScriptDirectory.from_config(alembic_config())
    try:
        known = scripts.get_revision(revision) is not None
    except Exception:  # alembic raises several kinds for an unknown revision
        known = False
    if not known:
        raise BackupError(
            f"{path} has schema {revision}, unknown to this version of the terminal "
            "(made by a newer one?)"
        )


def find_pg_tool(name: str) -> str:
    """Return the path of pg_dump or pg_restore: on PATH, else the newest installed."""
    found = shutil.which(name)
    if found:
        return found
    candidates = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")

    def version(path: str) -> tuple[int, ...]:
        part = Path(path).parent.parent.name
        return tuple(int(p) for p in part.split(".") if p.isdigit())

    if not candidates:
        raise BackupError(f"{name} was not found (install the PostgreSQL client tools)")
    return max(candidates, key=version)


def _url_schema(engine: Engine) -> str | None:
    """Return the schema a URL confines its connections to (options=-csearch_path=...)."""
    options = engine.url.query.get("options")
    if not isinstance(options, str):
        return None
    for part in options.split():
        if part.startswith("-csearch_path="):
            return part.split("=", 1)[1].split(",")[0].strip() or None
    return None


def _libpq_url(engine: Engine) -> str:
    """Return the database's URL as libpq reads it, without the password."""
    url = engine.url.set(drivername="postgresql", password=None)
    return url.render_as_string(hide_password=False)


def _run(command: list[str], engine: Engine, tool: str) -> None:
    """Run a PostgreSQL client tool, the password passed in its environment only."""
    env = dict(os.environ)
    if engine.url.password:
        env["PGPASSWORD"] = str(engine.url.password)
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)  # noqa: S603
    if result.returncode != 0:
        raise BackupError(f"{tool} failed: {_tool_reason(result.stderr)}")


def _tool_reason(stderr: str) -> str:
    """Return the first meaningful line a PostgreSQL tool wrote on failure."""
    for line in stderr.splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("pg_restore: ").removeprefix("pg_dump: ")
    return "no reason given"


def _first_line(exc: BaseException) -> str:
    """Return the first line of an error, without SQL or parameters."""
    message = str(getattr(exc, "orig", None) or exc).strip()
    return message.splitlines()[0] if message else type(exc).__name__


def _sync(path: Path) -> None:
    """Force a file's bytes to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Force a rename in a folder to the disk (where the system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


__all__ = [
    "BackupError",
    "BackupSummary",
    "Contents",
    "RestoreSummary",
    "backup",
    "find_pg_tool",
    "restore",
]
