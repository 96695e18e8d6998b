"""Vietnamese text handling: cleaning, search keys, ID/phone numbers, masking, CCCD QR codes.

Every piece of text that enters the terminal (typed, scanned, imported from a spreadsheet)
goes through this module, so that the same name always compares equal no matter which
keyboard, scanner or Unicode normal form produced it.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation

__all__ = [
    "CccdQr",
    "InvalidIdNumber",
    "InvalidName",
    "InvalidPhone",
    "InvalidQr",
    "TextError",
    "TextTooLong",
    "cccd_birth_digits",
    "cccd_facts",
    "cccd_mismatch",
    "clean_name",
    "clean_text",
    "fold",
    "given_key",
    "id_number_kind",
    "mask_id",
    "mask_name",
    "mask_phone",
    "name_keys",
    "normalize_header",
    "normalize_id_number",
    "normalize_phone",
    "parse_cccd_qr",
]


class TextError(ValueError):
    """Base class: a text value that cannot be accepted; `code` maps to a UI message."""

    code = "text_invalid"


class TextTooLong(TextError):
    """The cleaned text is longer than allowed."""

    code = "too_long"


class InvalidName(TextError):
    """A person's name that is empty or contains characters a name cannot have."""

    code = "name_invalid"


class InvalidIdNumber(TextError):
    """Not a CCCD (12 digits) or CMND (9 digits)."""

    code = "id_number_invalid"


class InvalidPhone(TextError):
    """Not a Vietnamese mobile number."""

    code = "phone_invalid"


class InvalidQr(TextError):
    """Text that is not the QR code of a Vietnamese CCCD card."""

    code = "qr_invalid"


NAME_MAX_LEN = 200
QR_MAX_LEN = 1000

# Invisible characters that survive copy-paste from Word, web pages and chat apps; they
# make two visually identical names compare unequal, and bidi overrides can disguise text.
_INVISIBLE = frozenset(
    [chr(c) for c in range(0x200B, 0x2010)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2060, 0x2065)]
    + [chr(c) for c in range(0x2066, 0x206A)]
    + ["\ufeff"]
)

# Punctuation a Vietnamese (or ethnic-minority, e.g. "H'Hen Niê") name may contain.
# U+2019 is the apostrophe that phones and word processors substitute for "'".
_NAME_PUNCTUATION = frozenset("'\u2019-.")

_ASCII_DIGITS = re.compile(r"[0-9]+")
# Spreadsheet-mangled integers: "46153060816.0" (a float printed by pandas/openpyxl) and
# "4.6153060816E+10" (Excel's scientific display).
# Only a single ".0": "046153060.000" is more likely a grouped number than a float.
_TRAILING_POINT_ZERO = re.compile(r"([0-9]+)\.0")
_SCIENTIFIC = re.compile(r"([0-9])(?:\.([0-9]+))?[eE]\+?([0-9]{1,2})")


# Anything clean_text would change: whitespace other than a single inner space,
# control characters, invisible characters. Text without any (and already NFC) is
# returned as it is, which is most of a spreadsheet.
_NEEDS_CLEANING = re.compile(
    "[^\\S ]|  |^ | $|[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)


def clean_text(value: str | None, *, max_len: int | None = None) -> str:
    """Return `value` NFC-normalised, without invisible characters, whitespace collapsed."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"clean_text expects str or None, not {type(value).__name__}")
    if not _NEEDS_CLEANING.search(value) and unicodedata.is_normalized("NFC", value):
        if max_len is not None and len(value) > max_len:
            raise TextTooLong(f"text is {len(value)} characters long, the limit is {max_len}")
        return value
    kept: list[str] = []
    for char in value:
        if char in _INVISIBLE:
            continue
        # isspace() before the Cc test so that \t, \r, \n become a word break, not glue.
        if char.isspace():
            kept.append(" ")
        elif unicodedata.category(char) != "Cc":
            kept.append(char)
    # Normalise after filtering: a removed zero-width char may have separated a letter
    # from its combining mark, which NFC can only compose once they are adjacent.
    text = " ".join(unicodedata.normalize("NFC", "".join(kept)).split())
    if max_len is not None and len(text) > max_len:
        raise TextTooLong(f"text is {len(text)} characters long, the limit is {max_len}")
    return text


def clean_name(value: str | None) -> str:
    """Return a cleaned person's name or raise InvalidName.

    Rule: after clean_text, every character must be a letter (Unicode category L*), a
    combining mark (M*), a space, or one of the punctuation marks ' ’ - . ; and at least one
    letter is required. Digits, symbols (S*, which includes emoji) and any other punctuation
    are refused. Longer than 200 characters raises TextTooLong.
    """
    name = clean_text(value, max_len=NAME_MAX_LEN)
    if not name:
        raise InvalidName("name is empty")
    has_letter = False
    for char in name:
        category = unicodedata.category(char)
        if category.startswith("L"):
            has_letter = True
        elif not (category.startswith("M") or char == " " or char in _NAME_PUNCTUATION):
            raise InvalidName(f"name contains a character not allowed in names: {char!r}")
    if not has_letter:
        raise InvalidName("name contains no letter")
    return name


@functools.lru_cache(maxsize=8192)
def fold(value: str) -> str:
    """Return the accent-free, case-free search key of `value` ("Nguyễn" -> "nguyen")."""
    text = clean_text(value).casefold()
    # đ is a letter in its own right, not d + a mark, so NFD does not decompose it.
    text = text.replace("đ", "d")
    decomposed = unicodedata.normalize("NFD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.category(c).startswith("M"))
    return " ".join(stripped.split())


def name_keys(full_name: str) -> tuple[str, str]:
    """Return a name's two search keys: folded, and folded from the given name on.

    "Nguyễn Thị Hoa" gives ("nguyen thi hoa", "hoa nguyen thi"): Vietnamese names end
    with the given name, which is what people search by.
    """
    # Word by word: fold() caches its answers, and a million names are made of a few
    # thousand words, so a roster or a generated country hits the cache almost always.
    # split() breaks at exactly the characters clean_text turns into spaces, so folding
    # each piece and dropping those that fold to nothing gives exactly fold(full_name).
    words = [key for key in map(fold, full_name.split()) if key]
    if len(words) < 2:
        return " ".join(words), " ".join(words)
    return " ".join(words), " ".join([words[-1], *words[:-1]])


def given_key(full_name: str) -> str:
    """Return the folded name starting from the given name: "hoa nguyen thi"."""
    return name_keys(full_name)[1]


def normalize_header(value: str | None) -> str:
    """Return a spreadsheet header cleaned and case-folded, diacritics kept."""
    # casefold() can emit decomposed sequences (e.g. "ǰ"), hence NFC afterwards.
    return unicodedata.normalize("NFC", clean_text(value).casefold())


def _excel_integer_text(text: str) -> str | None:
    """Return the digits of a spreadsheet-printed integer ("123.0", "1.23E+2"), else None."""
    match = _TRAILING_POINT_ZERO.fullmatch(text)
    if match:
        return match.group(1)
    match = _SCIENTIFIC.fullmatch(text)
    if not match:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the regex admits only valid decimals
        return None
    if number != number.to_integral_value():
        raise ValueError("not an integer")
    digits = str(int(number))
    mantissa = match.group(1) + (match.group(2) or "")
    # Excel displays "4.61531E+10" for 46153060816: an exact-looking integer whose last
    # digits were rounded away. Accept only a mantissa that carries every digit.
    if len(mantissa) != len(digits):
        raise ValueError("digits lost to scientific notation")
    return digits


def _integer_text(value: str | int | float, error: type[TextError], what: str) -> str:
    """Return `value` as cleaned text, undoing spreadsheet number formatting."""
    if isinstance(value, bool):
        raise error(f"{what} must be text or a whole number, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise error(f"{what} cannot be negative")
        return str(value)
    if isinstance(value, float):
        # An exact whole float (openpyxl may return 46153060816.0) is safe below 2**53.
        if not value.is_integer() or not 0 <= value < 2**53:
            raise error(f"{what} is not a whole number")
        return str(int(value))
    if not isinstance(value, str):
        raise error(f"{what} must be text or a whole number")
    text = clean_text(value)
    # Excel's "treat as text" prefix sometimes leaks into CSV exports.
    if text.startswith("'"):
        text = text[1:].strip()
    try:
        digits = _excel_integer_text(text)
    except ValueError as exc:
        # No value in the message: these are personal data and messages end up in logs.
        raise error(f"{what} is a rounded spreadsheet number ({exc})") from None
    return text if digits is None else digits


def normalize_id_number(value: str | int | float | None) -> str | None:
    """Return a CCCD (12 digits) or CMND (9 digits) as digits, restoring a lost leading 0."""
    if value is None:
        return None
    text = _integer_text(value, InvalidIdNumber, "ID number")
    digits = re.sub(r"[ .\-]", "", text)
    if not digits:
        return None
    if not _ASCII_DIGITS.fullmatch(digits):
        raise InvalidIdNumber("ID number must contain only digits")
    # Spreadsheets store IDs as numbers and drop the leading 0 (every CCCD starts with a
    # 0: province codes are 001-096; many CMNDs too). 11 or 8 digits that still start with
    # 0 were not stored as a number: a digit was mistyped, and guessing would be wrong.
    if len(digits) in (8, 11) and not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) not in (9, 12):
        raise InvalidIdNumber(f"ID number has {len(digits)} digits, expected 12 (CCCD) or 9")
    if digits.strip("0") == "":
        raise InvalidIdNumber("ID number cannot be all zeros")
    return digits


def _check_id_shape(id_number: str) -> None:
    """Raise InvalidIdNumber unless `id_number` is 9 or 12 ASCII digits."""
    if not (
        isinstance(id_number, str)
        and _ASCII_DIGITS.fullmatch(id_number)
        and len(id_number) in (9, 12)
    ):
        raise InvalidIdNumber("expected a normalised 12-digit CCCD or 9-digit CMND")


def id_number_kind(id_number: str) -> str:
    """Return "cccd" for a 12-digit ID and "cmnd" for a 9-digit one."""
    _check_id_shape(id_number)
    return "cccd" if len(id_number) == 12 else "cmnd"


def cccd_birth_digits(gender: str, birth_year: int) -> str:
    """Return a CCCD's digits 4-6 for a gender and birth year: what cccd_facts reads back."""
    if not 1900 <= birth_year <= 2399:
        raise ValueError("a CCCD encodes birth years 1900-2399")
    century, year = divmod(birth_year - 1900, 100)
    return f"{century * 2 + (1 if gender == 'female' else 0)}{year:02d}"


def cccd_facts(cccd: str) -> tuple[str, int] | None:
    """Return (gender, birth_year) encoded in a CCCD's digits 4-6, or None for a CMND."""
    if id_number_kind(cccd) == "cmnd":
        return None
    # Digit 4: even = male, odd = female; pairs step the century from 1900 upwards.
    code = int(cccd[3])
    gender = "female" if code % 2 else "male"
    birth_year = 1900 + (code // 2) * 100 + int(cccd[4:6])
    return gender, birth_year


_GENDER_WORDS = {"male": "male", "nam": "male", "female": "female", "nu": "female"}


def cccd_mismatch(cccd: str, *, gender: str, birth_year: int | None) -> str | None:
    """Describe how a CCCD contradicts the roster's gender and birth year, or return None."""
    facts = cccd_facts(cccd)
    if facts is None:
        return None
    cccd_gender, cccd_year = facts
    problems = []
    # Accept the Vietnamese words too, as rosters spell gender "Nam"/"Nữ"; blank or
    # unknown values cannot be checked and are not a contradiction.
    roster_gender = _GENDER_WORDS.get(fold(gender or ""))
    if roster_gender and roster_gender != cccd_gender:
        problems.append(f"CCCD says {cccd_gender}, roster says {roster_gender}")
    if birth_year is not None and birth_year != cccd_year:
        problems.append(f"CCCD says born {cccd_year}, roster says {birth_year}")
    return "; ".join(problems) or None


def normalize_phone(value: str | int | float | None) -> str | None:
    """Return a Vietnamese mobile number as 10 digits starting with 0, or None if empty."""
    if value is None:
        return None
    text = _integer_text(value, InvalidPhone, "phone number")
    digits = re.sub(r"[ .\-()]", "", text)
    if not digits:
        return None
    if digits.startswith("+84"):
        digits = digits[3:]
        # "+84 (0)928..." once its parentheses are stripped: the trunk 0 was kept.
        if not (digits.startswith("0") and len(digits) == 10):
            digits = "0" + digits
    elif digits.startswith("84") and len(digits) == 11:
        digits = "0" + digits[2:]
    if not _ASCII_DIGITS.fullmatch(digits):
        raise InvalidPhone("phone number must contain only digits")
    # Excel stores phone numbers as numbers too and drops the leading 0; 9 digits that
    # start with 0 (or "+84" + 8 digits) are a digit short instead.
    if len(digits) == 9 and not digits.startswith("0"):
        digits = "0" + digits
    if len(digits) != 10 or not digits.startswith("0"):
        raise InvalidPhone("phone number must be 10 digits starting with 0")
    return digits


def mask_id(id_number: str | None) -> str:
    """Return the ID with every character but the last 4 replaced by "*"."""
    if not id_number:
        return ""
    if len(id_number) <= 4:
        return "*" * len(id_number)
    return "*" * (len(id_number) - 4) + id_number[-4:]


def mask_phone(phone: str | None) -> str:
    """Return the phone number with all but its first 3 and last 3 digits replaced by "*"."""
    if not phone:
        return ""
    if len(phone) <= 6:
        return "*" * len(phone)
    return phone[:3] + "*" * (len(phone) - 6) + phone[-3:]


def _initial(word: str) -> str:
    """Return the first letter of `word` upper-cased, with any combining marks it carries."""
    end = 1
    while end < len(word) and unicodedata.category(word[end]).startswith("M"):
        end += 1
    return unicodedata.normalize("NFC", word[:end].upper())


def mask_name(full_name: str) -> str:
    """Return the given name with the other words reduced to initials ("L. T. Hương")."""
    words = clean_text(full_name).split(" ")
    if words == [""]:
        return ""
    # The given name is the last word in Vietnamese order; it alone identifies nobody.
    return " ".join([f"{_initial(w)}." for w in words[:-1]] + [words[-1]])


@dataclass(frozen=True)
class CccdQr:
    """The fields of the QR code printed on a Vietnamese chip-based CCCD card."""

    id_number: str
    old_id_number: str | None
    full_name: str
    date_of_birth: date
    gender: str
    address: str
    issue_date: date | None


_QR_DATE = re.compile(r"([0-9]{2})/?([0-9]{2})/?([0-9]{4})")


def _qr_date(text: str, what: str) -> date:
    """Return the date in a QR field written ddmmyyyy or dd/mm/yyyy."""
    match = _QR_DATE.fullmatch(text)
    # Separators must be both present or both absent: "12/031990" is a garbled read.
    if not match or text.count("/") not in (0, 2):
        raise InvalidQr(f"{what} is not a date ddmmyyyy")
    day, month, year = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise InvalidQr(f"{what} is not a valid calendar date") from None


def _qr_gender(text: str) -> str:
    """Return "male"/"female" for the QR gender field, "" if the scanner garbled it."""
    return {"nam": "male", "nu": "female"}.get(fold(text), "")


def _is_old_id(field: str) -> bool:
    """Return whether a QR field can be the old CMND slot: empty or 9 digits."""
    return field == "" or (len(field) == 9 and bool(_ASCII_DIGITS.fullmatch(field)))


def parse_cccd_qr(text: str, *, today: date | None = None) -> CccdQr:
    """Parse the text of a CCCD card's QR code or raise InvalidQr.

    Layouts accepted (fields separated by "|", each stripped of surrounding spaces):
    ID|old ID|name|dob|gender|address|issue (7 fields, old ID empty or 9 digits),
    ID|name|dob|gender|address|issue (6 fields), and either with one extra trailing field.
    Dates are ddmmyyyy or dd/mm/yyyy. `today` is for tests; it defaults to date.today().
    """
    if not isinstance(text, str):
        raise InvalidQr("QR content must be text")
    if len(text) > QR_MAX_LEN:
        raise InvalidQr(f"QR text is longer than {QR_MAX_LEN} characters")
    # Keyboard-wedge scanners end the read with Enter; anything else non-printable means
    # the read is corrupt or is not from a card.
    body = text.rstrip("\r\n")
    if any(unicodedata.category(c) == "Cc" for c in body):
        raise InvalidQr("QR text contains control characters")
    fields = [clean_text(f) for f in body.split("|")]

    if len(fields) in (7, 8) and _is_old_id(fields[1]):
        id_field, old_id, name, dob, gender, address, issue = fields[:7]
    elif len(fields) in (6, 7):
        # 7 fields whose second is not an old ID: the 6-field layout plus a trailing extra.
        id_field, name, dob, gender, address, issue = fields[:6]
        old_id = ""
    else:
        raise InvalidQr(f"QR text has {len(fields)} fields, expected 6 or 7")

    if not (len(id_field) == 12 and _ASCII_DIGITS.fullmatch(id_field)):
        raise InvalidQr("CCCD number in the QR code is not 12 digits")
    if not name:
        raise InvalidQr("QR code has no name")
    date_of_birth = _qr_date(dob, "date of birth")
    if date_of_birth > (today or date.today()):
        raise InvalidQr("date of birth is in the future")
    issue_date = _qr_date(issue, "issue date") if issue else None
    if issue_date is not None and issue_date < date_of_birth:
        raise InvalidQr("issue date is before the date of birth")

    return CccdQr(
        id_number=id_field,
        old_id_number=old_id or None,
        full_name=name,
        date_of_birth=date_of_birth,
        gender=_qr_gender(gender),
        address=address,
        issue_date=issue_date,
    )
