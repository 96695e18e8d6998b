"""The health endpoint for monitoring: is this terminal able to pay right now?

Public (a monitor has no account) and cheap: one ``SELECT 1``, the schema revision and
the durability settings (RELIABILITY S06) on one pooled connection. It says nothing a
stranger could use: no personal data, no settings, no error text beyond a short reason.
It carries no rate limit, so a monitor polling every few seconds is never refused.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from importlib import metadata
from typing import Any

from alembic.runtime.migration import MigrationContext
from flask import Blueprint, jsonify
from sqlalchemy import Connection, text
from sqlalchemy.exc import SQLAlchemyError

from terminal.authz import public
from terminal.db import get_engine

bp = Blueprint("health", __name__)


@cache
def _version() -> str:
    """Return the installed package's version."""
    try:
        return metadata.version("payout-terminal")
    except metadata.PackageNotFoundError:
        return "unknown"


@cache
def _revisions() -> tuple[str, frozenset[str]]:
    """Return the schema revision this code expects and every one it knows (read once)."""
    from alembic.script import ScriptDirectory

    from terminal.schema import alembic_config, head_revision

    scripts = ScriptDirectory.from_config(alembic_config())
    return head_revision(), frozenset(rev.revision for rev in scripts.walk_revisions())


def _durability(conn: Connection) -> str:
    """Return "ok", or why a committed payout could be lost (the start-up check, again)."""
    if conn.dialect.name == "sqlite":
        if int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0) < 2:
            return "sqlite synchronous below FULL"
        if str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower() != "wal":
            return "sqlite journal_mode not wal"
        return "ok"
    for setting in ("fsync", "synchronous_commit"):
        if str(conn.exec_driver_sql(f"SHOW {setting}").scalar()).lower() == "off":
            return f"postgresql {setting} off"
    return "ok"


def _unavailable(**fields: str) -> Any:
    """Answer 503 with a short reason."""
    response = jsonify(status="unavailable", **fields)
    response.status_code = 503
    return response


@bp.get("/healthz")
@public
def healthz() -> Any:
    """Answer 200 when the database answers, is at this code's schema and keeps commits."""
    try:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
            revision = MigrationContext.configure(conn).get_current_revision()
            durability = _durability(conn)
    except SQLAlchemyError:
        return _unavailable(database="unreachable")
    head, known = _revisions()
    if revision != head:
        if revision is None:
            return _unavailable(database="schema missing")
        return _unavailable(database="schema behind" if revision in known else "schema newer")
    if durability != "ok":
        return _unavailable(database="ok", durability=durability)
    return jsonify(
        status="ok",
        database="ok",
        durability="ok",
        version=_version(),
        schema=revision,
        time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    )
