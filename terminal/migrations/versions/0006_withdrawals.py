"""withdrawals through providers, settlement imports

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "settlement_imports",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("point_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("matched", sa.Integer(), nullable=False),
        sa.Column("missing_at_terminal", sa.Integer(), nullable=False),
        sa.Column("missing_at_provider", sa.Integer(), nullable=False),
        sa.Column("amount_differences", sa.Integer(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["point_id"],
            ["payout_points.id"],
            name=op.f("fk_settlement_imports_point_id_payout_points"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_settlement_imports")),
    )
    with op.batch_alter_table("settlement_imports", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_settlement_imports_point_id"), ["point_id"], unique=False
        )

    op.create_table(
        "withdrawals",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("client_ref", sa.String(length=64), nullable=False),
        sa.Column("point_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "verification_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column(
            "beneficiary_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("entitlement_ids", sa.String(length=1000), nullable=False),
        sa.Column("amount_vnd", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "otp_sent",
                "pending",
                "completed",
                "failed",
                "released",
                name="withdrawalstatus",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("otp_sends", sa.Integer(), nullable=False),
        sa.Column("last_sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("otp_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_ref", sa.String(length=64), nullable=True),
        sa.Column("provider_code", sa.String(length=64), nullable=True),
        sa.Column("provider_message", sa.String(length=300), nullable=True),
        sa.Column("payout_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column(
            "failure_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("provider_url", sa.String(length=300), nullable=False),
        sa.ForeignKeyConstraint(
            ["beneficiary_id"],
            ["beneficiaries.id"],
            name=op.f("fk_withdrawals_beneficiary_id_beneficiaries"),
        ),
        sa.ForeignKeyConstraint(
            ["failure_id"], ["failures.id"], name=op.f("fk_withdrawals_failure_id_failures")
        ),
        sa.ForeignKeyConstraint(
            ["payout_id"], ["payouts.id"], name=op.f("fk_withdrawals_payout_id_payouts")
        ),
        sa.ForeignKeyConstraint(
            ["point_id"], ["payout_points.id"], name=op.f("fk_withdrawals_point_id_payout_points")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_withdrawals_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["verification_id"],
            ["verifications.id"],
            name=op.f("fk_withdrawals_verification_id_verifications"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_withdrawals")),
        sa.UniqueConstraint("client_ref", name=op.f("uq_withdrawals_client_ref")),
    )
    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_withdrawals_beneficiary_id"), ["beneficiary_id"], unique=False
        )
        batch_op.create_index("ix_withdrawals_status_point", ["status", "point_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_withdrawals_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "held_by_withdrawal_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )

    with op.batch_alter_table("payout_points", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "adapter",
                sa.Enum(
                    "manual",
                    "http",
                    name="provideradapterkind",
                    native_enum=False,
                    create_constraint=True,
                    length=32,
                ),
                server_default="manual",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("provider_url", sa.String(length=300), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("payout_points", schema=None) as batch_op:
        batch_op.drop_column("provider_url")
        batch_op.drop_column("adapter")

    with op.batch_alter_table("entitlements", schema=None) as batch_op:
        batch_op.drop_column("held_by_withdrawal_id")

    with op.batch_alter_table("withdrawals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_withdrawals_user_id"))
        batch_op.drop_index("ix_withdrawals_status_point")
        batch_op.drop_index(batch_op.f("ix_withdrawals_beneficiary_id"))

    op.drop_table("withdrawals")
    with op.batch_alter_table("settlement_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_settlement_imports_point_id"))

    op.drop_table("settlement_imports")
