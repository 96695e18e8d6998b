"""What supervisors and auditors record about payouts: day closings and payment samples."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.base import Base, created_at, enum_column, intpk
from terminal.models.enums import SampleAnswer
from terminal.models.places import PayoutPoint


class DayClosing(Base):
    """A point's day closed by its supervisor (bảng kê chi trả), with the figures it closed on.

    The figures are a snapshot: after closing, the day changes only through
    reversals and new payouts, which the settlement shows as changes since closing.
    """

    __tablename__ = "day_closings"
    __table_args__ = (UniqueConstraint("point_id", "business_date"),)

    id: Mapped[intpk]
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"))
    business_date: Mapped[date]
    closed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[created_at]
    payouts: Mapped[int] = mapped_column(Integer)
    cash_paid_vnd: Mapped[int] = mapped_column(BigInteger())
    account_paid_vnd: Mapped[int] = mapped_column(BigInteger())
    # None when no advance was recorded for the day.
    advance_vnd: Mapped[int | None] = mapped_column(BigInteger())
    # The cash handed back at the end of the day, as counted by the supervisor.
    returned_vnd: Mapped[int] = mapped_column(BigInteger())
    note: Mapped[str | None] = mapped_column(String(500))

    point: Mapped[PayoutPoint] = relationship(lazy="joined")


class PaymentSample(Base):
    """A random sample of a period's payouts an auditor checks with the people paid."""

    __tablename__ = "payment_samples"

    id: Mapped[intpk]
    period: Mapped[str] = mapped_column(String(7))
    # What was sampled: one point's payouts or one commune's.
    point_id: Mapped[int | None] = mapped_column(ForeignKey("payout_points.id"))
    commune_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    requested_size: Mapped[int | None] = mapped_column(Integer)
    requested_percent: Mapped[int | None] = mapped_column(Integer)
    population: Mapped[int] = mapped_column(Integer)
    seed: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]

    items: Mapped[list[PaymentSampleItem]] = relationship(
        back_populates="sample", order_by="PaymentSampleItem.id"
    )


class PaymentSampleItem(Base):
    """One sampled payout and what the person said they received."""

    __tablename__ = "payment_sample_items"
    __table_args__ = (
        UniqueConstraint("sample_id", "payout_id"),
        Index("ix_payment_sample_items_payout_id", "payout_id"),
    )

    id: Mapped[intpk]
    sample_id: Mapped[int] = mapped_column(ForeignKey("payment_samples.id"))
    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"))
    answer: Mapped[SampleAnswer | None] = enum_column(SampleAnswer, nullable=True)
    # The amount the person says they received (other_amount; 0 for not_received).
    reported_vnd: Mapped[int | None] = mapped_column(BigInteger())
    note: Mapped[str | None] = mapped_column(String(500))
    answered_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    answered_at: Mapped[datetime | None]
    # The follow-up case an answer other than "in full" opened.
    failure_id: Mapped[int | None] = mapped_column(ForeignKey("failures.id"))

    sample: Mapped[PaymentSample] = relationship(back_populates="items")
