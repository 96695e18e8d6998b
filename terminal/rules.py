"""Payment rules that more than one writer of payouts applies: receipt numbers and channels.

The counter, the API and the synthetic-data generator all write payouts and receipts; each
takes these answers from here, so a receipt numbered by one can never look different from
a receipt numbered by another. Pure functions: no session, no Flask.
"""

from __future__ import annotations

from datetime import datetime

from terminal.clock import VIETNAM
from terminal.models.enums import Channel, PaymentMethod, PointKind

__all__ = ["channel_for", "format_receipt_no", "receipt_year"]


def receipt_year(paid_at: datetime) -> int:
    """Return the year a payout's receipt is numbered in: its Vietnam calendar year."""
    return paid_at.astimezone(VIETNAM).year


def format_receipt_no(point_code: str, year: int, seq: int) -> str:
    """Return the receipt number of a point's `seq`-th receipt of a year: HTBD-2021-000042."""
    return f"{point_code}-{year}-{seq:06d}"


def channel_for(point_kind: PointKind | str | None, method: PaymentMethod | str) -> Channel:
    """Return the channel of a payout made by a point of this kind in this way.

    Cash handed over by a home-delivery team is cash at home; any other cash is cash at
    the counter; an account withdrawal is the account channel wherever it happens. An
    unknown method raises ValueError (callers turn it into their own refusal).
    """
    # Compared as text (the enums are StrEnums): a generator pays millions of these.
    if method == PaymentMethod.ACCOUNT:
        return Channel.ACCOUNT
    if method != PaymentMethod.CASH:
        raise ValueError(f"unknown payment method {method!r}")
    return Channel.CASH_HOME if point_kind == PointKind.DELIVERY else Channel.CASH
