"""Unit tests for terminal.rules: receipt numbers and payout channels."""

from datetime import UTC, datetime

import pytest

from terminal.models import Channel, PaymentMethod, PointKind
from terminal.rules import channel_for, format_receipt_no, receipt_year


@pytest.mark.parametrize(
    ("point_code", "year", "seq", "number"),
    [
        ("HTBD", 2021, 1, "HTBD-2021-000001"),
        ("PLVT", 2022, 42, "PLVT-2022-000042"),
        ("G001", 2021, 999_999, "G001-2021-999999"),
    ],
)
def test_format_receipt_no(point_code, year, seq, number):
    assert format_receipt_no(point_code, year, seq) == number


def test_receipt_year_is_the_vietnam_year():
    # 31 December 17:30 UTC is already 1 January in Vietnam (UTC+7).
    assert receipt_year(datetime(2021, 12, 31, 16, 59, 59, tzinfo=UTC)) == 2021
    assert receipt_year(datetime(2021, 12, 31, 17, 0, tzinfo=UTC)) == 2022


@pytest.mark.parametrize(
    ("kind", "method", "channel"),
    [
        (PointKind.POST_OFFICE, PaymentMethod.CASH, Channel.CASH),
        (PointKind.AGENT, PaymentMethod.CASH, Channel.CASH),
        (PointKind.DELIVERY, PaymentMethod.CASH, Channel.CASH_HOME),
        (PointKind.POST_OFFICE, PaymentMethod.ACCOUNT, Channel.ACCOUNT),
        (PointKind.DELIVERY, PaymentMethod.ACCOUNT, Channel.ACCOUNT),
        ("delivery", "cash", Channel.CASH_HOME),
        ("agent", "account", Channel.ACCOUNT),
        (None, "cash", Channel.CASH),
    ],
)
def test_channel_for(kind, method, channel):
    assert channel_for(kind, method) is channel


@pytest.mark.parametrize("method", ["cheque", "", "CASH"])
def test_channel_for_refuses_an_unknown_method(method):
    with pytest.raises(ValueError):
        channel_for(PointKind.POST_OFFICE, method)
