"""Verifications, payouts and their lines, receipts, cash floats, idempotency records."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.auth import User
from terminal.models.base import Base, created_at, enum_column, intpk, vnd
from terminal.models.enums import (
    Channel,
    CollectorType,
    IdempotencyState,
    PayoutStatus,
    ReceiptFormat,
    VerificationMethod,
)
from terminal.models.places import PayoutPoint
from terminal.models.roster import Beneficiary, Entitlement, Proxy


class Verification(Base):
    """Proof that the person collecting is the beneficiary or one of their proxies."""

    __tablename__ = "verifications"

    id: Mapped[intpk]
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    collector_type: Mapped[CollectorType] = enum_column(CollectorType, nullable=False)
    proxy_id: Mapped[int | None] = mapped_column(ForeignKey("proxies.id"))
    method: Mapped[VerificationMethod] = enum_column(VerificationMethod, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]
    # What a scanned card said, shown beside the roster for the clerk to compare
    # (a keyboard-wedge scanner may garble accents: never the basis of the match).
    card_name: Mapped[str | None] = mapped_column(String(200))
    card_address: Mapped[str | None] = mapped_column(String(300))
    card_birth: Mapped[date | None]
    warnings: Mapped[str | None] = mapped_column(String(500))

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")
    proxy: Mapped[Proxy | None] = relationship(lazy="joined")


class Payout(Base):
    """Money handed over for one or more entitlements."""

    __tablename__ = "payouts"
    __table_args__ = (
        CheckConstraint("amount_vnd > 0", name="amount_positive"),
        Index("ix_payouts_point_paid_at", "point_id", "paid_at"),
        Index("ix_payouts_paid_at", "paid_at"),
        # The auditors' log sorted by amount, and narrowed to a rare status (reversed,
        # pending), reads these in order instead of sorting a million rows (migration 0007).
        Index("ix_payouts_amount_vnd_id", "amount_vnd", "id"),
        Index("ix_payouts_status_paid_at", "status", "paid_at"),
    )

    id: Mapped[intpk]
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    verification_id: Mapped[int | None] = mapped_column(ForeignKey("verifications.id"))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    channel: Mapped[Channel] = enum_column(Channel, nullable=False)
    collector_type: Mapped[CollectorType] = enum_column(CollectorType, nullable=False)
    proxy_id: Mapped[int | None] = mapped_column(ForeignKey("proxies.id"))
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    # A tablet's own id for a payout made offline, so syncing twice pays once.
    client_ref: Mapped[str | None] = mapped_column(String(64), unique=True)
    amount_vnd: Mapped[vnd]
    status: Mapped[PayoutStatus] = enum_column(
        PayoutStatus, nullable=False, default=PayoutStatus.COMPLETED
    )
    paid_at: Mapped[datetime]
    reversed_at: Mapped[datetime | None]
    reversed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reversal_reason: Mapped[str | None] = mapped_column(String(500))

    point: Mapped[PayoutPoint] = relationship(lazy="joined")
    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")
    proxy: Mapped[Proxy | None] = relationship(lazy="joined")
    lines: Mapped[list[PayoutLine]] = relationship(
        back_populates="payout", order_by="PayoutLine.id", lazy="selectin"
    )
    receipt: Mapped[Receipt | None] = relationship(back_populates="payout", lazy="joined")


class PayoutLine(Base):
    """One entitlement paid by a payout; the database allows one live line per entitlement."""

    __tablename__ = "payout_lines"
    __table_args__ = (
        CheckConstraint("amount_vnd > 0", name="amount_positive"),
        # The last guard against paying twice: whatever the application does, two
        # non-reversed lines for one entitlement cannot both commit.
        Index(
            "uq_payout_lines_entitlement_live",
            "entitlement_id",
            unique=True,
            sqlite_where=text("reversed_at IS NULL"),
            postgresql_where=text("reversed_at IS NULL"),
        ),
        # Every line of an entitlement, reversed ones too: a period's payouts (the log).
        Index("ix_payout_lines_entitlement_id", "entitlement_id"),
    )

    id: Mapped[intpk]
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"), index=True)
    entitlement_id: Mapped[int] = mapped_column(ForeignKey("entitlements.id"))
    amount_vnd: Mapped[vnd]
    reversed_at: Mapped[datetime | None]

    payout: Mapped[Payout] = relationship(back_populates="lines")
    entitlement: Mapped[Entitlement] = relationship(lazy="joined")


class ReceiptCounter(Base):
    """The last receipt number used per point and year, for numbers without gaps."""

    __tablename__ = "receipt_counters"

    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(default=0)


class Receipt(Base):
    """The receipt of a payout, numbered per point and year (e.g. HTBD-2021-000123)."""

    __tablename__ = "receipts"
    __table_args__ = (UniqueConstraint("point_id", "year", "seq"),)

    id: Mapped[intpk]
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"), unique=True)
    receipt_no: Mapped[str] = mapped_column(String(32), unique=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    year: Mapped[int]
    seq: Mapped[int]
    format: Mapped[ReceiptFormat] = enum_column(ReceiptFormat, nullable=False)
    file_path: Mapped[str | None] = mapped_column(String(500))
    file_sha256: Mapped[str | None] = mapped_column(String(64))
    reprint_count: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[created_at]

    payout: Mapped[Payout] = relationship(back_populates="receipt")


class CashFloat(Base):
    """The cash a point was advanced for one day; cash payouts draw it down."""

    __tablename__ = "cash_floats"
    __table_args__ = (
        UniqueConstraint("point_id", "business_date"),
        CheckConstraint("advance_vnd >= 0", name="advance_not_negative"),
    )

    id: Mapped[intpk]
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    business_date: Mapped[date]
    advance_vnd: Mapped[vnd]
    recorded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]
    # Daily settlement: the cash counted back at the end of the day.
    counted_vnd: Mapped[int | None] = mapped_column(BigInteger())
    settled_at: Mapped[datetime | None]
    settled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class IdempotencyRecord(Base):
    """A client's Idempotency-Key and the response it got, per user, kept ≥ 24 hours."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[intpk]
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[IdempotencyState] = enum_column(IdempotencyState, nullable=False)
    status_code: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    completed_at: Mapped[datetime | None]
