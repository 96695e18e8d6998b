"""failures: what the system saw as a code with parameters

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("failures", schema=None) as batch_op:
        batch_op.add_column(sa.Column("detail_code", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("detail_params", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("failures", schema=None) as batch_op:
        batch_op.drop_column("detail_params")
        batch_op.drop_column("detail_code")
