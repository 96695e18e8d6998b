"""failures: attempts and cases, and a thread of notes per case

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("failures", schema=None) as batch_op:
        # Every failure recorded before this revision was a case.
        batch_op.add_column(
            sa.Column("is_case", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.create_table(
        "failure_notes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "failure_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["failure_id"], ["failures.id"], name=op.f("fk_failure_notes_failure_id_failures")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_failure_notes_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_failure_notes")),
    )
    with op.batch_alter_table("failure_notes", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_failure_notes_failure_id"), ["failure_id"], unique=False
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("failure_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_failure_notes_failure_id"))
    op.drop_table("failure_notes")
    with op.batch_alter_table("failures", schema=None) as batch_op:
        batch_op.drop_column("is_case")
