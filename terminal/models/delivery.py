"""Home delivery: tablets, routes that reserve entitlements, visits, synced items."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.auth import User
from terminal.models.base import Base, created_at, enum_column, intpk
from terminal.models.enums import SyncStatus, VerificationMethod, VisitOutcome
from terminal.models.places import PayoutPoint
from terminal.models.roster import Beneficiary, Period


class Device(Base):
    """A tablet registered for one delivery user; its bearer token is stored hashed.

    Revoking it (a lost tablet) stops the token at once; what the tablet queued but
    never synced stays on the tablet until a newly paired token sends it.
    """

    __tablename__ = "devices"

    id: Mapped[intpk]
    name: Mapped[str] = mapped_column(String(80))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    last_seen_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    point: Mapped[PayoutPoint] = relationship(lazy="joined")


class DeliveryRoute(Base):
    """The people of a period a supervisor gives one delivery user to pay at home.

    Their due entitlements are reserved (``Entitlement.reserved_route_id``): nobody
    else pays them until the supervisor releases a person. The salt makes the ID
    hashes the tablet carries useless outside this route.
    """

    __tablename__ = "delivery_routes"
    __table_args__ = (Index("ix_delivery_routes_user_created", "user_id", "created_at"),)

    id: Mapped[intpk]
    point_id: Mapped[int] = mapped_column(ForeignKey("payout_points.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    period_id: Mapped[int] = mapped_column(ForeignKey("periods.id"))
    salt: Mapped[str] = mapped_column(String(64))
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]

    user: Mapped[User] = relationship(foreign_keys=[user_id], lazy="joined")
    period: Mapped[Period] = relationship(lazy="joined")
    point: Mapped[PayoutPoint] = relationship(lazy="joined")
    stops: Mapped[list[RouteStop]] = relationship(
        back_populates="route", order_by="RouteStop.id", lazy="selectin"
    )


class RouteStop(Base):
    """One person on a route, until the supervisor releases them."""

    __tablename__ = "route_stops"
    __table_args__ = (UniqueConstraint("route_id", "beneficiary_id"),)

    id: Mapped[intpk]
    route_id: Mapped[int] = mapped_column(ForeignKey("delivery_routes.id"))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"), index=True)
    added_at: Mapped[created_at]
    released_at: Mapped[datetime | None]
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    route: Mapped[DeliveryRoute] = relationship(back_populates="stops")
    beneficiary: Mapped[Beneficiary] = relationship(lazy="joined")


class SyncedItem(Base):
    """A tablet's payout or visit as the server first answered it, by its client_ref.

    Sending the same client_ref again answers ``duplicate`` with this first answer;
    the unique index makes two syncs racing with one item meet here.
    """

    __tablename__ = "synced_items"

    id: Mapped[intpk]
    client_ref: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # "payout" or "visit"
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    status: Mapped[SyncStatus] = enum_column(SyncStatus, nullable=False)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    failure_id: Mapped[int | None] = mapped_column(ForeignKey("failures.id"))
    result: Mapped[str] = mapped_column(Text)  # the first answer, as JSON
    received_at: Mapped[created_at]


class HomePayout(Base):
    """What a payout made at home adds: the tablet, the signature, the place, the times."""

    __tablename__ = "home_payouts"

    payout_id: Mapped[int] = mapped_column(ForeignKey("payouts.id"), primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    route_id: Mapped[int | None] = mapped_column(ForeignKey("delivery_routes.id"))
    verified_by: Mapped[VerificationMethod] = enum_column(VerificationMethod, nullable=False)
    signature_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    signature_sha256: Mapped[str | None] = mapped_column(String(64))
    # A position, not money: floats are right here.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    received_at: Mapped[created_at]


class Visit(Base):
    """One call at a person's home and what came of it."""

    __tablename__ = "visits"
    __table_args__ = (Index("ix_visits_beneficiary_at", "beneficiary_id", "at"),)

    id: Mapped[intpk]
    client_ref: Mapped[str] = mapped_column(String(64), unique=True)
    route_id: Mapped[int | None] = mapped_column(ForeignKey("delivery_routes.id"))
    beneficiary_id: Mapped[int] = mapped_column(ForeignKey("beneficiaries.id"))
    period_id: Mapped[int | None] = mapped_column(ForeignKey("periods.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id"))
    outcome: Mapped[VisitOutcome] = enum_column(VisitOutcome, nullable=False)
    at: Mapped[datetime]
    note: Mapped[str] = mapped_column(String(500), default="")
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    payout_id: Mapped[int | None] = mapped_column(ForeignKey("payouts.id"))
    failure_id: Mapped[int | None] = mapped_column(ForeignKey("failures.id"))
    received_at: Mapped[created_at]

    user: Mapped[User] = relationship(lazy="joined")


__all__ = ["DeliveryRoute", "Device", "HomePayout", "RouteStop", "SyncedItem", "Visit"]
