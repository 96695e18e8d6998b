"""Unit tests for terminal.text: cleaning, search keys, IDs, phones, masking, CCCD QR codes."""

import dataclasses
import random
import unicodedata
from datetime import date

import pytest

from terminal.text import (
    CccdQr,
    InvalidIdNumber,
    InvalidName,
    InvalidPhone,
    InvalidQr,
    TextTooLong,
    cccd_birth_digits,
    cccd_facts,
    cccd_mismatch,
    clean_name,
    clean_text,
    fold,
    given_key,
    id_number_kind,
    mask_id,
    mask_name,
    mask_phone,
    name_keys,
    normalize_header,
    normalize_id_number,
    normalize_phone,
    parse_cccd_qr,
)


def nfd(text: str) -> str:
    """Return `text` decomposed, as macOS and some Vietnamese keyboards produce it."""
    return unicodedata.normalize("NFD", text)


# --- clean_text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, ""),
        ("", ""),
        ("   ", ""),
        ("  Nguyễn   Thị  Hoa  ", "Nguyễn Thị Hoa"),
        (nfd("Nguyễn Thị Hoa"), "Nguyễn Thị Hoa"),
        ("Nguyễn\tThị\r\nHoa", "Nguyễn Thị Hoa"),
        ("Nguyễn\nThị", "Nguyễn Thị"),
        ("Hoa\x00", "Hoa"),
        ("Ho\x00a", "Hoa"),
        ("\x07Hoa\x1b", "Hoa"),
        ("Ho\u200ba", "Hoa"),
        ("\ufeffHoa", "Hoa"),
        ("Ho\u200c\u200d\u200e\u200fa", "Hoa"),
        ("\u202aHoa\u202c", "Hoa"),
        ("\u202eaoH", "aoH"),
        ("Ho\u2060\u2061\u2062\u2063\u2064a", "Hoa"),
        ("\u2066Hoa\u2069", "Hoa"),
        ("\u2067\u2068Hoa", "Hoa"),
        ("Nguyễn\u00a0Thị\u2003Hoa", "Nguyễn Thị Hoa"),
        ("Nguyễn\u3000Thị\u2028Hoa\u0085", "Nguyễn Thị Hoa"),
        # A zero-width char between a letter and its mark must not block NFC composition.
        ("e\u200b\u0301", "é"),
        ("\x7f\x9fHoa", "Hoa"),
    ],
)
def test_clean_text(raw, expected):
    result = clean_text(raw)
    assert result == expected
    assert unicodedata.is_normalized("NFC", result)


def test_clean_text_max_len():
    assert clean_text("a" * 10, max_len=10) == "a" * 10
    # Length is measured after cleaning: spaces that collapse do not count.
    assert clean_text("  " + "a" * 10 + "  ", max_len=10) == "a" * 10
    assert clean_text(nfd("ễ" * 10), max_len=10) == "ễ" * 10
    with pytest.raises(TextTooLong) as excinfo:
        clean_text("a" * 11, max_len=10)
    assert excinfo.value.code == "too_long"
    assert isinstance(excinfo.value, ValueError)


def test_clean_text_refuses_non_text():
    with pytest.raises(TypeError):
        clean_text(123)  # type: ignore[arg-type]


# --- clean_name -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nguyễn Thị Hoa", "Nguyễn Thị Hoa"),
        ("  lê   thị  hương ", "lê thị hương"),
        (nfd("Đặng Văn Lâm"), "Đặng Văn Lâm"),
        ("H'Hen Niê", "H'Hen Niê"),
        ("H\u2019Hen Niê", "H\u2019Hen Niê"),
        ("Nguyễn-Trần Minh", "Nguyễn-Trần Minh"),
        ("Nguyễn T. Hoa", "Nguyễn T. Hoa"),
        ("Ksor Y\u200b Blông", "Ksor Y Blông"),
        ("A", "A"),
    ],
)
def test_clean_name_accepts(raw, expected):
    assert clean_name(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        None,
        "",
        "   ",
        "\u200b",
        "'-.",
        "Nguyễn Văn 2",
        "Nguyễn Văn ２",
        "Hoa 😀",
        "Hoa ♥",
        "Hoa $",
        "Hoa +",
        "<script>",
        "Hoa {x}",
        "Hoa [x]",
        "Hoa|Lan",
        "Hoa\\Lan",
        "Hoa^",
        "Hoa~",
        "Hoa=",
        "Hoa, Lan",
        "Hoa@mail",
        "Hoa_Lan",
        "(Hoa)",
    ],
)
def test_clean_name_refuses(raw):
    with pytest.raises(InvalidName) as excinfo:
        clean_name(raw)
    assert excinfo.value.code == "name_invalid"


def test_clean_name_length_limit():
    assert len(clean_name("a" * 200)) == 200
    assert len(clean_name("Hương " * 32 + "Lan")) <= 200
    with pytest.raises(TextTooLong) as excinfo:
        clean_name("a" * 201)
    assert excinfo.value.code == "too_long"


# --- fold / normalize_header ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Nguyễn Thị Hoa", "nguyen thi hoa"),
        (nfd("Nguyễn Thị Hoa"), "nguyen thi hoa"),
        ("ĐẶNG", "dang"),
        ("đặng văn lâm", "dang van lam"),
        ("  Trần   Thị\u200b  Ánh ", "tran thi anh"),
        ("Lê Thị Hương", "le thi huong"),
        ("Phạm Ngọc Ưng Ơn Ẩn Ỷ", "pham ngoc ung on an y"),
        ("H'Hen Niê", "h'hen nie"),
        ("", ""),
    ],
)
def test_fold(raw, expected):
    assert fold(raw) == expected


@pytest.mark.parametrize(
    "name", ["Nguyễn Thị Hoa", "Đặng Văn Lâm", "Lê Thị Hương", "Trương Thị Thuỷ", "Ngô Bảo Châu"]
)
def test_fold_nfc_and_nfd_agree(name):
    nfc = unicodedata.normalize("NFC", name)
    assert fold(nfc) == fold(nfd(name)) == fold(name.upper()) == fold(nfd(name.upper()))
    assert fold(nfc).isascii()


@pytest.mark.parametrize(
    ("raw", "keys"),
    [
        ("Nguyễn Thị Hoa", ("nguyen thi hoa", "hoa nguyen thi")),
        (nfd("Nguyễn  Thị\tHoa "), ("nguyen thi hoa", "hoa nguyen thi")),
        ("Đặng Văn Lâm", ("dang van lam", "lam dang van")),
        ("Hoa", ("hoa", "hoa")),
        ("", ("", "")),
        ("  Trần   Thị\u200b  Ánh ", ("tran thi anh", "anh tran thi")),
        ("H'Hen Niê", ("h'hen nie", "nie h'hen")),
        # A "word" that is only combining marks folds to nothing and leaves no gap.
        ("Lê \u0301 Hương", ("le huong", "huong le")),
        ("Lê\u00a0Thị\u2003Hương", ("le thi huong", "huong le thi")),
    ],
)
def test_name_keys(raw, keys):
    assert name_keys(raw) == keys
    assert name_keys(raw)[0] == fold(raw)  # the same key fold() gives, word by word
    assert given_key(raw) == keys[1]


def test_name_keys_agree_with_fold_on_any_text():
    # Random mixes of letters, marks, spaces of every kind and invisible characters.
    rng = random.Random(2021)
    alphabet = [*"aăâbdđeêioôơuưyAĐ'-. ", "\t", "\n", "\u00a0", "\u2003", "\u3000"]
    alphabet += ["\u200b", "\ufeff", "\u0301", "\u0323", "\x1f", "\x00", "\u2028"]
    for _ in range(3000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        for text in (raw, unicodedata.normalize("NFD", raw)):
            words = fold(text).split()
            given = " ".join(words[-1:] + words[:-1])
            assert name_keys(text) == (fold(text), given), repr(text)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Họ và tên", "họ và tên"),
        (nfd("  HỌ VÀ   TÊN "), "họ và tên"),
        ("Số CCCD\n", "số cccd"),
        ("\ufeffSố tiền", "số tiền"),
        (None, ""),
    ],
)
def test_normalize_header(raw, expected):
    result = normalize_header(raw)
    assert result == expected
    assert unicodedata.is_normalized("NFC", result)


# --- ID numbers -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("046153060816", "046153060816"),
        (" 046 153 060 816 ", "046153060816"),
        ("046.153.060.816", "046153060816"),
        ("046-153-060-816", "046153060816"),
        ("046\u00a0153\u200b060816", "046153060816"),
        ("'046153060816", "046153060816"),
        # Excel-mangled CCCDs: the leading 0 dropped, a float printed, scientific notation.
        (46153060816, "046153060816"),
        ("46153060816", "046153060816"),
        ("46153060816.0", "046153060816"),
        ("4.6153060816E+10", "046153060816"),
        ("4.6153060816e10", "046153060816"),
        (46153060816.0, "046153060816"),
        ("001090012345", "001090012345"),
        # CMNDs, with and without the leading 0 Excel drops.
        ("285123456", "285123456"),
        (285123456, "285123456"),
        ("023456789", "023456789"),
        (23456789, "023456789"),
        ("23456789", "023456789"),
        ("23456789.0", "023456789"),
        ("", None),
        ("   ", None),
        (None, None),
        ("\u200b", None),
    ],
)
def test_normalize_id_number(raw, expected):
    assert normalize_id_number(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "04615306081",  # 11 digits starting with 0: a digit is missing, not a leading 0
        "02345678",
        "0461530608160",
        "1234567",
        "1234567890",
        1090012345,
        "12345",
        "000000000000",
        "000000000",
        0,
        "0",
        -46153060816,
        True,
        "04615306081a",
        "CCCD 046153060816",
        "٠٤٦١٥٣٠٦٠٨١٦",
        "046153060816.5",
        "46153060816.00",  # an ambiguous single group, not a float printout
        "4.61531E+10",  # Excel's rounded display: digits are lost
        "4.6153060816E+9",  # not a whole number
        "4.6153060816E-10",
        46153060816.5,
        float("nan"),
        float("inf"),
        "046/153/060/816",
        ["046153060816"],
    ],
)
def test_normalize_id_number_refuses(raw):
    with pytest.raises(InvalidIdNumber) as excinfo:
        normalize_id_number(raw)
    assert excinfo.value.code == "id_number_invalid"


def test_normalize_id_number_error_does_not_echo_the_number():
    with pytest.raises(InvalidIdNumber) as excinfo:
        normalize_id_number("4.61531E+10")
    assert "4.61531" not in str(excinfo.value)


@pytest.mark.parametrize(("id_number", "kind"), [("046153060816", "cccd"), ("285123456", "cmnd")])
def test_id_number_kind(id_number, kind):
    assert id_number_kind(id_number) == kind


@pytest.mark.parametrize("bad", ["46153060816", "12345678", "", "04615306081x", None])
def test_id_number_kind_refuses(bad):
    with pytest.raises(InvalidIdNumber):
        id_number_kind(bad)


@pytest.mark.parametrize(
    ("cccd", "facts"),
    [
        ("046053060816", ("male", 1953)),
        ("046153060816", ("female", 1953)),
        ("001099000001", ("male", 1999)),
        ("001100000001", ("female", 1900)),
        ("079205012345", ("male", 2005)),
        ("079300012345", ("female", 2000)),
        ("079324012345", ("female", 2024)),
        ("001401000001", ("male", 2101)),
        ("001550000001", ("female", 2150)),
        ("001600000001", ("male", 2200)),
        ("001799000001", ("female", 2299)),
        ("001800000001", ("male", 2300)),
        ("001912000001", ("female", 2312)),
        ("285123456", None),
    ],
)
def test_cccd_facts(cccd, facts):
    assert cccd_facts(cccd) == facts


@pytest.mark.parametrize("gender", ["male", "female"])
@pytest.mark.parametrize("birth_year", [1900, 1925, 1953, 1999, 2000, 2024, 2101, 2399])
def test_cccd_birth_digits_are_what_cccd_facts_reads(gender, birth_year):
    digits = cccd_birth_digits(gender, birth_year)
    assert len(digits) == 3 and digits.isdigit()
    assert cccd_facts(f"046{digits}000001") == (gender, birth_year)


@pytest.mark.parametrize("birth_year", [1899, 2400])
def test_cccd_birth_digits_refuse_years_a_cccd_cannot_hold(birth_year):
    with pytest.raises(ValueError):
        cccd_birth_digits("male", birth_year)


def test_cccd_facts_refuses_garbage():
    with pytest.raises(InvalidIdNumber):
        cccd_facts("0461530608")


@pytest.mark.parametrize(
    ("cccd", "gender", "birth_year", "expected"),
    [
        ("046153060816", "female", 1953, None),
        ("046153060816", "male", 1953, "CCCD says female, roster says male"),
        ("046153060816", "female", 1955, "CCCD says born 1953, roster says 1955"),
        (
            "046153060816",
            "male",
            1955,
            "CCCD says female, roster says male; CCCD says born 1953, roster says 1955",
        ),
        ("046153060816", "female", None, None),
        ("046153060816", "", 1953, None),
        ("046153060816", "unknown", None, None),
        ("046153060816", "Nữ", 1953, None),
        ("046153060816", nfd("NỮ"), 1953, None),
        ("046153060816", "Nam", 1953, "CCCD says female, roster says male"),
        ("079205012345", "male", 2005, None),
        ("079205012345", "male", 1905, "CCCD says born 2005, roster says 1905"),
        ("285123456", "male", 1950, None),
    ],
)
def test_cccd_mismatch(cccd, gender, birth_year, expected):
    assert cccd_mismatch(cccd, gender=gender, birth_year=birth_year) == expected


# --- phone numbers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("0928816302", "0928816302"),
        ("0928 816 302", "0928816302"),
        ("0928.816.302", "0928816302"),
        ("0928-816-302", "0928816302"),
        ("(092) 881-6302", "0928816302"),
        ("+84928816302", "0928816302"),
        ("+84 928 816 302", "0928816302"),
        ("+84 (0) 928 816 302", "0928816302"),
        ("84928816302", "0928816302"),
        ("928816302", "0928816302"),
        (928816302, "0928816302"),
        ("928816302.0", "0928816302"),
        ("9.28816302E+8", "0928816302"),
        (" 0328\u00a0123\u200b456 ", "0328123456"),
        ("", None),
        ("  ", None),
        (None, None),
    ],
)
def test_normalize_phone(raw, expected):
    assert normalize_phone(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "092881630",  # 9 digits starting with 0: a digit is missing
        "09288163021",
        "1928816302",
        "12345",
        "+1 202 555 0143",
        "+8492881630",
        "849288163021",
        "0928816302 ext 5",
        "O928816302",
        "٠٩٢٨٨١٦٣٠٢",
        True,
        -928816302,
        "9.288163E+8",  # Excel's rounded display: digits are lost
    ],
)
def test_normalize_phone_refuses(raw):
    with pytest.raises(InvalidPhone) as excinfo:
        normalize_phone(raw)
    assert excinfo.value.code == "phone_invalid"


# --- masking --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("046153060816", "********0816"),
        ("285123456", "*****3456"),
        ("1234", "****"),
        ("", ""),
        (None, ""),
    ],
)
def test_mask_id(raw, expected):
    assert mask_id(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("0928816302", "092****302"), ("0328123456", "032****456"), ("", ""), (None, "")],
)
def test_mask_phone(raw, expected):
    assert mask_phone(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Lê Thị Hương", "L. T. Hương"),
        ("Nguyễn Văn An", "N. V. An"),
        ("Đặng Thị Ánh Tuyết", "Đ. T. Á. Tuyết"),
        (nfd("Ừng Văn Ơn"), "Ừ. V. Ơn"),
        ("  lê  thị   hương ", "L. T. hương"),
        ("Hương", "Hương"),
        ("", ""),
    ],
)
def test_mask_name(raw, expected):
    result = mask_name(raw)
    assert result == expected
    assert unicodedata.is_normalized("NFC", result)


# --- CCCD QR codes --------------------------------------------------------------------------

TODAY = date(2025, 6, 1)
ADDRESS = "Thôn 3, Xã Phú Mỹ, Huyện Phú Vang, Thừa Thiên Huế"
FIELDS_7 = ["046153060816", "191234567", "Lê Thị Hương", "15071953", "Nữ", ADDRESS, "10042021"]
EXPECTED_QR = CccdQr(
    id_number="046153060816",
    old_id_number="191234567",
    full_name="Lê Thị Hương",
    date_of_birth=date(1953, 7, 15),
    gender="female",
    address=ADDRESS,
    issue_date=date(2021, 4, 10),
)
# Position of each field in the 7-field layout, for building variants.
FIELD_INDEX = {
    name: i for i, name in enumerate(["id", "old", "name", "dob", "gender", "addr", "issue"])
}


def qr_text(*, drop_old: bool = False, extra: list[str] | None = None, **changes: str) -> str:
    """Return QR text built from FIELDS_7 with fields replaced by name (see FIELD_INDEX)."""
    fields = list(FIELDS_7)
    for name, value in changes.items():
        fields[FIELD_INDEX[name]] = value
    if drop_old:
        del fields[FIELD_INDEX["old"]]
    return "|".join(fields + (extra or []))


def qr(**changes: object) -> CccdQr:
    """Return EXPECTED_QR with some attributes changed."""
    return dataclasses.replace(EXPECTED_QR, **changes)


QR_7 = qr_text()
QR_6 = qr_text(drop_old=True)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(QR_7, EXPECTED_QR, id="7 fields"),
        pytest.param(QR_6, qr(old_id_number=None), id="6 fields"),
        pytest.param(qr_text(old=""), qr(old_id_number=None), id="empty old ID"),
        pytest.param(qr_text(extra=["extra"]), EXPECTED_QR, id="7 + trailing field"),
        pytest.param(qr_text(extra=[""]), EXPECTED_QR, id="7 + trailing empty field"),
        pytest.param(
            qr_text(old="", extra=["x"]), qr(old_id_number=None), id="empty old ID + trailing"
        ),
        pytest.param(
            qr_text(drop_old=True, extra=["x"]), qr(old_id_number=None), id="6 + trailing field"
        ),
        pytest.param(qr_text(dob="15/07/1953", issue="10/04/2021"), EXPECTED_QR, id="slash dates"),
        pytest.param(
            qr_text(drop_old=True, dob="15/07/1953"), qr(old_id_number=None), id="6 slash dob"
        ),
        pytest.param("|".join(f"  {f} " for f in FIELDS_7), EXPECTED_QR, id="spaces around fields"),
        pytest.param(qr_text(name="  Lê  Thị   Hương "), EXPECTED_QR, id="spaces inside name"),
        pytest.param(QR_7 + "\n", EXPECTED_QR, id="trailing LF"),
        pytest.param(QR_7 + "\r\n", EXPECTED_QR, id="trailing CRLF"),
        pytest.param(QR_7 + "\r", EXPECTED_QR, id="trailing CR"),
        pytest.param(QR_6 + "\r\n", qr(old_id_number=None), id="6 fields CRLF"),
        pytest.param(nfd(QR_7), EXPECTED_QR, id="NFD text"),
        pytest.param("\ufeff" + QR_7, EXPECTED_QR, id="leading BOM"),
        pytest.param(qr_text(gender="NỮ"), EXPECTED_QR, id="NỮ"),
        pytest.param(qr_text(gender="nữ"), EXPECTED_QR, id="nữ"),
        pytest.param(qr_text(gender=nfd("Nữ")), EXPECTED_QR, id="NFD Nữ"),
        pytest.param(qr_text(gender="Nu"), EXPECTED_QR, id="Nu"),
        pytest.param(qr_text(gender="Nam"), qr(gender="male"), id="Nam"),
        pytest.param(qr_text(gender="NAM"), qr(gender="male"), id="NAM"),
        # Keyboard-wedge scanners garble non-ASCII letters: keep the read, drop the gender.
        pytest.param(qr_text(gender="N["), qr(gender=""), id="garbled N["),
        pytest.param(qr_text(gender="Nb{"), qr(gender=""), id="garbled Nb{"),
        pytest.param(qr_text(gender="N\u00c6\u00af"), qr(gender=""), id="garbled mojibake"),
        pytest.param(qr_text(gender=""), qr(gender=""), id="empty gender"),
        pytest.param(qr_text(issue=""), qr(issue_date=None), id="no issue date"),
        pytest.param(
            qr_text(dob="01062025", issue=""),
            qr(date_of_birth=TODAY, issue_date=None),
            id="born today",
        ),
        pytest.param(
            qr_text(id="079205012345", dob="01012005"),
            qr(id_number="079205012345", date_of_birth=date(2005, 1, 1)),
            id="born in the 2000s",
        ),
    ],
)
def test_parse_cccd_qr_accepts(text, expected):
    assert parse_cccd_qr(text, today=TODAY) == expected


def test_parse_cccd_qr_result_is_frozen():
    result = parse_cccd_qr(QR_7, today=TODAY)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.full_name = "x"  # type: ignore[misc]


def test_parse_cccd_qr_defaults_to_real_today():
    assert parse_cccd_qr(QR_7) == EXPECTED_QR


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("046153060816", id="1 field"),
        pytest.param("|".join(FIELDS_7[:5]), id="5 fields"),
        pytest.param(qr_text(extra=["x", "y"]), id="9 fields"),
        pytest.param(qr_text(drop_old=True, extra=["x", "y"]), id="6 + 2 fields"),
        pytest.param(qr_text(old="19123456"), id="8-digit old ID"),
        pytest.param(qr_text(old="19123456a"), id="non-digit old ID"),
        pytest.param(qr_text(id="46153060816"), id="11-digit ID"),
        pytest.param(qr_text(id="0461530608160"), id="13-digit ID"),
        pytest.param(qr_text(id="04615306081a"), id="letter in ID"),
        pytest.param(qr_text(id=""), id="no ID"),
        pytest.param(qr_text(name=""), id="no name"),
        pytest.param(qr_text(dob="31021990"), id="31 February"),
        pytest.param(qr_text(dob="15131953"), id="month 13"),
        pytest.param(qr_text(dob="1571953"), id="7-digit date"),
        pytest.param(qr_text(dob="15-07-1953"), id="hyphen date"),
        pytest.param(qr_text(dob="15/071953"), id="half-slashed date"),
        pytest.param(qr_text(dob="1953-07-15"), id="ISO date"),
        pytest.param(qr_text(dob=""), id="no dob"),
        pytest.param(qr_text(dob="02062025", issue=""), id="born tomorrow"),
        pytest.param(qr_text(issue="31022021"), id="bad issue date"),
        pytest.param(qr_text(issue="10041950"), id="issued before birth"),
        pytest.param(qr_text(name="Lê\x00Thị Hương"), id="NUL"),
        pytest.param(qr_text(name="Lê\tThị Hương"), id="tab"),
        pytest.param(qr_text(name="Lê\nThị Hương"), id="inner newline"),
        pytest.param("\n" + QR_7, id="leading newline"),
        pytest.param(QR_7 + "\x1d", id="trailing GS"),
        pytest.param(QR_7 + " " * 1000, id="over 1000 characters"),
        pytest.param("https://example.com/?q=046153060816", id="URL"),
    ],
)
def test_parse_cccd_qr_refuses(text):
    with pytest.raises(InvalidQr) as excinfo:
        parse_cccd_qr(text, today=TODAY)
    assert excinfo.value.code == "qr_invalid"


def test_parse_cccd_qr_length_limit():
    room = 1000 - len(qr_text(addr=""))
    assert parse_cccd_qr(qr_text(addr="a" * room), today=TODAY).address == "a" * room
    with pytest.raises(InvalidQr):
        parse_cccd_qr(qr_text(addr="a" * (room + 1)), today=TODAY)


def test_parse_cccd_qr_refuses_non_text():
    with pytest.raises(InvalidQr):
        parse_cccd_qr(QR_7.encode())  # type: ignore[arg-type]
