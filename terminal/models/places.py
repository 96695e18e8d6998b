"""Areas (province, district, commune) and the payout points that serve communes."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, String, Table, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.base import Base, BigID, created_at, enum_column, intpk
from terminal.models.enums import AreaLevel, PointKind, ProviderAdapterKind, ReceiptFormat

point_communes = Table(
    "point_communes",
    Base.metadata,
    Column("point_id", BigID, ForeignKey("payout_points.id", ondelete="CASCADE"), primary_key=True),
    Column("commune_id", BigID, ForeignKey("areas.id"), primary_key=True, index=True),
)


class Area(Base):
    """A province, district or commune; villages are kept as text on beneficiaries."""

    __tablename__ = "areas"
    __table_args__ = (UniqueConstraint("parent_id", "level", "name_key"),)

    id: Mapped[intpk]
    level: Mapped[AreaLevel] = enum_column(AreaLevel, nullable=False)
    name: Mapped[str] = mapped_column(String(120))
    # Folded name (no diacritics, lower case): "Thủy Dương" and "Thuỷ Dương" are one commune.
    name_key: Mapped[str] = mapped_column(String(120), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"), index=True)
    created_at: Mapped[created_at]

    parent: Mapped[Area | None] = relationship(remote_side="Area.id", lazy="joined")

    @property
    def district_name(self) -> str:
        """Name of the district this commune lies in, or ''."""
        return self.parent.name if self.parent is not None else ""


class PayoutPoint(Base):
    """A post office, agent point or delivery team; pays in the communes it serves."""

    __tablename__ = "payout_points"

    id: Mapped[intpk]
    code: Mapped[str] = mapped_column(String(16), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[PointKind] = enum_column(PointKind, nullable=False)
    district_id: Mapped[int] = mapped_column(ForeignKey("areas.id"), index=True)
    receipt_format: Mapped[ReceiptFormat] = enum_column(
        ReceiptFormat, nullable=False, default=ReceiptFormat.ROLL_80MM
    )
    active: Mapped[bool] = mapped_column(default=True)
    # How account payouts reach the provider (docs/PROVIDER-PROTOCOL.md).
    adapter: Mapped[ProviderAdapterKind] = enum_column(
        ProviderAdapterKind,
        nullable=False,
        default=ProviderAdapterKind.MANUAL,
        server_default=ProviderAdapterKind.MANUAL.value,
    )
    provider_url: Mapped[str | None] = mapped_column(String(300))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]

    district: Mapped[Area] = relationship(lazy="joined")
    communes: Mapped[list[Area]] = relationship(
        secondary=point_communes, order_by="Area.name_key", lazy="selectin"
    )
