"""Exports of the payout log: command line, API and page, CSV and XLSX, each one audited."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import select, update

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import AuditEvent, Beneficiary, Payout
from terminal.services.audit import verify_chain
from terminal.services.payout_log import CSV_COLUMNS, XLSX_MIMETYPE
from tests.conftest import api_token, bearer
from tests.reports.builders import build


@pytest.fixture
def paid(session: Any, world: Any) -> Any:
    """Pay, reverse and repay through the real services in both points' communes."""
    return build(session, world, people=22)


def cli(app: Any, *args: str) -> Any:
    """Run a command in-process."""
    return app.test_cli_runner().invoke(args=list(args))


def exports(session: Any) -> list[dict[str, Any]]:
    """Return the data of every export.written event, oldest first."""
    session.rollback()
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "export.written").order_by(AuditEvent.seq)
    )
    return [{"actor": e.actor, **json.loads(e.data)} for e in events]


def count(session: Any, **where: Any) -> int:
    """Count payouts, optionally of one point code."""
    session.rollback()
    return len(session.scalars(select(Payout.id).filter_by(**where)).all())


def read_csv(text: str) -> list[dict[str, str]]:
    """Read CSV text written for Excel (with a BOM)."""
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text[1:])))


def read_xlsx(data: bytes | Path) -> list[dict[str, Any]]:
    """Read the first sheet of a workbook as dicts."""
    book = load_workbook(io.BytesIO(data) if isinstance(data, bytes) else data, read_only=True)
    rows = list(book.worksheets[0].iter_rows(values_only=True))
    book.close()
    assert rows[0] == CSV_COLUMNS
    return [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]


def test_cli_writes_csv_and_xlsx_that_read_back(app, paid, session, tmp_path):
    today = today_local().isoformat()
    total = count(session)
    out = tmp_path / "payouts.csv"
    result = cli(
        app, "export-payouts", "--from", today, "--to", today, "--format", "csv", "-o", str(out)
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{total} payouts written to {out}"
    rows = read_csv(out.read_text(encoding="utf-8"))
    assert len(rows) == total
    assert {r["payout_point"] for r in rows} == {"HTBD", "PLVT"}
    assert all(r["amount"].isdigit() for r in rows)
    assert {r["status"] for r in rows} == {"completed", "reversed"}

    xlsx = tmp_path / "htbd.xlsx"
    result = cli(
        app, "export-payouts", "--from", today, "--to", today, "--format", "xlsx",
        "-o", str(xlsx), "--point", "htbd", "--collector", "proxy",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    sheet = read_xlsx(xlsx)
    assert sheet and {r["payout_point"] for r in sheet} == {"HTBD"}
    assert {r["collector_type"] for r in sheet} == {"proxy"}
    assert all(isinstance(r["amount"], int) for r in sheet)
    assert (
        result.output.strip()
        == f"{len(sheet)} payout{'s' if len(sheet) != 1 else ''} written to {xlsx}"
    )

    events = exports(session)
    assert [(e["actor"], e["format"], e["rows"]) for e in events] == [
        ("cli", "csv", total),
        ("cli", "xlsx", len(sheet)),
    ]
    assert events[1]["filters"]["point_code"] == "htbd"
    assert verify_chain(session).ok


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--from", "2021-10-32", "--to", "2021-10-31"], "'from' is not a date"),
        (["--from", "2021-10-05", "--to", "2021-10-01"], "'to' is before 'from'"),
        (["--from", "2021-10-01", "--to", "2021-10-31", "--format", "pdf"], "Invalid value"),
        (["--from", "2021-10-01", "--to", "2021-10-31", "--period", "10/2021"], "YYYY-MM"),
        (["--to", "2021-10-31"], "Missing option '--from'"),
    ],
)
def test_cli_bad_input_is_one_line_and_writes_nothing(
    app, world, session, tmp_path, args, fragment
):
    out = tmp_path / "x.csv"
    result = cli(app, "export-payouts", *args, "-o", str(out))
    assert result.exit_code != 0
    assert fragment in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert exports(session) == []


def test_api_xlsx_by_accept_or_format(client, world, paid, session):
    auditor = bearer(api_token(client, "auditor1"))
    by_accept = client.get(
        "/api/v1/payouts",
        query_string={"payout_point": "PLVT"},
        headers={**auditor, "Accept": XLSX_MIMETYPE},
    )
    assert by_accept.status_code == 200 and by_accept.mimetype == XLSX_MIMETYPE
    rows = read_xlsx(by_accept.get_data())
    assert len(rows) == count(session, point_id=world.point_b.id)
    by_format = client.get(
        "/api/v1/payouts", query_string={"format": "xlsx", "status": "reversed"}, headers=auditor
    )
    assert by_format.mimetype == XLSX_MIMETYPE
    assert {r["status"] for r in read_xlsx(by_format.get_data())} == {"reversed"}
    events = exports(session)
    assert [(e["actor"], e["format"]) for e in events] == [("auditor1", "xlsx")] * 2
    assert events[0]["rows"] == len(rows) and events[0]["filters"] == {"point_code": "PLVT"}
    # Staff may read the log but not export it.
    clerk = bearer(api_token(client, "clerk1"))
    refused = client.get("/api/v1/payouts", query_string={"format": "xlsx"}, headers=clerk)
    assert refused.status_code == 403 and refused.get_json()["error"] == "export_forbidden"
    assert len(exports(session)) == 2


def test_api_csv_is_recorded_before_it_is_sent(client, world, paid, session):
    auditor = bearer(api_token(client, "auditor1"))
    with client.get(
        "/api/v1/payouts",
        query_string={"channel": "account"},
        headers={**auditor, "Accept": "text/csv"},
    ) as streamed:
        # The event is committed by the time the first bytes are in hand.
        assert [(e["format"], e["filters"]) for e in exports(session)] == [
            ("csv", {"channel": "account"})
        ]
        rows = read_csv(streamed.get_data(as_text=True))
    assert rows and {r["channel"] for r in rows} == {"account"}


@pytest.mark.parametrize("role", ["clerk", "supervisor", "admin"])
def test_page_exports_are_refused_to_non_auditors(as_role, paid, session, role):
    client = as_role(role)
    for fmt in ("csv", "xlsx"):
        assert client.get(f"/audit/payouts/export?format={fmt}").status_code == 403
    assert exports(session) == []


def test_page_exports_carry_the_filters_and_escape_formulas(as_role, paid, session, world):
    with write_transaction(session):
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.code == "TTH0000000")
            .values(full_name='=HYPERLINK("http://x")')
        )
    auditor = as_role("auditor")
    page = auditor.get("/audit/payouts", query_string={"point": "HTBD", "sort": "oldest"})
    html = page.get_data(as_text=True)
    csv_link = html.split('data-testid="export-csv"')[0].rsplit('href="', 1)[1].split('"')[0]
    xlsx_link = html.split('data-testid="export-xlsx"')[0].rsplit('href="', 1)[1].split('"')[0]
    assert "point=HTBD" in csv_link and "format=xlsx" in xlsx_link
    with auditor.get(csv_link.replace("&amp;", "&")) as response:
        assert response.mimetype == "text/csv"
        rows = read_csv(response.get_data(as_text=True))
    assert {r["payout_point"] for r in rows} == {"HTBD"}
    assert len(rows) == count(session, point_id=world.point_a.id)
    poisoned = [r for r in rows if r["beneficiary_code"] == "TTH0000000"]
    assert poisoned and poisoned[0]["beneficiary_name"].startswith("'=")
    response = auditor.get(xlsx_link.replace("&amp;", "&"))
    assert response.mimetype == XLSX_MIMETYPE
    sheet = read_xlsx(response.get_data())
    assert len(sheet) == len(rows)
    assert next(r for r in sheet if r["beneficiary_code"] == "TTH0000000")[
        "beneficiary_name"
    ].startswith("'=")
    events = exports(session)
    assert [(e["actor"], e["format"]) for e in events] == [
        ("auditor1", "csv"),
        ("auditor1", "xlsx"),
    ]
    assert events[1]["rows"] == len(sheet)
    assert all(e["filters"] == {"point_code": "HTBD"} for e in events)


def test_page_export_with_a_bad_filter_is_a_message(as_role, paid, session):
    auditor = as_role("auditor")
    response = auditor.get("/audit/payouts/export", query_string={"format": "xlsx", "period": "x"})
    assert response.status_code == 303
    follow = auditor.get(response.headers["Location"])
    assert 'data-testid="flash-error"' in follow.get_data(as_text=True)
    bad_format = auditor.get("/audit/payouts/export", query_string={"format": "pdf"})
    assert bad_format.status_code == 303
    assert exports(session) == []


def test_an_excel_file_too_big_for_a_request_is_refused_before_anything_is_written(
    client, app, world, paid, session, monkeypatch, tmp_path
):
    from terminal.services import payout_log

    monkeypatch.setattr(payout_log, "WEB_XLSX_MAX_ROWS", 2)
    auditor = bearer(api_token(client, "auditor1"))
    refused = client.get("/api/v1/payouts", query_string={"format": "xlsx"}, headers=auditor)
    assert refused.status_code == 400
    body = refused.get_json()
    assert body["error"] == "export_too_large" and body["limit"] == 2
    assert body["rows"] == count(session)
    # CSV streams any size, and the command line writes any size.
    csv_ok = client.get("/api/v1/payouts", query_string={"format": "csv"}, headers=auditor)
    assert csv_ok.status_code == 200
    assert [e["format"] for e in exports(session)] == ["csv"]
    out = tmp_path / "all.xlsx"
    done = cli(app, "export-payouts", "--from", "2000-01-01", "--to", "2100-12-31",
               "--format", "xlsx", "-o", str(out))  # fmt: skip
    assert done.exit_code == 0, done.output
    assert len(read_xlsx(out)) == count(session)
