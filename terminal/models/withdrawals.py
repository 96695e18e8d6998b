"""Withdrawals from a beneficiary's account through a provider, and settlement imports."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.base import Base, created_at, enum_column, intpk, vnd
from terminal.models.enums import WithdrawalStatus
from terminal.models.places import PayoutPoint


class Withdrawal(Base):
    """One withdrawal at an ``http`` point, from the OTP request to its end.

    ``client_ref`` is the terminal's own reference, sent with every call, so the
    provider does the work once however often it is asked. While ``otp_sent`` or
    ``pending`` it holds its entitlements (``Entitlement.held_by_withdrawal_id``).
    """

    __tablename__ = "withdrawals"
    __table_args__ = (Index("ix_withdrawals_status_point", "status", "point_id"),)

    id: Mapped[intpk]
    client_ref: Mapped[str] = mapped_column(String(64), unique=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    verification_id: Mapped[int] = mapped_column(ForeignKey("verifications.id"))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    # JSON list of the entitlement ids, in the order asked.
    entitlement_ids: Mapped[str] = mapped_column(String(1000))
    amount_vnd: Mapped[vnd]
    # The provider it was started with: reconciled there even if the point moves on.
    provider_url: Mapped[str] = mapped_column(String(300))
    status: Mapped[WithdrawalStatus] = enum_column(
        WithdrawalStatus, nullable=False, default=WithdrawalStatus.OTP_SENT
    )
    otp_sends: Mapped[int] = mapped_column(default=1)
    last_sent_at: Mapped[datetime | None]
    otp_expires_at: Mapped[datetime | None]
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    provider_code: Mapped[str | None] = mapped_column(String(64))
    provider_message: Mapped[str | None] = mapped_column(String(300))
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    failure_id: Mapped[int | None] = mapped_column(ForeignKey("failures.id"))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    point: Mapped[PayoutPoint] = relationship(lazy="joined")

    @property
    def entitlement_list(self) -> list[int]:
        """Return the entitlement ids the withdrawal pays."""
        return [int(i) for i in json.loads(self.entitlement_ids)]

    @property
    def is_open(self) -> bool:
        """Whether it still holds its entitlements."""
        return self.status in (WithdrawalStatus.OTP_SENT, WithdrawalStatus.PENDING)


class SettlementImport(Base):
    """One provider settlement file matched against the terminal's records."""

    __tablename__ = "settlement_imports"

    id: Mapped[intpk]
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    rows: Mapped[int] = mapped_column(default=0)
    matched: Mapped[int] = mapped_column(default=0)
    missing_at_terminal: Mapped[int] = mapped_column(default=0)
    missing_at_provider: Mapped[int] = mapped_column(default=0)
    amount_differences: Mapped[int] = mapped_column(default=0)
    report: Mapped[str] = mapped_column(Text, default="")  # JSON: each difference
    created_at: Mapped[created_at]

    point: Mapped[PayoutPoint] = relationship(lazy="joined")
