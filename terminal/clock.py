"""The Vietnam clock: the one place for "now", "today" and where a day starts and ends.

Timestamps are stored in UTC; business days (cash floats, receipts' years, follow-up
deadlines, the payout log's date filters) are Vietnam days. Vietnam keeps UTC+7 all
year, so a fixed offset needs no time-zone database.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, timezone

from terminal.models.base import utcnow

__all__ = [
    "FIRST_DAY",
    "LAST_DAY",
    "VIETNAM",
    "check_day",
    "day_bounds",
    "local_date",
    "parse_iso_date",
    "to_local",
    "today_local",
    "utcnow",
]

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


# The days the terminal accepts in requests, filters and commands. Payouts began in
# 2021: a date far outside any payout is a typo or a probe, and the extremes
# (0001-01-01, 9999-12-31) overflow when turned into instants or moved by a day, so
# they are refused where they come in, with a 400, instead.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)

# Exactly YYYY-MM-DD with ASCII digits: date.fromisoformat alone also takes "20211001",
# and pydantic a Unix timestamp, which no script means as a day.
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def check_day(value: date) -> date:
    """Return the day if it lies from FIRST_DAY to LAST_DAY, else raise ValueError."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"dates run from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return value


def parse_iso_date(text: str) -> date:
    """Return the date written YYYY-MM-DD, or raise ValueError for anything else."""
    if not isinstance(text, str) or not _ISO_DATE.fullmatch(text):
        raise ValueError("dates are written YYYY-MM-DD")
    return date.fromisoformat(text)
