"""Importing the roster: every rule of shared/data/roster-format.md, on both databases."""

from __future__ import annotations

import csv
import io
import unicodedata
import zipfile
from datetime import date
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlalchemy import func, select

from terminal.models import (
    Beneficiary,
    BeneficiaryStatus,
    Entitlement,
    EntitlementStatus,
    Failure,
    Period,
    PeriodStatus,
    Proxy,
    RosterImport,
)
from terminal.services.audit import verify_chain
from terminal.services.errors import InvalidInput, Refused
from terminal.services.roster import (
    entitlement_vnd,
    import_roster,
    is_owed,
    parse_period,
    period_code,
    period_start,
)
from terminal.services.roster_file import COLUMNS, RosterFileError

# A copy of shared/data/sample-roster.csv, so the suite runs from any clone.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-roster.csv"
TODAY = date(2021, 10, 15)
HEADERS = list(COLUMNS.values())


def person(**overrides):
    """Return one good roster row as a dict keyed by the Vietnamese headers."""
    row = {
        "Mã đối tượng": "TTH0000101",
        "Họ và tên": "Lê Thị Hương",
        "Ngày sinh": "12/10/1953",
        "Giới tính": "Nữ",
        "Số CCCD/CMND": "046153060816",
        "Số điện thoại": "0928816302",
        "Huyện": "Phú Lộc",
        "Xã/Phường": "Lăng Cô",
        "Thôn/Tổ": "Thôn 2",
        "Diện đối tượng": "Người khuyết tật nặng",
        "Mức hưởng": "540000",
        "Truy lĩnh": "",
        "Hình thức nhận": "Tài khoản",
        "Đơn vị chi trả": "Viettel Pay",
        "Số tài khoản": "0465623510",
        "Người nhận thay": "Ngô Thị Dũng",
        "CCCD người nhận thay": "046195867017",
        "Quan hệ": "Con dâu",
        "Ủy quyền từ ngày": "01/01/2021",
        "Ủy quyền đến ngày": "31/12/2026",
        "Trạng thái": "Đang hưởng",
    }
    row.update(overrides)
    return row


def write_csv(path: Path, rows, *, headers=HEADERS, delimiter=",", bom=False) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(headers)
    for row in rows:
        writer.writerow([row.get(h, "") for h in headers])
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + buffer.getvalue().encode("utf-8"))
    return path


def run(session, path, period="2021-10", **kw):
    return import_roster(session, path, period=period, actor="test", today=TODAY, **kw)


def count(session, model, *where):
    return session.scalar(select(func.count()).select_from(model).where(*where))


def test_sample_roster_adds_30_then_30_unchanged(session):
    first = run(session, SAMPLE)
    assert first.counts() == dict(
        added=30, updated=0, unchanged=0, stopped=0, missing=0, rejected=0
    )
    assert first.entitlements_created == 30
    assert count(session, Beneficiary) == 30
    assert count(session, Entitlement) == 30
    second = run(session, SAMPLE)
    assert second.counts() == dict(
        added=0, updated=0, unchanged=30, stopped=0, missing=0, rejected=0
    )
    assert second.entitlements_created == second.entitlements_updated == 0
    assert count(session, Entitlement) == 30
    assert count(session, RosterImport) == 2
    assert verify_chain(session).ok


def test_dry_run_writes_nothing_but_reports_the_same(session):
    dry = run(session, SAMPLE, dry_run=True)
    assert dry.counts()["added"] == 30 and dry.entitlements_created == 30
    assert count(session, Beneficiary) == 0
    assert count(session, Period) == 0
    assert count(session, RosterImport) == 0


def test_csv_with_bom_and_semicolons(session, tmp_path):
    path = write_csv(tmp_path / "r.csv", [person()], delimiter=";", bom=True)
    assert run(session, path).added == 1


def test_headers_in_any_order_case_and_english_aliases(session, tmp_path):
    headers = [
        "  HỌ VÀ TÊN ",
        "code",
        "Ngày sinh",
        "giới tính",
        "Huyện",
        "Xã/Phường",
        "category",
        "Mức hưởng",
        "Hình thức nhận",
        "provider",
        "Số tài khoản",
        "Ghi chú",
    ]
    row = person()
    row.update(
        {
            "  HỌ VÀ TÊN ": row["Họ và tên"],
            "code": row["Mã đối tượng"],
            "giới tính": "Nữ",
            "category": "Người khuyết tật nặng",
            "provider": "Viettel Pay",
            "Ghi chú": "x",
        }
    )
    report = run(session, write_csv(tmp_path / "r.csv", [row], headers=headers))
    assert report.added == 1 and report.rejected == 0
    assert report.ignored_columns == ["Ghi chú"]


def test_nfd_names_stored_nfc_and_spaces_tidied(session, tmp_path):
    nfd = unicodedata.normalize("NFD", "  Nguyễn   Thị  Hoà ")
    run(session, write_csv(tmp_path / "r.csv", [person(**{"Họ và tên": nfd})]))
    stored = session.scalar(select(Beneficiary.full_name))
    assert stored == unicodedata.normalize("NFC", "Nguyễn Thị Hoà")
    assert session.scalar(select(Beneficiary.name_key)) == "nguyen thi hoa"
    assert session.scalar(select(Beneficiary.given_key)) == "hoa nguyen thi"


def test_nfc_and_nfd_never_make_two_beneficiaries(session, tmp_path):
    run(session, write_csv(tmp_path / "a.csv", [person()]))
    nfd = unicodedata.normalize("NFD", "Lê Thị Hương")
    report = run(session, write_csv(tmp_path / "b.csv", [person(**{"Họ và tên": nfd})]))
    assert report.unchanged == 1 and count(session, Beneficiary) == 1


@pytest.mark.parametrize("amount", ["540000", "540.000", "540,000", " 540000 "])
def test_amount_spellings(session, tmp_path, amount):
    run(
        session,
        write_csv(tmp_path / "r.csv", [person(**{"Mức hưởng": amount, "Truy lĩnh": "1.080.000"})]),
    )
    ent = session.scalars(select(Entitlement)).one()
    assert (ent.monthly_vnd, ent.arrears_vnd, ent.amount_vnd) == (540000, 1080000, 1620000)


def test_excel_dropped_leading_zero_is_restored(session, tmp_path):
    run(session, write_csv(tmp_path / "r.csv", [person(**{"Số CCCD/CMND": "46153060816"})]))
    assert session.scalar(select(Beneficiary.id_number)) == "046153060816"


def test_phone_normalised(session, tmp_path):
    run(session, write_csv(tmp_path / "r.csv", [person(**{"Số điện thoại": "+84 928 816 302"})]))
    assert session.scalar(select(Beneficiary.phone)) == "0928816302"


def test_year_only_birth(session, tmp_path):
    row = person(**{"Ngày sinh": "1938", "Số CCCD/CMND": "046138060816"})
    run(session, write_csv(tmp_path / "r.csv", [row]))
    person_row = session.scalars(select(Beneficiary)).one()
    assert person_row.date_of_birth is None and person_row.birth_year == 1938


def test_cccd_contradicting_gender_or_year_is_imported_but_flagged(session, tmp_path):
    row = person(**{"Giới tính": "Nam"})  # digit 4 of 046153... says female
    report = run(session, write_csv(tmp_path / "r.csv", [row]))
    assert report.added == 1
    assert len(report.flags) == 1 and report.flags[0].column == "Số CCCD/CMND"
    stored = session.scalars(select(Beneficiary)).one()
    assert "female" in stored.data_error
    case = session.scalars(select(Failure)).one()
    assert case.reason.value == "data_error" and case.status.value == "open"
    # Importing the same file again opens no second case.
    run(session, write_csv(tmp_path / "r.csv", [row]))
    assert count(session, Failure) == 1


@pytest.mark.parametrize(
    "overrides, column",
    [
        ({"Mã đối tượng": ""}, "Mã đối tượng"),
        ({"Họ và tên": ""}, "Họ và tên"),
        ({"Họ và tên": "Lê Thị <script>"}, "Họ và tên"),
        ({"Ngày sinh": "31/02/1953"}, "Ngày sinh"),
        ({"Ngày sinh": "12/10/2999"}, "Ngày sinh"),
        ({"Ngày sinh": "hôm qua"}, "Ngày sinh"),
        ({"Giới tính": "X"}, "Giới tính"),
        ({"Số CCCD/CMND": "12345"}, "Số CCCD/CMND"),
        ({"Số điện thoại": "12"}, "Số điện thoại"),
        ({"Huyện": ""}, "Huyện"),
        ({"Xã/Phường": ""}, "Xã/Phường"),
        ({"Diện đối tượng": "Giàu có"}, "Diện đối tượng"),
        ({"Mức hưởng": "540.00"}, "Mức hưởng"),
        ({"Mức hưởng": "0"}, "Mức hưởng"),
        ({"Mức hưởng": "-540000"}, "Mức hưởng"),
        ({"Mức hưởng": "1e6"}, "Mức hưởng"),
        ({"Truy lĩnh": "abc"}, "Truy lĩnh"),
        ({"Hình thức nhận": "Vàng"}, "Hình thức nhận"),
        ({"Đơn vị chi trả": "Ngân hàng X"}, "Đơn vị chi trả"),
        ({"Số tài khoản": ""}, "Số tài khoản"),
        ({"CCCD người nhận thay": ""}, "CCCD người nhận thay"),
        ({"Quan hệ": ""}, "Quan hệ"),
        ({"Ủy quyền từ ngày": ""}, "Ủy quyền từ ngày"),
        ({"Ủy quyền đến ngày": "01/01/2020"}, "Ủy quyền đến ngày"),
        ({"Trạng thái": "Không rõ"}, "Trạng thái"),
        ({"Người nhận thay": "", "Quan hệ": ""}, "Người nhận thay"),
    ],
)
def test_bad_rows_are_rejected_with_row_column_and_reason(session, tmp_path, overrides, column):
    good = person(**{"Mã đối tượng": "TTH0000999"})
    report = run(session, write_csv(tmp_path / "r.csv", [person(**overrides), good]))
    assert report.rejected == 1 and report.added == 1
    problem = report.rejections[0]
    assert problem.row == 2
    assert problem.column == column
    assert problem.reason
    assert count(session, Beneficiary) == 1


def test_duplicate_code_first_counts(session, tmp_path):
    rows = [person(), person(**{"Họ và tên": "Người Khác"})]
    report = run(session, write_csv(tmp_path / "r.csv", rows))
    assert report.added == 1 and report.rejected == 1
    assert "duplicate of row 2" in report.rejections[0].reason
    assert session.scalar(select(Beneficiary.full_name)) == "Lê Thị Hương"


def test_changes_are_reported_and_applied(session, tmp_path):
    run(session, write_csv(tmp_path / "a.csv", [person()]))
    changed = person(**{"Số điện thoại": "0911111111", "Mức hưởng": "720.000", "Quan hệ": "Con"})
    report = run(session, write_csv(tmp_path / "b.csv", [changed]))
    assert report.updated == 1 and report.unchanged == 0
    code, fields = report.changes[0]
    assert code == "TTH0000101"
    assert {"Số điện thoại", "Mức hưởng", "Người nhận thay"} <= set(fields)
    person_row = session.scalars(select(Beneficiary)).one()
    assert person_row.phone == "0911111111" and person_row.monthly_vnd == 720000
    ent = session.scalars(select(Entitlement)).one()
    assert ent.amount_vnd == 720000 and ent.status is EntitlementStatus.DUE
    assert report.entitlements_updated == 1


def test_new_proxy_replaces_the_old_one(session, tmp_path):
    run(session, write_csv(tmp_path / "a.csv", [person()]))
    other = person(
        **{
            "Người nhận thay": "Trần Văn Tư",
            "CCCD người nhận thay": "046080000001",
            "Quan hệ": "Con",
        }
    )
    run(session, write_csv(tmp_path / "b.csv", [other]))
    proxies = session.scalars(select(Proxy).order_by(Proxy.id)).all()
    assert [p.revoked_at is not None for p in proxies] == [True, False]
    assert proxies[1].full_name == "Trần Văn Tư"
    run(
        session,
        write_csv(
            tmp_path / "c.csv",
            [
                person(
                    **{
                        "Người nhận thay": "",
                        "CCCD người nhận thay": "",
                        "Quan hệ": "",
                        "Ủy quyền từ ngày": "",
                        "Ủy quyền đến ngày": "",
                    }
                )
            ],
        ),
    )
    assert count(session, Proxy, Proxy.revoked_at.is_(None)) == 0


@pytest.mark.parametrize("status", ["Tạm dừng", "Đã chết", "Chuyển đi"])
def test_stopped_gets_no_entitlement_and_due_one_is_cancelled(session, tmp_path, status):
    run(session, write_csv(tmp_path / "a.csv", [person()]))
    report = run(session, write_csv(tmp_path / "b.csv", [person(**{"Trạng thái": status})]))
    assert report.stopped == 1 and report.entitlements_cancelled == 1
    assert session.scalar(select(Entitlement.status)) is EntitlementStatus.CANCELLED
    assert session.scalar(select(Beneficiary.status)) is not BeneficiaryStatus.ACTIVE
    # A later period gives them nothing.
    later = run(
        session, write_csv(tmp_path / "c.csv", [person(**{"Trạng thái": status})]), period="2021-11"
    )
    assert later.entitlements_created == 0 and later.unchanged == 1
    # Back on the list: the cancelled entitlement is due again.
    back = run(session, write_csv(tmp_path / "d.csv", [person()]))
    assert back.entitlements_updated == 1
    assert session.scalars(select(Entitlement.status)).all() == [EntitlementStatus.DUE]


def test_paid_entitlements_are_never_touched(session, tmp_path):
    run(session, write_csv(tmp_path / "a.csv", [person()]))
    ent = session.scalars(select(Entitlement)).one()
    ent.status = EntitlementStatus.PAID
    session.commit()
    report = run(
        session,
        write_csv(tmp_path / "b.csv", [person(**{"Trạng thái": "Đã chết", "Mức hưởng": "900000"})]),
    )
    session.expire_all()
    ent = session.scalars(select(Entitlement)).one()
    assert ent.status is EntitlementStatus.PAID and ent.amount_vnd == 540000
    assert report.entitlements_cancelled == 0


def test_missing_beneficiaries_are_reported_and_get_nothing(session, tmp_path):
    run(
        session, write_csv(tmp_path / "a.csv", [person(), person(**{"Mã đối tượng": "TTH0000102"})])
    )
    # Another district's list does not make Phú Lộc's people missing.
    elsewhere = person(
        **{"Mã đối tượng": "TTH0000200", "Huyện": "Hương Thủy", "Xã/Phường": "Thủy Vân"}
    )
    assert run(session, write_csv(tmp_path / "x.csv", [elsewhere])).missing == 0
    report = run(session, write_csv(tmp_path / "b.csv", [person()]), period="2021-10")
    assert report.missing == 1 and report.missing_codes == ["TTH0000102"]
    assert report.entitlements_cancelled == 1
    nov = run(session, write_csv(tmp_path / "c.csv", [person()]), period="2021-11")
    assert nov.missing == 1 and nov.entitlements_created == 1


def test_a_child_without_guardian_is_flagged(session, tmp_path):
    child = person(
        **{
            "Ngày sinh": "23/07/2015",
            "Diện đối tượng": "Trẻ em mồ côi",
            "Số CCCD/CMND": "",
            "Quan hệ": "Cháu",
        }
    )
    report = run(session, write_csv(tmp_path / "r.csv", [child]))
    assert report.added == 1 and any("guardian" in f.reason for f in report.flags)


def test_closed_period_is_refused(session, tmp_path):
    run(session, SAMPLE)
    period = session.scalars(select(Period)).one()
    period.status = PeriodStatus.CLOSED
    session.commit()
    with pytest.raises(Refused):
        run(session, SAMPLE)


@pytest.mark.parametrize(
    "name, content, code",
    [
        ("r.csv", b"", "roster_file_empty"),
        ("r.csv", b"\n\n  \n", "roster_file_empty"),
        ("r.txt", b"a,b", "roster_file_type"),
        ("r.pdf", b"%PDF-1.4", "roster_file_type"),
        ("r.csv", "Mã đối tượng,Họ và tên\nX,Y\n".encode(), "roster_file_columns"),
        ("r.csv", "Mã đối tượng;Họ tên".encode("utf-16"), "roster_file_unreadable"),
        (
            "r.csv",
            "Mã đối tượng,Họ và tên".encode("latin-1", "replace") + b"\xe3",
            "roster_file_encoding",
        ),
        ("r.xlsx", b"PK\x03\x04 not really a zip", "roster_file_unreadable"),
        ("r.xlsx", b"just text", "roster_file_unreadable"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(session, tmp_path, name, content, code):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RosterFileError) as info:
        run(session, path)
    assert info.value.code == code
    assert count(session, Beneficiary) == 0


def test_a_huge_cell_is_refused(session, tmp_path):
    path = tmp_path / "r.csv"
    header = ",".join(HEADERS).encode()
    path.write_bytes(header + b"\n" + b"x" * (10 * 1024 * 1024) + b"\n")
    with pytest.raises(RosterFileError):
        run(session, path)


def test_a_zip_bomb_is_refused(session, tmp_path):
    path = tmp_path / "bomb.xlsx"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/workbook.xml", "<workbook/>")
        archive.writestr("xl/worksheets/sheet1.xml", b"\0" * (300 * 1024 * 1024))
    with pytest.raises(RosterFileError, match="unpacks"):
        run(session, path)


def test_duplicate_header_is_refused(session, tmp_path):
    path = write_csv(tmp_path / "r.csv", [person()], headers=[*HEADERS, "Họ và tên"])
    with pytest.raises(RosterFileError, match="twice"):
        run(session, path)


def test_file_problem_mid_way_rolls_everything_back(session, tmp_path):
    path = write_csv(
        tmp_path / "r.csv", [person(**{"Mã đối tượng": f"TTH{n:07d}"}) for n in range(1500)]
    )
    path.write_bytes(path.read_bytes() + b"TTH9999999,\xff\xfe broken\n")
    with pytest.raises(RosterFileError, match="UTF-8"):
        run(session, path)
    assert count(session, Beneficiary) == 0 and count(session, Period) == 0


def test_xlsx_with_excel_types(session, tmp_path):
    book = Workbook()
    sheet = book.active
    sheet.append(HEADERS)
    row = person()
    row.update(
        {
            "Ngày sinh": date(1953, 10, 12),
            "Số CCCD/CMND": 46153060816,
            "Số điện thoại": 928816302,
            "Mức hưởng": 540000,
            "Truy lĩnh": 0.0,
            "Ủy quyền từ ngày": date(2021, 1, 1),
            "Ủy quyền đến ngày": None,
        }
    )
    sheet.append([row[h] for h in HEADERS])
    sheet.append([None] * len(HEADERS))  # Excel's blank rows are skipped
    year_only = person(
        **{"Mã đối tượng": "TTH0000102", "Ngày sinh": 1938, "Số CCCD/CMND": "046138060817"}
    )
    sheet.append([year_only[h] for h in HEADERS])
    path = tmp_path / "r.xlsx"
    book.save(path)
    report = run(session, path)
    assert report.added == 2 and report.rejected == 0, report.rejections
    people = session.scalars(select(Beneficiary).order_by(Beneficiary.code)).all()
    assert people[0].id_number == "046153060816" and people[0].phone == "0928816302"
    assert people[1].birth_year == 1938


def test_import_is_audited(session):
    report = run(session, SAMPLE)
    from terminal.models import AuditEvent

    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "roster.imported")).one()
    assert report.sha256 in event.data and '"added":30' in event.data


# ---- the period and entitlement rules other writers import ------------------------------


@pytest.mark.parametrize(
    ("code", "first_day"),
    [
        ("2021-10", date(2021, 10, 1)),
        (" 2022-01 ", date(2022, 1, 1)),
        ("2100-12", date(2100, 12, 1)),
    ],
)
def test_period_start_and_code(code, first_day):
    assert period_start(code) == first_day
    assert period_code(first_day) == code.strip() == parse_period(code)
    assert period_code(date(first_day.year, first_day.month, 28)) == code.strip()


@pytest.mark.parametrize(
    # Full-width digits are digits to a regex's \d, but not in a period code.
    "code",
    ["2021-13", "2021-00", "1999-12", "10/2021", "2021-1", "\uff12\uff10\uff12\uff11-10", ""],
)
def test_a_malformed_period_is_refused(code):
    with pytest.raises(InvalidInput) as refused:
        period_start(code)
    assert refused.value.code == "period_invalid"


def test_only_active_people_are_owed_and_arrears_add_up():
    assert is_owed(BeneficiaryStatus.ACTIVE) and is_owed("active")
    for status in ("suspended", "deceased", "moved"):
        assert not is_owed(status) and not is_owed(BeneficiaryStatus(status))
    assert entitlement_vnd(540_000, 1_080_000) == 1_620_000
