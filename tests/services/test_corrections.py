"""The correction list: open data errors, one row per field, for whoever keeps the roster."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from terminal.models import FailureReason
from terminal.services import followup
from terminal.services.failures import log_failure
from tests.services.test_roster_import import person, run, write_csv
from tests.test_cli_cash_float import cli


def test_import_and_counter_data_errors_make_the_correction_list(app, session, tmp_path, world):
    # An imported row whose CCCD says female while the roster says male.
    run(session, write_csv(tmp_path / "r.csv", [person(**{"Giới tính": "Nam"})]))
    rows = followup.corrections(session, world.users["auditor"])
    assert len(rows) == 1
    row = rows[0]
    assert row["field"] == "Số CCCD/CMND" and "female" in row["value_seen"]
    assert row["value_on_roster"] != "046153060816" and row["value_on_roster"].endswith("16")
    assert row["who"] == "import" and row["code"]
    # One a clerk reports at the counter, in their own words.
    code = row["code"]
    from sqlalchemy import select

    from terminal.models import Beneficiary

    person_id = session.scalar(select(Beneficiary.id).where(Beneficiary.code == code))
    log_failure(
        session,
        user=world.users["clerk"],
        reason=FailureReason.DATA_ERROR,
        detail="Tên trên thẻ là Lê Thị Hường",
        beneficiary_id=person_id,
    )
    rows = followup.corrections(session, world.users["auditor"])
    assert [(r["field"], r["value_seen"], r["who"]) for r in rows][1] == (
        "",
        "Tên trên thẻ là Lê Thị Hường",
        "clerk1",
    )
    # CSV (with a BOM for Excel) and XLSX carry the same rows.
    text = followup.corrections_export(rows, "csv").decode("utf-8-sig")
    table = list(csv.reader(io.StringIO(text)))
    assert table[0] == list(followup.CORRECTION_COLUMNS) and len(table) == 3
    sheet = load_workbook(io.BytesIO(followup.corrections_export(rows, "xlsx"))).active
    assert [r[0] for r in sheet.iter_rows(values_only=True)] == ["code", code, code]
    # From the command line.
    out = tmp_path / "corrections.xlsx"
    result = cli(app, "export-corrections", "--format", "xlsx", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 corrections written" in result.output and out.stat().st_size > 0
    refused = cli(app, "export-corrections", "--format", "pdf", "-o", str(out))
    assert refused.exit_code != 0 and "Traceback" not in refused.output


def test_the_page_exports_for_the_reader(as_role, world):
    auditor = as_role("auditor")
    assert auditor.get("/followup/corrections?format=xlsx").mimetype.endswith("sheet")
    csv_response = auditor.get("/followup/corrections")
    assert csv_response.mimetype == "text/csv"
    assert csv_response.get_data(as_text=True).lstrip("\ufeff").startswith("code,field")
    assert auditor.get("/followup/corrections?format=pdf").status_code == 400


def test_export_failures_from_the_command_line(app, session, world, tmp_path):
    from sqlalchemy import select

    from terminal.models import Beneficiary
    from tests.factories import make_beneficiary

    person_id = make_beneficiary(session, "TTH0000001", commune=world.point_a.communes[0]).id
    for reason in (FailureReason.OTP_NOT_RECEIVED, FailureReason.ID_MISMATCH):
        log_failure(session, user=world.users["clerk"], reason=reason, beneficiary_id=person_id)
    out = tmp_path / "failures.csv"
    result = cli(app, "export-failures", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "2 failures written" in result.output
    table = list(csv.reader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert table[0][:4] == ["id", "case", "reason", "status"]
    assert [(r[2], r[1]) for r in table[1:]] == [("otp_not_received", "yes"), ("id_mismatch", "no")]
    assert "Lê Thị Hương" not in out.read_text(encoding="utf-8-sig")
    xlsx = tmp_path / "failures.xlsx"
    assert cli(app, "export-failures", "--format", "xlsx", "-o", str(xlsx)).exit_code == 0
    sheet = load_workbook(xlsx).active
    assert sheet.max_row == 3
    assert session.scalar(select(Beneficiary.id)) == person_id
    # Auditors only, when a person asks.
    from terminal.services.errors import Forbidden

    with pytest.raises(Forbidden):
        followup.failures_export(session, world.users["supervisor"], "csv")
    body, count = followup.failures_export(session, world.users["auditor"], "csv")
    assert count == 2 and body.startswith("\ufeff".encode())
