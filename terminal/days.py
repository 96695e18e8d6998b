"""The days the terminal accepts in requests, filters and commands.

Payouts began in 2021. A date far outside any payout is a typo or a probe, and the
extremes (0001-01-01, 9999-12-31) overflow when turned into instants or moved by a
day, so they are refused where they come in, with a 400, instead.
"""

from __future__ import annotations

from datetime import date

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2100, 12, 31)


def check_day(value: date) -> date:
    """Return the day if it lies from FIRST_DAY to LAST_DAY, else raise ValueError."""
    if not FIRST_DAY <= value <= LAST_DAY:
        raise ValueError(f"dates run from {FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return value
