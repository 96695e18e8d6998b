"""Reading the ministry's roster file (CSV or XLSX) into checked rows.

The format is in shared/data/roster-format.md. This module only reads and checks:
it streams the file row by row (bounded memory), matches headers in any order,
and turns every row into either a ``RosterRow`` or a list of ``RowProblem``. What
the rows do to the database is ``terminal.services.roster``'s job.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from terminal.models import BeneficiaryStatus, Category, Gender, PaymentMethod, Provider
from terminal.money import InvalidAmount, parse_vnd
from terminal.services.errors import InvalidInput
from terminal.text import (
    TextError,
    cccd_mismatch,
    clean_name,
    clean_text,
    fold,
    id_number_kind,
    normalize_header,
    normalize_id_number,
    normalize_phone,
)

# key -> the header of roster-format.md; the key itself is accepted as an alias.
COLUMNS: dict[str, str] = {
    "code": "Mã đối tượng",
    "full_name": "Họ và tên",
    "date_of_birth": "Ngày sinh",
    "gender": "Giới tính",
    "id_number": "Số CCCD/CMND",
    "phone": "Số điện thoại",
    "district": "Huyện",
    "commune": "Xã/Phường",
    "village": "Thôn/Tổ",
    "category": "Diện đối tượng",
    "monthly_amount": "Mức hưởng",
    "arrears": "Truy lĩnh",
    "payment_method": "Hình thức nhận",
    "provider": "Đơn vị chi trả",
    "account_no": "Số tài khoản",
    "proxy_name": "Người nhận thay",
    "proxy_id_number": "CCCD người nhận thay",
    "proxy_relationship": "Quan hệ",
    "proxy_valid_from": "Ủy quyền từ ngày",
    "proxy_valid_until": "Ủy quyền đến ngày",
    "status": "Trạng thái",
}
REQUIRED = (
    "code",
    "full_name",
    "date_of_birth",
    "gender",
    "district",
    "commune",
    "category",
    "monthly_amount",
    "payment_method",
    "provider",
)
HEADER_KEYS: dict[str, str] = {}
for _key, _label in COLUMNS.items():
    HEADER_KEYS[normalize_header(_label)] = _key
    HEADER_KEYS[normalize_header(_key)] = _key
# "Uỷ" and "Ủy" are both common spellings: match the folded header too.
FOLDED_HEADER_KEYS = {fold(label): key for key, label in COLUMNS.items()}

CATEGORIES = {
    "tre em mo coi": Category.ORPHAN,
    "nguoi khuyet tat nang": Category.DISABLED_SEVERE,
    "nguoi khuyet tat dac biet nang": Category.DISABLED_EXTREME,
    "nguoi cao tuoi tu 80 tuoi": Category.ELDERLY_80,
    "khac": Category.OTHER,
}
GENDERS = {"nam": Gender.MALE, "nu": Gender.FEMALE, "male": Gender.MALE, "female": Gender.FEMALE}
METHODS = {"tien mat": PaymentMethod.CASH, "tai khoan": PaymentMethod.ACCOUNT}
PROVIDERS = {
    "buu dien": Provider.POST,
    "viettel pay": Provider.VIETTEL_PAY,
    "viettelpay": Provider.VIETTEL_PAY,
    "vietinbank": Provider.VIETINBANK,
}
STATUSES = {
    "": BeneficiaryStatus.ACTIVE,
    "dang huong": BeneficiaryStatus.ACTIVE,
    "tam dung": BeneficiaryStatus.SUSPENDED,
    "da chet": BeneficiaryStatus.DECEASED,
    "chuyen di": BeneficiaryStatus.MOVED,
}
GUARDIAN_RELATIONSHIPS = {"nguoi giam ho", "giam ho"}

CODE_RE = re.compile(r"^[A-Z0-9][A-Z0-9._/-]{0,31}$")
ACCOUNT_RE = re.compile(r"^[0-9A-Za-z.-]{4,32}$")
DATE_RE = re.compile(r"^(\d{1,2})[/.-](\d{1,2})[/.-](\d{4})$")
YEAR_RE = re.compile(r"^(\d{4})(?:\.0)?$")

MAX_ROWS = 5_000_000
MAX_XLSX_UNPACKED = 512 * 1024 * 1024  # a real province list unpacks to tens of MB
MAX_XLSX_RATIO = 200  # compressed XML compresses ~10-20x; a bomb, thousands
CSV_CELL_LIMIT = 4096  # no roster cell comes near this; a 10 MB cell is refused at once


class RosterFileError(InvalidInput):
    """The file itself cannot be read as a roster (not one row's problem)."""

    code = "roster_file_invalid"


@dataclass(frozen=True)
class RowProblem:
    """A rejected row's column and reason, or a data error to follow up."""

    row: int
    column: str
    reason: str
    code: str | None = None

    def line(self) -> str:
        """Return the problem as one line for a person."""
        who = f" ({self.code})" if self.code else ""
        return f"row {self.row}{who}, {self.column}: {self.reason}"


@dataclass
class RosterRow:
    """One checked row of the roster."""

    row: int
    code: str
    full_name: str
    date_of_birth: date | None
    birth_year: int
    gender: Gender
    id_number: str | None
    phone: str | None
    district: str
    commune: str
    village: str
    category: Category
    monthly_vnd: int
    arrears_vnd: int
    payment_method: PaymentMethod
    provider: Provider
    account_no: str | None
    proxy_name: str | None
    proxy_id_number: str | None
    proxy_relationship: str | None
    proxy_valid_from: date | None
    proxy_valid_until: date | None
    status: BeneficiaryStatus
    flags: list[str] = field(default_factory=list)

    @property
    def has_proxy(self) -> bool:
        """Tell whether someone collects for this beneficiary."""
        return self.proxy_name is not None

    @property
    def proxy_is_guardian(self) -> bool:
        """Tell whether the proxy is a legal guardian."""
        return is_guardian(self.proxy_relationship)


def is_guardian(relationship: str | None) -> bool:
    """Tell whether a proxy's relationship on the roster makes them a legal guardian."""
    return fold(relationship or "") in GUARDIAN_RELATIONSHIPS


class _FieldError(Exception):
    """A cell that cannot be accepted."""

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(reason)
        self.key = key
        self.reason = reason


# ---- reading the file ------------------------------------------------------------


@dataclass
class RosterSource:
    """An opened roster: its header and an iterator over (row number, cells)."""

    header: list[str]
    rows: Iterator[tuple[int, list[Any]]]
    progress: Callable[[], float]
    close: Callable[[], None]


def open_roster(path: Path, filename: str | None = None) -> RosterSource:
    """Open a CSV or XLSX roster, refusing files that are not one."""
    name = (filename or path.name).lower()
    if name.endswith(".csv"):
        return _open_csv(path)
    if name.endswith(".xlsx"):
        return _open_xlsx(path)
    raise RosterFileError("unknown file type: give a .csv or .xlsx file", code="roster_file_type")


def _open_csv(path: Path) -> RosterSource:
    """Open a UTF-8 CSV (with or without BOM) whose delimiter is ',' or ';'."""
    raw = path.open("rb")
    try:
        head = raw.read(65536)
        if not head.strip(b"\xef\xbb\xbf \r\n\t"):
            raise RosterFileError("the file is empty", code="roster_file_empty")
        if b"\x00" in head:
            raise RosterFileError("this is not a text CSV file", code="roster_file_unreadable")
        first_line = head.split(b"\n", 1)[0]
        try:
            codecs.getincrementaldecoder("utf-8")().decode(first_line.removeprefix(codecs.BOM_UTF8))
        except UnicodeDecodeError:
            raise RosterFileError(
                "the file is not UTF-8 text: save it as 'CSV UTF-8'", code="roster_file_encoding"
            ) from None
        delimiter = ";" if first_line.count(b";") > first_line.count(b",") else ","
        raw.seek(0)
        text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="strict", newline="")
    except BaseException:
        raw.close()
        raise
    size = max(path.stat().st_size, 1)
    reader = csv.reader(text, delimiter=delimiter, strict=False)

    def rows() -> Iterator[list[str]]:
        limit = csv.field_size_limit()
        csv.field_size_limit(CSV_CELL_LIMIT)
        try:
            yield from reader
        except csv.Error as exc:
            raise RosterFileError(
                f"the CSV cannot be read near line {reader.line_num}: {exc}",
                code="roster_file_unreadable",
                detail=f"CSV, line {reader.line_num}",
            ) from None
        except UnicodeDecodeError:
            raise RosterFileError(
                f"the file is not UTF-8 text (line {reader.line_num}): save it as 'CSV UTF-8'",
                code="roster_file_encoding",
                detail=f"line {reader.line_num}",
            ) from None
        finally:
            csv.field_size_limit(limit)

    iterator = rows()
    header = next(iterator, None)
    if header is None or not any(cell.strip() for cell in header):
        raw.close()
        raise RosterFileError("the file is empty", code="roster_file_empty")

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        for number, cells in enumerate(iterator, start=2):
            yield number, list(cells)

    def progress() -> float:
        try:
            return min(raw.tell() / size, 1.0)
        except (OSError, ValueError):
            return 1.0

    return RosterSource(header=list(header), rows=numbered(), progress=progress, close=raw.close)


def _open_xlsx(path: Path) -> RosterSource:
    """Open the first sheet of an Excel workbook read-only, refusing zip bombs."""
    from openpyxl import load_workbook

    if not zipfile.is_zipfile(path):
        raise RosterFileError("this is not an Excel .xlsx file", code="roster_file_unreadable")
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            names = {m.filename for m in members}
            unpacked = sum(m.file_size for m in members)
            worst = max((m.file_size / max(m.compress_size, 1) for m in members), default=0)
    except (zipfile.BadZipFile, OSError, ValueError):
        raise RosterFileError(
            "this is not an Excel .xlsx file", code="roster_file_unreadable"
        ) from None
    if "xl/workbook.xml" not in names:
        raise RosterFileError("this is not an Excel .xlsx file", code="roster_file_unreadable")
    if unpacked > MAX_XLSX_UNPACKED or worst > MAX_XLSX_RATIO:
        raise RosterFileError(
            "the workbook unpacks to far more than a roster could hold; refused",
            code="roster_file_unreadable",
        )
    try:
        book = load_workbook(path, read_only=True, data_only=True)
        sheet = book.worksheets[0]
        total = sheet.max_row or 0
        iterator = sheet.iter_rows(values_only=True)
        header = next(iterator, None)
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        raise RosterFileError(
            f"the workbook cannot be read: {type(exc).__name__}", code="roster_file_unreadable"
        ) from None
    if header is None or not any(cell not in (None, "") for cell in header):
        book.close()
        raise RosterFileError("the file is empty", code="roster_file_empty")
    seen = [1]

    def numbered() -> Iterator[tuple[int, list[Any]]]:
        try:
            for number, cells in enumerate(iterator, start=2):
                seen[0] = number
                yield number, list(cells)
        except Exception as exc:  # a damaged sheet part
            raise RosterFileError(
                f"the workbook cannot be read near row {seen[0]}: {type(exc).__name__}",
                code="roster_file_unreadable",
            ) from None

    def progress() -> float:
        return min(seen[0] / total, 1.0) if total else 0.0

    return RosterSource(
        header=["" if c is None else str(c) for c in header],
        rows=numbered(),
        progress=progress,
        close=book.close,
    )


def map_header(header: list[str]) -> tuple[dict[str, int], list[str]]:
    """Return column positions by key, and the headers that were ignored."""
    positions: dict[str, int] = {}
    ignored = []
    for index, cell in enumerate(header):
        label = normalize_header(str(cell)) if cell is not None else ""
        if not label:
            continue
        key = HEADER_KEYS.get(label) or FOLDED_HEADER_KEYS.get(fold(label))
        if key is None:
            ignored.append(clean_text(str(cell))[:60])
            continue
        if key in positions:
            raise RosterFileError(
                f"the column '{COLUMNS[key]}' appears twice",
                code="roster_file_duplicate_column",
                detail=COLUMNS[key],
            )
        positions[key] = index
    missing = [COLUMNS[key] for key in REQUIRED if key not in positions]
    if missing:
        raise RosterFileError(
            "required columns missing: " + ", ".join(missing),
            code="roster_file_columns",
            detail=", ".join(missing),
        )
    return positions, ignored


# ---- checking one row ------------------------------------------------------------


@lru_cache(maxsize=16384)
def _clean_cell(value: str) -> str:
    """Return a text cell cleaned; most cells of a roster (places, labels) repeat."""
    return clean_text(value)


def _cell_text(value: Any) -> str:
    """Return a cell as clean text; Excel numbers that are whole print without '.0'."""
    if type(value) is str:
        return _clean_cell(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    return clean_text(str(value))


def _text(key: str, value: Any, *, max_len: int, required: bool = False) -> str:
    """Return a cleaned text cell within a length."""
    text = _cell_text(value)
    if required and not text:
        raise _FieldError(key, "empty")
    if len(text) > max_len:
        raise _FieldError(key, f"longer than {max_len} characters")
    return text


_fold_label = lru_cache(maxsize=4096)(fold)


def _choice(key: str, value: Any, table: dict[str, Any], allowed: str) -> Any:
    """Return the enum a cell names, matched without accents or case."""
    text = _fold_label(_cell_text(value))
    if text in table:
        return table[text]
    for member in table.values():
        if text == member.value:
            return member
    raise _FieldError(key, f"must be one of: {allowed}")


def _date(key: str, value: Any) -> date:
    """Return a dd/mm/yyyy cell (or an Excel date) as a date."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = _cell_text(value)
    match = DATE_RE.match(text)
    if not match:
        raise _FieldError(key, "not a date in dd/mm/yyyy form")
    day, month, year = (int(g) for g in match.groups())
    try:
        return date(year, month, day)
    except ValueError:
        raise _FieldError(key, "not a real date") from None


def _birth(value: Any, today: date) -> tuple[date | None, int]:
    """Return a birth date (or None) and year from dd/mm/yyyy or a bare year."""
    if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
        value = str(int(value))
    text = _cell_text(value) if not isinstance(value, date) else value
    if isinstance(text, str):
        year_only = YEAR_RE.match(text)
        if year_only:
            year = int(year_only.group(1))
            if not 1880 <= year <= today.year:
                raise _FieldError("date_of_birth", "year of birth out of range")
            return None, year
        if not text:
            raise _FieldError("date_of_birth", "empty")
    born = _date("date_of_birth", value)
    if born > today or born.year < 1880:
        raise _FieldError("date_of_birth", "date of birth in the future or before 1880")
    return born, born.year


def _amount(key: str, value: Any, *, allow_zero: bool) -> int:
    """Return a whole number of đồng from a cell."""
    if isinstance(value, float):
        if not value.is_integer():
            raise _FieldError(key, "not a whole number of đồng")
        value = int(value)
    try:
        return parse_vnd(
            value if not isinstance(value, str) else value.strip(), allow_zero=allow_zero
        )
    except InvalidAmount as exc:
        raise _FieldError(key, str(exc)) from None


@lru_cache(maxsize=8)
def column_parsers(today: date) -> dict[str, Callable[[Any], Any]]:
    """Return each column's check of one stripped cell: the one definition both paths use."""
    return {
        "code": _code,
        "full_name": lambda v: _name("full_name", v),
        "date_of_birth": lambda v: _birth(v, today),
        "gender": lambda v: _choice("gender", v, GENDERS, "Nam, Nữ"),
        "id_number": lambda v: normalize_id_number(v if v != "" else None),
        "phone": lambda v: normalize_phone(v if v != "" else None),
        "district": lambda v: _text("district", v, max_len=120, required=True),
        "commune": lambda v: _text("commune", v, max_len=120, required=True),
        "village": lambda v: _text("village", v, max_len=120),
        "category": lambda v: _choice(
            "category",
            v,
            CATEGORIES,
            "Trẻ em mồ côi, Người khuyết tật nặng, Người khuyết tật đặc biệt nặng, "
            "Người cao tuổi từ 80 tuổi, Khác",
        ),
        "monthly_amount": lambda v: _amount("monthly_amount", v, allow_zero=False),
        "arrears": lambda v: 0 if v in (None, "") else _amount("arrears", v, allow_zero=True),
        "payment_method": lambda v: _choice("payment_method", v, METHODS, "Tiền mặt, Tài khoản"),
        "provider": lambda v: _choice(
            "provider", v, PROVIDERS, "Bưu điện, Viettel Pay, VietinBank"
        ),
        "account_no": _account,
        "proxy_name": lambda v: _name("proxy_name", v) if _cell_text(v) else None,
        "proxy_id_number": lambda v: normalize_id_number(v if v != "" else None),
        "proxy_relationship": lambda v: _text("proxy_relationship", v, max_len=60),
        "proxy_valid_from": lambda v: _date("proxy_valid_from", v) if _cell_text(v) else None,
        "proxy_valid_until": lambda v: _date("proxy_valid_until", v) if _cell_text(v) else None,
        "status": lambda v: _choice(
            "status", v, STATUSES, "Đang hưởng, Tạm dừng, Đã chết, Chuyển đi"
        ),
    }


def check_row(
    number: int, cells: list[Any], positions: dict[str, int], today: date
) -> RosterRow | list[RowProblem]:
    """Check one row; return it cleaned, or every problem found in it."""
    problems: list[_FieldError] = []

    def cell(key: str) -> Any:
        index = positions.get(key)
        if index is None or index >= len(cells):
            return None
        value = cells[index]
        return value.strip() if isinstance(value, str) else value

    def take(key: str, parse: Callable[[Any], Any]) -> Any:
        try:
            return parse(cell(key))
        except _FieldError as exc:
            problems.append(exc)
        except TextError as exc:
            problems.append(_FieldError(key, str(exc)))
        return None

    parse = column_parsers(today)
    code = take("code", parse["code"])
    full_name = take("full_name", parse["full_name"])
    birth = take("date_of_birth", parse["date_of_birth"])
    gender = take("gender", parse["gender"])
    id_number = take("id_number", parse["id_number"])
    phone = take("phone", parse["phone"])
    district = take("district", parse["district"])
    commune = take("commune", parse["commune"])
    village = take("village", parse["village"])
    category = take("category", parse["category"])
    monthly = take("monthly_amount", parse["monthly_amount"])
    arrears = take("arrears", parse["arrears"])
    method = take("payment_method", parse["payment_method"])
    provider = take("provider", parse["provider"])
    account_no = take("account_no", parse["account_no"])
    proxy_name = take("proxy_name", parse["proxy_name"])
    proxy_id = take("proxy_id_number", parse["proxy_id_number"])
    relationship = take("proxy_relationship", parse["proxy_relationship"])
    valid_from = take("proxy_valid_from", parse["proxy_valid_from"])
    valid_until = take("proxy_valid_until", parse["proxy_valid_until"])
    status = take("status", parse["status"])

    if method is PaymentMethod.ACCOUNT and not account_no and "account_no" not in _keys(problems):
        problems.append(_FieldError("account_no", "required when the payment method is Tài khoản"))
    if proxy_name:
        if not proxy_id and "proxy_id_number" not in _keys(problems):
            problems.append(
                _FieldError("proxy_id_number", "required when someone collects for them")
            )
        if not relationship and "proxy_relationship" not in _keys(problems):
            problems.append(
                _FieldError("proxy_relationship", "required when someone collects for them")
            )
        if not valid_from and "proxy_valid_from" not in _keys(problems):
            problems.append(
                _FieldError("proxy_valid_from", "required when someone collects for them")
            )
        if valid_from and valid_until and valid_until < valid_from:
            problems.append(_FieldError("proxy_valid_until", "ends before it starts"))
    elif any(cell(k) not in (None, "") for k in ("proxy_id_number", "proxy_valid_from")):
        problems.append(_FieldError("proxy_name", "a proxy's ID or dates are given without a name"))

    if problems:
        code_text = code if isinstance(code, str) else None
        return [RowProblem(number, COLUMNS[p.key], p.reason, code_text) for p in problems]

    born, birth_year = birth
    row = RosterRow(
        row=number,
        code=code,
        full_name=full_name,
        date_of_birth=born,
        birth_year=birth_year,
        gender=gender,
        id_number=id_number,
        phone=phone,
        district=district,
        commune=commune,
        village=village or "",
        category=category,
        monthly_vnd=monthly,
        arrears_vnd=arrears,
        payment_method=method,
        provider=provider,
        account_no=account_no or None,
        proxy_name=proxy_name,
        proxy_id_number=proxy_id if proxy_name else None,
        proxy_relationship=relationship if proxy_name else None,
        proxy_valid_from=valid_from if proxy_name else None,
        proxy_valid_until=valid_until if proxy_name else None,
        status=status,
    )
    row.flags = data_errors(row, today)
    return row


def _keys(problems: list[_FieldError]) -> set[str]:
    """Return the columns already reported for a row."""
    return {p.key for p in problems}


def _code(value: Any) -> str:
    """Return a beneficiary code, upper-cased."""
    text = _text("code", value, max_len=32, required=True).upper()
    if not CODE_RE.match(text):
        raise _FieldError("code", "letters, digits and . _ / - only")
    return text


def _name(key: str, value: Any) -> str:
    """Return a person's name in NFC with spaces tidied."""
    text = _cell_text(value)
    if not text:
        raise _FieldError(key, "empty")
    try:
        return clean_name(text)
    except TextError as exc:
        raise _FieldError(key, str(exc)) from None


def _account(value: Any) -> str | None:
    """Return an account or wallet number, or None when empty."""
    text = _cell_text(value).replace(" ", "")
    if not text:
        return None
    if not ACCOUNT_RE.match(text):
        raise _FieldError("account_no", "not an account number (4-32 letters or digits)")
    return text


def id_number_flag(id_number: str | None, *, gender: str, birth_year: int | None) -> str | None:
    """Return the data error of a CCCD that contradicts the row's gender or birth year."""
    if not id_number or id_number_kind(id_number) != "cccd":
        return None
    contradiction = cccd_mismatch(id_number, gender=gender, birth_year=birth_year)
    return f"{COLUMNS['id_number']}: {contradiction}" if contradiction else None


def data_errors(row: RosterRow, today: date) -> list[str]:
    """Return the problems in a good row that must go back to the ministry for correction."""
    flags = []
    id_flag = id_number_flag(row.id_number, gender=row.gender.value, birth_year=row.birth_year)
    if id_flag:
        flags.append(id_flag)
    if row.proxy_id_number and row.proxy_id_number == row.id_number:
        flags.append(f"{COLUMNS['proxy_id_number']}: same number as the beneficiary's own")
    age = today.year - row.birth_year
    child = row.category is Category.ORPHAN or age < 16
    if (
        child
        and row.status is BeneficiaryStatus.ACTIVE
        and not (row.proxy_name and row.proxy_is_guardian)
    ):
        flags.append(
            f"{COLUMNS['proxy_name']}: a child is paid only through a guardian (Người giám hộ)"
        )
    return flags


def stream_rows(
    source: RosterSource, positions: dict[str, int], today: date
) -> Iterator[tuple[int, RosterRow | list[RowProblem]]]:
    """Yield each non-blank row checked, with its row number."""
    fast = FastRowCheck(positions, today)
    for count, (number, cells) in enumerate(source.rows, start=1):
        if count > MAX_ROWS:
            raise RosterFileError(
                f"more than {MAX_ROWS:,} rows: refused", code="roster_file_too_big"
            )
        if not any(c not in (None, "") and (not isinstance(c, str) or c.strip()) for c in cells):
            continue
        yield number, fast.check(number, cells) or check_row(number, cells, positions, today)


_FAST_CODE = re.compile(r"[A-Z0-9][A-Z0-9._/-]{0,31}")
_FAST_ID = re.compile(r"[0-9]{12}|[0-9]{9}")
_FAST_PHONE = re.compile(r"0[0-9]{9}")
_FAST_ACCOUNT = re.compile(r"[0-9A-Za-z.-]{4,32}")
_FAILED = object()
# Columns whose few distinct values repeat down the file: each is checked once.
_REPEATING = (
    "date_of_birth",
    "gender",
    "district",
    "commune",
    "village",
    "category",
    "monthly_amount",
    "arrears",
    "payment_method",
    "provider",
    "proxy_relationship",
    "proxy_valid_from",
    "proxy_valid_until",
    "status",
)
_MEMO_CAP = 50_000


def _fast_name(text: str) -> str | None:
    """Return a name that clean_name would return unchanged, or None to check it fully."""
    if len(text) > 200 or not unicodedata.is_normalized("NFC", text):
        return None
    for word in text.split(" "):
        if not word.isalpha():  # also refuses "" (two spaces, or one at an end)
            return None
    return text


class FastRowCheck:
    """Accept the ordinary good row quickly; anything else goes through check_row.

    Only text cells in their plain form are accepted here (a code already upper-case,
    a name already NFC with single spaces and letters only, 12 or 9 digits for an
    ID, ten for a phone), and the cells that repeat (places, labels, amounts, dates)
    are checked by check_row's own column checks once per distinct value. A row
    with anything else (or any problem) returns None, so check_row decides it and
    says what is wrong: the result is the same, a roster is read several times faster.
    """

    def __init__(self, positions: dict[str, int], today: date) -> None:
        self.today = today
        self.parsers = column_parsers(today)
        self.index = {key: positions.get(key) for key in COLUMNS}
        self.width = max(positions.values()) + 1 if positions else 0
        self.memo: dict[str, dict[str, Any]] = {key: {} for key in _REPEATING}

    def _repeating(self, key: str, cells: list[Any]) -> Any:
        """Return a repeating column's checked value, or _FAILED."""
        index = self.index[key]
        raw = None if index is None else cells[index]
        if type(raw) is not str:
            return _FAILED
        memo = self.memo[key]
        value = memo.get(raw, memo)
        if value is memo:
            try:
                value = self.parsers[key](raw.strip())
            except (_FieldError, TextError):
                value = _FAILED
            if len(memo) < _MEMO_CAP:
                memo[raw] = value
        return value

    def _text(self, key: str, cells: list[Any]) -> str | None:
        """Return a text cell, "" for an absent column, None for a cell not text."""
        index = self.index[key]
        if index is None:
            return ""
        raw = cells[index]
        return raw if type(raw) is str else None

    def check(self, number: int, cells: list[Any]) -> RosterRow | None:
        """Return the checked row, or None when check_row must look at it."""
        if len(cells) < self.width:
            return None
        code = self._text("code", cells)
        if not code or not _FAST_CODE.fullmatch(code):
            return None
        name = self._text("full_name", cells)
        if not name or _fast_name(name) is None:
            return None
        id_number = self._text("id_number", cells)
        if id_number is None or (id_number and not _fast_id(id_number)):
            return None
        phone = self._text("phone", cells)
        if phone is None or (phone and not _FAST_PHONE.fullmatch(phone)):
            return None
        account = self._text("account_no", cells)
        if account is None or (account and not _FAST_ACCOUNT.fullmatch(account)):
            return None
        proxy_name = self._text("proxy_name", cells)
        if proxy_name is None or (proxy_name and _fast_name(proxy_name) is None):
            return None
        proxy_id = self._text("proxy_id_number", cells)
        if proxy_id is None or (proxy_id and not _fast_id(proxy_id)):
            return None
        values = {}
        for key in _REPEATING:
            value = self._repeating(key, cells)
            if value is _FAILED:
                return None
            values[key] = value
        method = values["payment_method"]
        if method is PaymentMethod.ACCOUNT and not account:
            return None
        relationship = values["proxy_relationship"]
        valid_from = values["proxy_valid_from"]
        valid_until = values["proxy_valid_until"]
        if proxy_name:
            if not proxy_id or not relationship or not valid_from:
                return None
            if valid_until and valid_until < valid_from:
                return None
        elif proxy_id or self._text("proxy_valid_from", cells):
            return None
        born, birth_year = values["date_of_birth"]
        row = RosterRow(
            row=number,
            code=code,
            full_name=name,
            date_of_birth=born,
            birth_year=birth_year,
            gender=values["gender"],
            id_number=id_number or None,
            phone=phone or None,
            district=values["district"],
            commune=values["commune"],
            village=values["village"] or "",
            category=values["category"],
            monthly_vnd=values["monthly_amount"],
            arrears_vnd=values["arrears"],
            payment_method=method,
            provider=values["provider"],
            account_no=account or None,
            proxy_name=proxy_name or None,
            proxy_id_number=proxy_id if proxy_name else None,
            proxy_relationship=relationship if proxy_name else None,
            proxy_valid_from=valid_from if proxy_name else None,
            proxy_valid_until=valid_until if proxy_name else None,
            status=values["status"],
        )
        row.flags = data_errors(row, self.today)
        return row


def _fast_id(text: str) -> bool:
    """Tell whether an ID cell is already 12 or 9 digits, not all zeros."""
    return _FAST_ID.fullmatch(text) is not None and text.strip("0") != ""


# ---- writing a roster (demo files, tests, benchmarks) -----------------------------

LABELS = {
    "gender": {Gender.MALE: "Nam", Gender.FEMALE: "Nữ"},
    "category": {
        Category.ORPHAN: "Trẻ em mồ côi",
        Category.DISABLED_SEVERE: "Người khuyết tật nặng",
        Category.DISABLED_EXTREME: "Người khuyết tật đặc biệt nặng",
        Category.ELDERLY_80: "Người cao tuổi từ 80 tuổi",
        Category.OTHER: "Khác",
    },
    "payment_method": {PaymentMethod.CASH: "Tiền mặt", PaymentMethod.ACCOUNT: "Tài khoản"},
    "provider": {
        Provider.POST: "Bưu điện",
        Provider.VIETTEL_PAY: "Viettel Pay",
        Provider.VIETINBANK: "VietinBank",
    },
    "status": {
        BeneficiaryStatus.ACTIVE: "Đang hưởng",
        BeneficiaryStatus.SUSPENDED: "Tạm dừng",
        BeneficiaryStatus.DECEASED: "Đã chết",
        BeneficiaryStatus.MOVED: "Chuyển đi",
    },
}
_ENUMS = {
    "gender": Gender,
    "category": Category,
    "payment_method": PaymentMethod,
    "provider": Provider,
    "status": BeneficiaryStatus,
}


def roster_cells(person: dict[str, Any]) -> list[str]:
    """Return one person (keys as in synthetic data) as the cells of a roster row."""

    def text(key: str) -> str:
        value = person.get(key)
        if value is None:
            return ""
        if key in _ENUMS:
            return LABELS[key][_ENUMS[key](value)]
        if isinstance(value, date):
            return value.strftime("%d/%m/%Y")
        return str(value)

    values = {key: text(key) for key in COLUMNS}
    if person.get("date_of_birth") is None and person.get("birth_year"):
        values["date_of_birth"] = str(person["birth_year"])
    values["monthly_amount"] = str(person.get("monthly_vnd", person.get("monthly_amount", "")))
    arrears = person.get("arrears_vnd", person.get("arrears")) or 0
    values["arrears"] = str(arrears) if arrears else ""
    return [values[key] for key in COLUMNS]


def write_roster_csv(people: Iterable[dict[str, Any]], path: Path) -> int:
    """Write people as a roster CSV (UTF-8 with BOM, as Excel saves it); return the rows."""
    count = 0
    with path.open("w", encoding="utf-8-sig", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS.values())
        for person in people:
            writer.writerow(roster_cells(person))
            count += 1
    return count
