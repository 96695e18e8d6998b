"""Money: amounts are whole đồng held in `int`, never floats.

Parsing accepts what people type and what spreadsheets export; formatting and the amount in
words follow the conventions of Vietnamese payment documents.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "MAX_AMOUNT",
    "InvalidAmount",
    "format_vnd",
    "format_vnd_plain",
    "parse_vnd",
    "vnd_in_words",
]

# 10 nghìn tỷ đồng: far above any allowance or batch total, low enough that a misplaced
# paste of an account number is refused instead of paid.
MAX_AMOUNT = 10**13


class InvalidAmount(ValueError):
    """An amount of money that cannot be accepted; `code` maps to a UI message."""

    code = "amount_invalid"


# ASCII digits only ([0-9], not \d): "١٢٣" must not slip through as 123. Separators must
# group by exactly three so "1.5" (a decimal) or "5,40" (a typo) is never read as thousands.
_AMOUNT = re.compile(
    r"""
    (?P<number>
        [0-9]{1,3}(?:\.[0-9]{3})+     # 1.234.567
      | [0-9]{1,3}(?:,[0-9]{3})+      # 1,234,567
      | [0-9]+(?P<excel>\.0)?         # 540000, or 540000.0 as a spreadsheet prints a float
    )
    \s*
    (?:đ|d|₫|vnđ|vnd)?                # the unit, any case
    """,
    re.VERBOSE | re.IGNORECASE,
)


def parse_vnd(value: str | int | None, *, allow_zero: bool = False) -> int:
    """Return the amount in đồng typed or imported as `value`, or raise InvalidAmount."""
    if value is None:
        raise InvalidAmount("amount is missing")
    # bool is an int subclass and float is inexact: both would be silent bugs upstream.
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidAmount(f"amount must be a whole number of đồng, not {type(value).__name__}")
    if isinstance(value, int):
        amount = value
    else:
        text = value.strip()
        if not text:
            raise InvalidAmount("amount is missing")
        # A length guard keeps int() away from absurdly long digit strings.
        match = _AMOUNT.fullmatch(text) if len(text) <= 40 else None
        if match is None:
            raise InvalidAmount(
                "amount must be whole đồng, e.g. 540000 or 540.000 (groups of three digits)"
            )
        number = match.group("number")
        if match.group("excel"):
            number = number[:-2]
        amount = int(number.replace(".", "").replace(",", ""))
    if amount < 0:
        raise InvalidAmount("amount cannot be negative")
    if amount == 0 and not allow_zero:
        raise InvalidAmount("amount must be greater than zero")
    if amount > MAX_AMOUNT:
        raise InvalidAmount(f"amount exceeds the limit of {format_vnd(MAX_AMOUNT)}")
    return amount


def _require_int(amount: int) -> None:
    """Raise TypeError unless `amount` is an int (bool excluded)."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError(f"amount must be int đồng, not {type(amount).__name__}")


def format_vnd_plain(amount: int) -> str:
    """Return `amount` with dots between thousands: 1234000 -> "1.234.000"."""
    _require_int(amount)
    sign = "-" if amount < 0 else ""
    return sign + f"{abs(amount):,}".replace(",", ".")


def format_vnd(amount: int) -> str:
    """Return `amount` formatted for display: 1234000 -> "1.234.000 đ"."""
    return format_vnd_plain(amount) + " đ"


_DIGITS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUP_UNITS = ("", "nghìn", "triệu")


def _group_in_words(group: int, *, leading: bool) -> list[str]:
    """Return the words for a three-digit group (0 < group < 1000)."""
    hundreds, rest = divmod(group, 100)
    tens, units = divmod(rest, 10)
    words: list[str] = []
    # Only the leading group may omit its hundreds: 1.005 is "một nghìn không trăm linh năm".
    if hundreds or not leading:
        words += [_DIGITS[hundreds], "trăm"]
    if tens == 0:
        if units:
            # "linh" bridges a hundred and a lone unit; the unit keeps its plain name.
            words += ["linh", _DIGITS[units]] if words else [_DIGITS[units]]
    elif tens == 1:
        words.append("mười")
        if units:
            words.append("lăm" if units == 5 else _DIGITS[units])
    else:
        words += [_DIGITS[tens], "mươi"]
        if units:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(units, _DIGITS[units]))
    return words


def _group_unit(index: int) -> list[str]:
    """Return the unit of the index-th group of three digits counted from the right."""
    # Above tỷ the cycle repeats: nghìn tỷ, triệu tỷ, tỷ tỷ, ...
    unit = [_GROUP_UNITS[index % 3]] if index % 3 else []
    return unit + ["tỷ"] * (index // 3)


def vnd_in_words(amount: int) -> str:
    """Return `amount` read out in Vietnamese: 540000 -> "Năm trăm bốn mươi nghìn đồng"."""
    _require_int(amount)
    if amount < 0:
        raise ValueError("amount in words needs a non-negative amount")
    if amount == 0:
        return "Không đồng"
    groups: list[int] = []
    while amount:
        amount, group = divmod(amount, 1000)
        groups.append(group)
    words: list[str] = []
    top = len(groups) - 1
    for index in range(top, -1, -1):
        if groups[index] == 0:
            continue  # "1.000.005" reads "một triệu không trăm linh năm": no "không nghìn"
        words += _group_in_words(groups[index], leading=index == top)
        words += _group_unit(index)
    text = " ".join([*words, "đồng"])
    return unicodedata.normalize("NFC", text[0].upper() + text[1:])
