"""login_attempts: an index by address and time, for the per-address sign-in limit

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    # Every sign-in counts its address's recent failures (RELIABILITY S16): without
    # this index that is a scan of every attempt ever made.
    op.create_index("ix_login_attempts_ip_at", "login_attempts", ["ip", "at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_attempts_ip_at", table_name="login_attempts")
