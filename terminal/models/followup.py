"""Failed attempts, each a follow-up case tracked until it is paid or closed."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import ForeignKey, Index, String, Text, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.auth import User
from terminal.models.base import Base, created_at, enum_column, intpk
from terminal.models.enums import Channel, FailureReason, FailureStatus
from terminal.models.places import PayoutPoint
from terminal.models.roster import Beneficiary


class Failure(Base):
    """A failed attempt with its reason, and the follow-up case that tracks it."""

    __tablename__ = "failures"
    __table_args__ = (
        Index("ix_failures_status_created", "status", "created_at"),
        Index("ix_failures_entitlement_status", "entitlement_id", "status"),
    )

    id: Mapped[intpk]
    beneficiary_id: Mapped[int | None] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    entitlement_id: Mapped[int | None] = mapped_column(ForeignKey("entitlements.id"))
    reason: Mapped[FailureReason] = enum_column(FailureReason, nullable=False)
    # What a person typed; what the system saw is a code with parameters, shown
    # in each reader's language (terminal/messages.py).
    detail: Mapped[str] = mapped_column(String(1000), default="")
    detail_code: Mapped[str | None] = mapped_column(String(64))
    detail_params: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[Channel | None] = enum_column(Channel)
    provider_ref: Mapped[str | None] = mapped_column(String(64))
    point_id: Mapped[int | None] = mapped_column(ForeignKey("payout_points.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    # Follow-up: failed agent transactions are settled or reversed within T+5.
    status: Mapped[FailureStatus] = enum_column(
        FailureStatus, nullable=False, default=FailureStatus.OPEN
    )
    due_by: Mapped[date]
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    # A case is work for the follow-up queue; an attempt is only on record (a single
    # wrong card at the counter) until it repeats or someone escalates it.
    is_case: Mapped[bool] = mapped_column(default=True, server_default=true())

    beneficiary: Mapped[Beneficiary | None] = relationship(lazy="joined")
    point: Mapped[PayoutPoint | None] = relationship(lazy="joined")
    user: Mapped[User | None] = relationship(foreign_keys=[user_id], lazy="joined")
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id], lazy="joined")
    notes: Mapped[list[FailureNote]] = relationship(
        order_by="FailureNote.id", lazy="selectin", back_populates="failure"
    )


class FailureNote(Base):
    """One note of a case's thread: who wrote what, when."""

    __tablename__ = "failure_notes"

    id: Mapped[intpk]
    failure_id: Mapped[int] = mapped_column(ForeignKey("failures.id"), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[created_at]

    failure: Mapped[Failure] = relationship(back_populates="notes")
    user: Mapped[User | None] = relationship(lazy="joined")
