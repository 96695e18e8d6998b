"""Unit tests for terminal.money: parsing, formatting and reading amounts of đồng."""

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from terminal.money import (
    MAX_AMOUNT,
    InvalidAmount,
    format_vnd,
    format_vnd_plain,
    parse_vnd,
    vnd_in_words,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (540000, 540000),
        (1, 1),
        (MAX_AMOUNT, MAX_AMOUNT),
        ("540000", 540000),
        ("540.000", 540000),
        ("540,000", 540000),
        ("1.234.567", 1234567),
        ("1,234,567", 1234567),
        ("10.000.000.000.000", MAX_AMOUNT),
        ("  540000  ", 540000),
        ("\u00a0540.000\u00a0", 540000),
        ("540000đ", 540000),
        ("540.000 đ", 540000),
        ("540.000 Đ", 540000),
        ("540000 d", 540000),
        ("540000 D", 540000),
        ("540,000 VND", 540000),
        ("540000vnd", 540000),
        ("540000 vnđ", 540000),
        ("540000 VNĐ", 540000),
        ("540.000 ₫", 540000),
        ("540000.0", 540000),
        ("540000.0 đ", 540000),
        ("0540000", 540000),
    ],
)
def test_parse_vnd_accepts(value, expected):
    assert parse_vnd(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        True,
        False,
        540000.0,
        1.5,
        "1.5",
        "540.00",
        "5,40",
        "1.2345",
        "12.34.567",
        "1.234,567",
        "1,234.567",
        "540,000.0",
        "540.000.0",
        "540000.00",
        "540000.5",
        "1e6",
        "1E6",
        "NaN",
        "nan",
        "inf",
        "-5",
        "+5",
        "- 5",
        -5,
        "0x10",
        "١٢٣",
        "１２３",
        "540 000",
        "đ",
        "540000 đồng",
        "540000 USD",
        "đ 540000",
        "5" * 50,
        MAX_AMOUNT + 1,
        "10.000.000.000.001",
        0,
        "0",
        "0 đ",
    ],
)
def test_parse_vnd_refuses(value):
    with pytest.raises(InvalidAmount) as excinfo:
        parse_vnd(value)
    assert excinfo.value.code == "amount_invalid"
    assert isinstance(excinfo.value, ValueError)
    assert str(excinfo.value)


@pytest.mark.parametrize("value", [0, "0", "0 đ", "0.000"])
def test_parse_vnd_allow_zero(value):
    assert parse_vnd(value, allow_zero=True) == 0


@pytest.mark.parametrize("value", [-1, "-1"])
def test_parse_vnd_allow_zero_still_refuses_negative(value):
    with pytest.raises(InvalidAmount):
        parse_vnd(value, allow_zero=True)


@pytest.mark.parametrize(
    ("amount", "plain", "full"),
    [
        (0, "0", "0 đ"),
        (1, "1", "1 đ"),
        (999, "999", "999 đ"),
        (1000, "1.000", "1.000 đ"),
        (540000, "540.000", "540.000 đ"),
        (1234000, "1.234.000", "1.234.000 đ"),
        (1234567, "1.234.567", "1.234.567 đ"),
        (MAX_AMOUNT, "10.000.000.000.000", "10.000.000.000.000 đ"),
        (-1000, "-1.000", "-1.000 đ"),
        (-5, "-5", "-5 đ"),
    ],
)
def test_format_vnd(amount, plain, full):
    assert format_vnd_plain(amount) == plain
    assert format_vnd(amount) == full


@pytest.mark.parametrize("value", [True, False, 1.0, 1000.5, "1000", None])
@pytest.mark.parametrize("function", [format_vnd, format_vnd_plain, vnd_in_words])
def test_formatting_refuses_non_int(function, value):
    with pytest.raises(TypeError):
        function(value)


VND_WORDS = [
    (0, "Không đồng"),
    (5, "Năm đồng"),
    (10, "Mười đồng"),
    (11, "Mười một đồng"),
    (14, "Mười bốn đồng"),
    (15, "Mười lăm đồng"),
    (20, "Hai mươi đồng"),
    (21, "Hai mươi mốt đồng"),
    (24, "Hai mươi tư đồng"),
    (25, "Hai mươi lăm đồng"),
    (101, "Một trăm linh một đồng"),
    (104, "Một trăm linh bốn đồng"),
    (105, "Một trăm linh năm đồng"),
    (110, "Một trăm mười đồng"),
    (111, "Một trăm mười một đồng"),
    (115, "Một trăm mười lăm đồng"),
    (121, "Một trăm hai mươi mốt đồng"),
    (1005, "Một nghìn không trăm linh năm đồng"),
    (10500, "Mười nghìn năm trăm đồng"),
    (540000, "Năm trăm bốn mươi nghìn đồng"),
    (1000005, "Một triệu không trăm linh năm đồng"),
    (1080000, "Một triệu không trăm tám mươi nghìn đồng"),
    (1620000, "Một triệu sáu trăm hai mươi nghìn đồng"),
    (791000000, "Bảy trăm chín mươi mốt triệu đồng"),
    (1000000000, "Một tỷ đồng"),
    (3043000000, "Ba tỷ không trăm bốn mươi ba triệu đồng"),
    (1000000000000, "Một nghìn tỷ đồng"),
    (2000005000000, "Hai nghìn tỷ không trăm linh năm triệu đồng"),
    (1000000000000000, "Một triệu tỷ đồng"),
]


@pytest.mark.parametrize(("amount", "words"), VND_WORDS)
def test_vnd_in_words(amount, words):
    result = vnd_in_words(amount)
    assert result == words
    assert unicodedata.is_normalized("NFC", result)


def test_vnd_in_words_refuses_negative():
    with pytest.raises(ValueError):
        vnd_in_words(-1)


@given(st.integers(min_value=1, max_value=MAX_AMOUNT))
def test_parse_round_trips_format(amount):
    assert parse_vnd(format_vnd_plain(amount)) == amount
    assert parse_vnd(format_vnd(amount)) == amount


@given(st.integers(min_value=0, max_value=10**15 - 1))
def test_vnd_in_words_total(amount):
    words = vnd_in_words(amount)
    assert words.endswith(" đồng") or words == "Không đồng"
    assert words.endswith("đồng")
    assert words[0].isupper()
    assert "  " not in words
    assert unicodedata.is_normalized("NFC", words)
