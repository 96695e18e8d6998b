"""beneficiaries: search keys compared byte by byte, name indexes ordered by (key, code)

A name search reads each name index in order instead of sorting every match, so the
indexes carry the result order (key, code) and the commune for the scope check; on
PostgreSQL the keys and the code use the "C" collation, so that a prefix is a plain
index range (no text_pattern_ops needed) and the order is the same as SQLite's.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

KEYS = (("code", 32), ("name_key", 200), ("given_key", 200))


def _collate(collation: str | None) -> None:
    """Set the collation of the search keys on PostgreSQL (SQLite compares bytes already)."""
    if op.get_bind().dialect.name != "postgresql":
        return
    for column, length in KEYS:
        op.alter_column(
            "beneficiaries",
            column,
            type_=sa.String(length, collation=collation),
            existing_type=sa.String(length),
            existing_nullable=False,
        )


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_beneficiaries_name_key", postgresql_ops={"name_key": "text_pattern_ops"}
        )
        batch_op.drop_index(
            "ix_beneficiaries_given_key", postgresql_ops={"given_key": "text_pattern_ops"}
        )
    _collate("C")
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_beneficiaries_name_key", ["name_key", "code", "commune_id"], unique=False
        )
        batch_op.create_index(
            "ix_beneficiaries_given_key", ["given_key", "code", "commune_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.drop_index("ix_beneficiaries_given_key")
        batch_op.drop_index("ix_beneficiaries_name_key")
    _collate(None)
    with op.batch_alter_table("beneficiaries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_beneficiaries_given_key",
            ["given_key"],
            unique=False,
            postgresql_ops={"given_key": "text_pattern_ops"},
        )
        batch_op.create_index(
            "ix_beneficiaries_name_key",
            ["name_key"],
            unique=False,
            postgresql_ops={"name_key": "text_pattern_ops"},
        )
