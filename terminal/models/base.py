"""Declarative base, column shapes shared by every model, and UTC timestamps."""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Annotated, Any

from sqlalchemy import BigInteger, DateTime, Integer, MetaData, String, TypeDecorator
from sqlalchemy import Enum as SAEnum
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, mapped_column

# Stable constraint names, so Alembic migrations are the same on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware.

    SQLite keeps no time zone, PostgreSQL does; this makes both behave the same.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert an aware datetime to UTC before storing; refuse naive ones."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given where a UTC timestamp is stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return the stored timestamp as an aware UTC datetime."""
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets BIGINT.
BigID = BigInteger().with_variant(Integer(), "sqlite")
# The largest id either database holds (signed 64 bits): a larger one names nothing.
MAX_ID = 2**63 - 1

intpk = Annotated[int, mapped_column(BigID, primary_key=True)]
created_at = Annotated[datetime, mapped_column(UTCDateTime(), default=utcnow, nullable=False)]
# Money is an integer number of đồng, never a float.
vnd = Annotated[int, mapped_column(BigInteger(), nullable=False)]
str_short = Annotated[str, mapped_column(String(64))]


def search_key(length: int) -> String:
    """Text compared byte by byte on both databases: SQLite's BINARY, PostgreSQL's "C".

    A prefix is then a plain range of an index (keys from "nguyen" up to "nguyeo"),
    and the database orders keys as Python does, so searches can merge index reads.
    """
    return String(length).with_variant(String(length, collation="C"), "postgresql")


str_name = Annotated[str, mapped_column(String(200))]


def enum_column(enum_cls: type[enum.Enum], **kw: Any) -> Any:
    """A portable enum column: its values stored as text, checked by the database."""
    return mapped_column(
        SAEnum(
            enum_cls,
            native_enum=False,
            create_constraint=True,
            length=32,
            values_callable=lambda cls: [member.value for member in cls],
            validate_strings=True,
            name=enum_cls.__name__.lower(),
        ),
        **kw,
    )


class Base(DeclarativeBase):
    """Base of every model; shares the naming convention above."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime()}  # noqa: RUF012 (SQLAlchemy reads it once)
