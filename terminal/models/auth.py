"""Users, their login sessions and API tokens, and every login attempt."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from terminal.models.base import Base, created_at, enum_column, intpk
from terminal.models.enums import Role
from terminal.models.places import PayoutPoint


class User(Base):
    """A person who signs in; staff roles belong to one payout point."""

    __tablename__ = "users"

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = enum_column(Role, nullable=False)
    payout_point_id: Mapped[int | None] = mapped_column(ForeignKey("payout_points.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[created_at]
    updated_at: Mapped[datetime | None]
    last_login_at: Mapped[datetime | None]

    payout_point: Mapped[PayoutPoint | None] = relationship(lazy="joined")

    # Flask-Login's protocol.
    @property
    def is_authenticated(self) -> bool:
        """Tell Flask-Login this is a signed-in user."""
        return True

    @property
    def is_active(self) -> bool:
        """Tell Flask-Login whether the account may be used."""
        return self.active

    @property
    def is_anonymous(self) -> bool:
        """Tell Flask-Login this is not the anonymous user."""
        return False

    def get_id(self) -> str:
        """Return the id Flask-Login keeps in the session."""
        return str(self.id)


class LoginSession(Base):
    """A server-side record of one browser login, so logout and disabling act at once."""

    __tablename__ = "login_sessions"

    id: Mapped[intpk]
    # SHA-256 of the random session id the browser holds; the id itself is never stored.
    sid_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[created_at]
    last_seen_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))


class ApiToken(Base):
    """A bearer token for the JSON API, stored as its SHA-256 hash."""

    __tablename__ = "api_tokens"

    id: Mapped[intpk]
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[created_at]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class LoginAttempt(Base):
    """One sign-in attempt, by page or API; lockout is counted from these rows."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_username_at", "username", "at"),
        # The per-address sign-in limit counts an address's recent failures.
        Index("ix_login_attempts_ip_at", "ip", "at"),
    )

    id: Mapped[intpk]
    username: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    # "ok", "bad" (wrong name or password) or "locked" (refused unchecked during lockout).
    outcome: Mapped[str] = mapped_column(String(8))
    channel: Mapped[str] = mapped_column(String(8))  # "page" or "api"
    ip: Mapped[str | None] = mapped_column(String(64))
