"""verification: what the scanned card said

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("card_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("card_address", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("card_birth", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("warnings", sa.String(length=500), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("verifications", schema=None) as batch_op:
        batch_op.drop_column("warnings")
        batch_op.drop_column("card_birth")
        batch_op.drop_column("card_address")
        batch_op.drop_column("card_name")
