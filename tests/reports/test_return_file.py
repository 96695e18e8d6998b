"""The period's return file for the ministry, and audited exports (API.md, "More for auditors")."""

from __future__ import annotations

import csv
import io
import json

import pytest
from sqlalchemy import select

from terminal.clock import today_local
from terminal.models import AuditEvent, Failure, FailureReason
from terminal.services import reports
from terminal.services.failures import log_failure
from terminal.text import fold
from tests.conftest import api_token, bearer
from tests.reports.builders import PERIOD, build
from tests.test_cli_cash_float import cli

PAID, UNPAID, STOPPED = "Đã trả", "Chưa trả", "Chưa trả và dừng chi trả"
EXPECTED_STATUS = {
    "paid": PAID,
    "paid_proxy": PAID,
    "paid_both_periods": PAID,
    "repaid": PAID,
    "home": PAID,
    "unpaid": UNPAID,
    "reversed": UNPAID,
    "earlier_only": UNPAID,
    "cancelled": STOPPED,
    "stopped": STOPPED,  # deceased with a due month, or left off the list (cancelled)
}


@pytest.fixture
def built(session, world):
    """Two districts, five communes, every case of payment, through the services."""
    return build(session, world)


def read_back(data: bytes, fmt: str) -> list[dict[str, object]]:
    """Return a CSV or XLSX file's rows as dicts by header."""
    if fmt == "csv":
        assert data.startswith("\ufeff".encode())  # Excel opens it as UTF-8
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(data), read_only=True).active
        rows = [["" if v is None else v for v in r] for r in sheet.iter_rows(values_only=True)]
    header = rows[0]
    assert tuple(header) == reports.RETURN_COLUMNS
    return [dict(zip(header, row, strict=True)) for row in rows[1:]]


def check_rows(rows: list[dict[str, object]], built) -> None:
    """Each entitlement of the period once, with the status its case calls for."""
    assert sorted(r["Mã đối tượng"] for r in rows) == sorted(built.cases)
    today = today_local().strftime("%d/%m/%Y")
    for row in rows:
        case = built.cases[row["Mã đối tượng"]]
        assert row["Trạng thái chi trả"] == EXPECTED_STATUS[case], (row, case)
        assert row["Xã/Phường"] == built.communes[row["Mã đối tượng"]]
        assert int(row["Tổng số tiền"]) == int(row["Mức hưởng"]) + int(row["Truy lĩnh"])
        if row["Trạng thái chi trả"] == PAID:
            assert row["Ngày nhận"] == today
            assert str(row["Số biên nhận"]).startswith(("HTBD-", "PLVT-"))
            assert row["Điểm chi trả"] in ("HTBD", "PLVT")
            assert row["Hình thức nhận"] in ("Tiền mặt", "Tiền mặt tại nhà", "Tài khoản")
            assert row["Người nhận"] in ("Bản thân", "Người được ủy quyền")
        else:
            assert [row[k] for k in ("Ngày nhận", "Số biên nhận", "Hình thức nhận")] == [""] * 3
    by_case = {built.cases[r["Mã đối tượng"]]: r for r in rows}
    assert by_case["home"]["Hình thức nhận"] == "Tiền mặt tại nhà"
    assert by_case["paid_proxy"]["Người nhận"] == "Người được ủy quyền"
    # Ordered for the communes: by district, then commune (each one run of rows).
    keys = [(r["Huyện"], r["Xã/Phường"]) for r in rows]
    runs = [k for n, k in enumerate(keys) if n == 0 or keys[n - 1] != k]
    assert len(runs) == len(set(runs)) == 5
    assert runs == sorted(runs, key=lambda k: (fold(k[0]), fold(k[1])))


def export_events(session, kind: str) -> list[dict[str, object]]:
    """Return the recorded exports of a kind, oldest first."""
    session.rollback()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "export.written").order_by(AuditEvent.seq)
    )
    found = []
    for event in events:
        data = json.loads(event.data)
        if data["kind"] == kind:
            found.append({"actor": event.actor, **data})
    return found


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_command_writes_every_entitlement_with_the_ministrys_status(
    app, session, world, built, tmp_path, fmt
):
    out = tmp_path / f"return.{fmt}"
    result = cli(app, "export-period", PERIOD, "--format", fmt, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"{len(built.cases)} entitlements written to {out}" in result.output
    check_rows(read_back(out.read_bytes(), fmt), built)
    assert not (tmp_path / f"return.{fmt}.part").exists()
    [event] = export_events(session, "period")
    assert event["actor"] == "cli"
    assert event["format"] == fmt
    assert event["filters"] == {"period": PERIOD}
    assert event["rows"] == len(built.cases)


def test_the_command_refuses_a_bad_or_unknown_period(app, world, tmp_path):
    out = tmp_path / "x.csv"
    bad = cli(app, "export-period", "2021-13", "-o", str(out))
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output
    unknown = cli(app, "export-period", "2030-01", "-o", str(out))
    assert unknown.exit_code != 0 and "2030-01" in unknown.output
    assert not out.exists()


def test_the_command_refuses_an_unwritable_file_before_recording_anything(
    app, session, world, built, tmp_path
):
    out = tmp_path / "no-such-folder" / "x.csv"
    result = cli(app, "export-period", PERIOD, "-o", str(out))
    assert result.exit_code != 0 and "cannot write" in result.output
    assert export_events(session, "period") == []


@pytest.mark.parametrize(
    ("query", "headers", "fmt"),
    [
        (f"period={PERIOD}", {"Accept": "text/csv"}, "csv"),
        (f"period={PERIOD}&format=xlsx", {}, "xlsx"),
        (f"period={PERIOD}", {"Accept": reports.XLSX_MIMETYPE}, "xlsx"),
    ],
)
def test_the_api_sends_the_file_to_auditors(app, session, world, built, query, headers, fmt):
    token = api_token(app.test_client(), "auditor1")
    response = app.test_client().get(
        f"/api/v1/reports/period?{query}", headers={**bearer(token), **headers}
    )
    assert response.status_code == 200
    assert response.mimetype == ("text/csv" if fmt == "csv" else reports.XLSX_MIMETYPE)
    assert f'filename="chi-tra-{PERIOD}.{fmt}"' in response.headers["Content-Disposition"]
    check_rows(read_back(response.get_data(), fmt), built)
    [event] = export_events(session, "period")
    assert event["actor"] == "auditor1" and event["format"] == fmt


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("period=2021-1", 400, "period_invalid"),
        ("period=2030-01", 404, "period_not_found"),
        (f"period={PERIOD}&format=pdf", 400, "format_invalid"),
    ],
)
def test_the_api_refuses_bad_requests_and_records_nothing(
    app, session, world, built, query, status, code
):
    token = api_token(app.test_client(), "auditor1")
    response = app.test_client().get(f"/api/v1/reports/period?{query}", headers=bearer(token))
    assert response.status_code == status
    assert response.get_json()["error"] == code
    assert export_events(session, "period") == []


@pytest.mark.parametrize("role", ["supervisor", "clerk", "admin"])
def test_the_file_is_for_auditors_only(app, as_role, world, role):
    token = api_token(app.test_client(), world.users[role].username)
    response = app.test_client().get(
        f"/api/v1/reports/period?period={PERIOD}", headers=bearer(token)
    )
    assert response.status_code == 403
    assert as_role(role).get(f"/reports/period?period={PERIOD}").status_code == 403


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_page_downloads_it_for_auditors(as_role, session, world, built, fmt):
    auditor = as_role("auditor")
    page = auditor.get(f"/reports/coverage?period={PERIOD}").get_data(as_text=True)
    assert f"/reports/period?period={PERIOD}&amp;format={fmt}" in page
    response = auditor.get(f"/reports/period?period={PERIOD}&format={fmt}")
    assert response.status_code == 200
    check_rows(read_back(response.get_data(), fmt), built)
    assert [e["actor"] for e in export_events(session, "period")] == ["auditor1"]


def test_the_page_refuses_an_unknown_period_with_a_message(as_role, world, built):
    response = as_role("auditor").get("/reports/period?period=2030-01&format=csv")
    assert response.status_code == 404
    assert 'data-testid="flash-error"' in response.get_data(as_text=True)


def test_a_formula_in_a_name_is_written_as_text(app, session, world, tmp_path):
    from tests.factories import make_beneficiary

    make_beneficiary(
        session, "TTH9999999", commune=world.point_a.communes[0], full_name="=HYPERLINK(1)"
    )
    out = tmp_path / "r.csv"
    assert cli(app, "export-period", PERIOD, "-o", str(out)).exit_code == 0
    [row] = read_back(out.read_bytes(), "csv")
    assert row["Họ và tên"] == "'=HYPERLINK(1)"
    assert row["Trạng thái chi trả"] == UNPAID


# ---- failures exports, audited ---------------------------------------------------------


@pytest.fixture
def failures(session, world):
    """Two failures at point HTBD."""
    from tests.factories import make_beneficiary

    person = make_beneficiary(session, "TTH0000001", commune=world.point_a.communes[0])
    for reason in (FailureReason.RECIPIENT_ABSENT, FailureReason.OTP_NOT_RECEIVED):
        log_failure(session, user=world.users["clerk"], reason=reason, beneficiary_id=person.id)
    session.rollback()
    return session.scalar(select(Failure.id).order_by(Failure.id.desc()).limit(1))


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_queue_page_offers_failures_downloads_to_auditors(
    as_role, session, world, failures, fmt
):
    auditor = as_role("auditor")
    queue = auditor.get("/followup/").get_data(as_text=True)
    assert f'data-testid="failures-{fmt}"' in queue
    response = auditor.get(f"/followup/failures?format={fmt}")
    assert response.status_code == 200
    if fmt == "csv":
        rows = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
        rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "id" and len(rows) == 3
    [event] = export_events(session, "failures")
    assert event["actor"] == "auditor1" and event["format"] == fmt and event["rows"] == 2
    assert auditor.get("/followup/failures?format=pdf").status_code == 400


def test_staff_get_no_failures_download(as_role, world, failures):
    supervisor = as_role("supervisor")
    assert 'data-testid="failures-csv"' not in supervisor.get("/followup/").get_data(as_text=True)
    assert supervisor.get("/followup/failures?format=csv").status_code == 403


def test_the_failures_command_records_its_export(app, session, world, failures, tmp_path):
    out = tmp_path / "f.xlsx"
    result = cli(app, "export-failures", "--format", "xlsx", "-o", str(out))
    assert result.exit_code == 0, result.output
    [event] = export_events(session, "failures")
    assert event == {"actor": "cli", "kind": "failures", "format": "xlsx", "filters": {}, "rows": 2}
    # A file that cannot be written is refused before anything is recorded.
    refused = cli(app, "export-failures", "-o", str(tmp_path / "no-such-folder" / "f.csv"))
    assert refused.exit_code != 0 and "cannot write" in refused.output
    assert len(export_events(session, "failures")) == 1
    assert not list((tmp_path).glob("**/*.part"))
