"""The Vietnam clock: the one place for "now", "today" and where a day starts and ends.

Timestamps are stored in UTC; business days (cash floats, receipts' years, follow-up
deadlines, the payout log's date filters) are Vietnam days. Vietnam keeps UTC+7 all
year, so a fixed offset needs no time-zone database.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from terminal.models.base import utcnow

__all__ = ["VIETNAM", "day_bounds", "local_date", "to_local", "today_local", "utcnow"]

VIETNAM = timezone(timedelta(hours=7), "ICT")


def to_local(value: datetime) -> datetime:
    """Return a timestamp in Vietnam time."""
    return value.astimezone(VIETNAM)


def local_date(value: datetime) -> date:
    """Return the Vietnam day of a timestamp."""
    return value.astimezone(VIETNAM).date()


def today_local() -> date:
    """Return today's date in Vietnam."""
    return local_date(utcnow())


def day_bounds(first: date, last: date | None = None) -> tuple[datetime, datetime]:
    """Return the instants where a Vietnam day (or the days first..last) starts and ends.

    The end is exclusive: the start of the day after ``last``.
    """
    last = last or first
    start = datetime(first.year, first.month, first.day, tzinfo=VIETNAM)
    end = datetime(last.year, last.month, last.day, tzinfo=VIETNAM) + timedelta(days=1)
    return start, end
