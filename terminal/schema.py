"""Create or migrate the schema with Alembic, the same on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from terminal.db import WRITE_OPTION, refresh_statistics
from terminal.models import AuditHead

MIGRATIONS = Path(__file__).parent / "migrations"
GENESIS_HASH = "0" * 64


def alembic_config() -> Config:
    """Return an Alembic configuration pointing at the packaged migrations."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database to the latest schema; running it twice changes nothing.

    This is the start-up step (init-db, serve), so it also gives the query planner
    statistics if a filled database has none (say, after a migration added an index).
    """
    cfg = alembic_config()
    # Two processes migrating at once queue on a lock instead of colliding:
    # BEGIN IMMEDIATE on SQLite, an advisory lock on PostgreSQL.
    with engine.connect() as conn, conn.execution_options(**{WRITE_OPTION: True}).begin():
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(727001)"))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        _ensure_audit_head(conn)
    refresh_statistics(engine, if_missing=True)


def _ensure_audit_head(conn: Connection) -> None:
    """Create the audit chain's head row once."""
    table = AuditHead.__table__
    exists = conn.execute(table.select().where(table.c.id == 1)).first()
    if exists is None:
        conn.execute(table.insert().values(id=1, last_seq=0, last_hash=GENESIS_HASH))


def current_revision(engine: Engine) -> str | None:
    """Return the database's schema revision, or None if it has none."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str:
    """Return the newest revision the package ships."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None
    return head
