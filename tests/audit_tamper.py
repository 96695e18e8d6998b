"""Tampering with the audit trail as an intruder with the database's keys would.

The database refuses UPDATE and DELETE of events (triggers, migration 0007); an
intruder who owns the database can switch them off. These helpers do exactly
that inside one transaction, so the tests can prove the chain and the signed
checkpoints still catch what the triggers no longer stop. The guards are back
when the transaction ends (SQLite: dropped and made again; PostgreSQL: the
transaction runs as a replica, which skips user triggers).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection

_GUARDS = importlib.import_module(
    "terminal.migrations.versions.0007_day_closings_samples_audit_guards"
)


@contextmanager
def guards_off(conn: Connection) -> Iterator[Connection]:
    """Run the block's statements on ``conn`` with the audit guards switched off."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        yield conn
        for statement in _GUARDS.SQLITE_GUARDS:
            conn.exec_driver_sql(statement)
    else:
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        yield conn
        conn.exec_driver_sql("SET LOCAL session_replication_role = origin")
