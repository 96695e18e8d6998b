"""Beneficiaries, their proxies, payment periods and what each is owed per period."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.base import Base, BigID, created_at, enum_column, intpk, search_key, vnd
from terminal.models.enums import (
    BeneficiaryStatus,
    Category,
    EntitlementStatus,
    Gender,
    PaymentMethod,
    PeriodStatus,
    Provider,
)
from terminal.models.places import Area

# Children (orphans, or anyone under this age) are paid only through a guardian.
CHILD_AGE = 16


class Beneficiary(Base):
    """A person on the ministry's list who is owed a monthly allowance."""

    __tablename__ = "beneficiaries"
    __table_args__ = (
        # A name search reads these in order: a prefix is a range of the key, the
        # result is ordered by (key, code), and the commune is checked from the index
        # before any row is read, so a point's first page costs a few index entries
        # whatever the size of the roster (PERFORMANCE.md).
        Index("ix_beneficiaries_name_key", "name_key", "code", "commune_id"),
        Index("ix_beneficiaries_given_key", "given_key", "code", "commune_id"),
        Index("ix_beneficiaries_commune_status", "commune_id", "status"),
        CheckConstraint("birth_year BETWEEN 1880 AND 2200", name="birth_year_range"),
        CheckConstraint("monthly_vnd > 0", name="monthly_positive"),
    )

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(search_key(32), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    # Folded name ("nguyen thi hoa") and the same starting at the given name
    # ("hoa nguyen thi"), so both "Nguyễn Thị Hoa" and "hoa" find her by prefix.
    name_key: Mapped[str] = mapped_column(search_key(200))
    given_key: Mapped[str] = mapped_column(search_key(200))
    date_of_birth: Mapped[date | None]  # None when only the year is known
    birth_year: Mapped[int]
    gender: Mapped[Gender] = enum_column(Gender, nullable=False)
    category: Mapped[Category] = enum_column(Category, nullable=False)
    id_number: Mapped[str | None] = mapped_column(String(12), index=True)
    phone: Mapped[str | None] = mapped_column(String(10), index=True)
    commune_id: Mapped[int] = mapped_column(ForeignKey("areas.id"))
    village: Mapped[str] = mapped_column(String(120), default="")
    address: Mapped[str] = mapped_column(String(300), default="")
    payment_method: Mapped[PaymentMethod] = enum_column(PaymentMethod, nullable=False)
    provider: Mapped[Provider] = enum_column(Provider, nullable=False)
    account_no: Mapped[str | None] = mapped_column(String(32))
    monthly_vnd: Mapped[vnd]
    status: Mapped[BeneficiaryStatus] = enum_column(
        BeneficiaryStatus, nullable=False, default=BeneficiaryStatus.ACTIVE
    )
    # Problems found in the ministry's data (e.g. a CCCD contradicting the gender),
    # kept for follow-up; the row is still imported.
    data_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]

    commune: Mapped[Area] = relationship(lazy="joined")
    proxies: Mapped[list[Proxy]] = relationship(
        back_populates="beneficiary", order_by="Proxy.id", lazy="selectin"
    )

    def is_child_on(self, day: date) -> bool:
        """Tell whether this person is a child on a day: paid only through a guardian."""
        return self.category is Category.ORPHAN or day.year - self.birth_year < CHILD_AGE


class Proxy(Base):
    """A person authorised to collect for one beneficiary (or their guardian)."""

    __tablename__ = "proxies"

    id: Mapped[intpk]
    beneficiary_id: Mapped[int] = mapped_column(
        ForeignKey("beneficiaries.id", ondelete="CASCADE"), index=True
    )
    full_name: Mapped[str] = mapped_column(String(200))
    id_number: Mapped[str] = mapped_column(String(12), index=True)
    relationship_label: Mapped[str] = mapped_column("relationship", String(60))
    is_guardian: Mapped[bool] = mapped_column(default=False)
    valid_from: Mapped[date]
    valid_until: Mapped[date | None]
    revoked_at: Mapped[datetime | None]
    revoked_reason: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[created_at]

    beneficiary: Mapped[Beneficiary] = relationship(back_populates="proxies")

    def status_on(self, day: date) -> str:
        """Return 'active', 'revoked', 'expired' or 'not_yet_valid' on the given day."""
        return authorisation_status(
            day,
            valid_from=self.valid_from,
            valid_until=self.valid_until,
            revoked=self.revoked_at is not None,
        )


def authorisation_status(
    day: date, *, valid_from: date, valid_until: date | None, revoked: bool = False
) -> str:
    """Return where a proxy's authorisation stands on a day: 'active' means it may collect."""
    if revoked:
        return "revoked"
    if day < valid_from:
        return "not_yet_valid"
    if valid_until is not None and day > valid_until:
        return "expired"
    return "active"


class Period(Base):
    """A payment month such as 2021-10."""

    __tablename__ = "periods"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(7), unique=True)  # YYYY-MM
    status: Mapped[PeriodStatus] = enum_column(
        PeriodStatus, nullable=False, default=PeriodStatus.OPEN
    )
    created_at: Mapped[created_at]
    closed_at: Mapped[datetime | None]
    closed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    @property
    def label(self) -> str:
        """Return the period as people write it: 10/2021."""
        year, month = self.code.split("-")
        return f"{month}/{year}"


class Entitlement(Base):
    """What one beneficiary is owed for one period: the monthly amount plus arrears."""

    __tablename__ = "entitlements"
    __table_args__ = (
        UniqueConstraint("beneficiary_id", "period_id"),
        CheckConstraint("amount_vnd > 0", name="amount_positive"),
        CheckConstraint("monthly_vnd >= 0 AND arrears_vnd >= 0", name="parts_not_negative"),
        CheckConstraint("amount_vnd = monthly_vnd + arrears_vnd", name="amount_is_sum"),
        Index("ix_entitlements_beneficiary_status", "beneficiary_id", "status"),
        Index("ix_entitlements_period_status", "period_id", "status"),
    )

    id: Mapped[intpk]
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"))
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    monthly_vnd: Mapped[vnd]
    arrears_vnd: Mapped[vnd] = mapped_column(default=0)
    amount_vnd: Mapped[vnd]
    status: Mapped[EntitlementStatus] = enum_column(
        EntitlementStatus, nullable=False, default=EntitlementStatus.DUE
    )
    # The open withdrawal (OTP sent, or outcome unknown) that holds it: nothing
    # else may pay it until that withdrawal completes or is released.
    held_by_withdrawal_id: Mapped[int | None] = mapped_column(BigID)
    # The home-delivery route that reserves it: only that route's tablet pays it
    # until the supervisor releases the person.
    reserved_route_id: Mapped[int | None] = mapped_column(BigID)
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]

    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")
    period: Mapped[Period] = relationship(lazy="joined")


class RosterImport(Base):
    """One committed import of the ministry's list, with its report."""

    __tablename__ = "roster_imports"

    id: Mapped[intpk]
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    sha256: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(64))
    added: Mapped[int] = mapped_column(default=0)
    updated: Mapped[int] = mapped_column(default=0)
    unchanged: Mapped[int] = mapped_column(default=0)
    stopped: Mapped[int] = mapped_column(default=0)
    missing: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    report: Mapped[str] = mapped_column(Text, default="")  # JSON: rejections, flags, changes
    created_at: Mapped[created_at]

    period: Mapped[Period] = relationship(lazy="joined")
