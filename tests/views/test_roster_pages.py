"""The roster import pages: upload, preview, commit; periods; hostile uploads."""

from __future__ import annotations

import io
from pathlib import Path

from sqlalchemy import func, select

from terminal.models import Beneficiary, Period, PeriodStatus, RosterImport
from tests.conftest import csrf_from

# A copy of shared/data/sample-roster.csv, so the suite runs from any clone.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-roster.csv"


def upload(client, content: bytes, name: str = "roster.csv", period: str = "2021-10"):
    page = client.get("/admin/roster")
    token = csrf_from(page.get_data(as_text=True))
    return client.post(
        "/admin/roster",
        data={"csrf_token": token, "period": period, "file": (io.BytesIO(content), name)},
        content_type="multipart/form-data",
    )


def test_preview_then_commit(as_role, session):
    admin = as_role("admin")
    preview = upload(admin, SAMPLE.read_bytes(), "sample-roster.csv")
    html = preview.get_data(as_text=True)
    assert preview.status_code == 200
    assert 'data-testid="preview"' in html
    assert 'data-testid="count-added"' in html and ">30<" in html
    assert session.scalar(select(func.count(Beneficiary.id))) == 0  # nothing written yet
    token = csrf_from(html.split('data-testid="commit-form"', 1)[1])
    upload_token = html.split('name="token"', 1)[1].split('value="', 1)[1].split('"', 1)[0]
    done = admin.post(
        "/admin/roster/commit",
        data={"csrf_token": token, "token": upload_token, "period": "2021-10"},
    )
    assert done.status_code == 302
    session.rollback()  # end the test's own read snapshot
    assert session.scalar(select(func.count(Beneficiary.id))) == 30
    report = admin.get(done.headers["Location"]).get_data(as_text=True)
    assert "sample-roster.csv" in report and ">30<" in report
    # The same upload token cannot be committed twice.
    again = admin.post(
        "/admin/roster/commit",
        data={"csrf_token": token, "token": upload_token, "period": "2021-10"},
    )
    assert again.status_code == 302
    session.rollback()
    assert session.scalar(select(func.count(RosterImport.id))) == 1


def test_hostile_uploads_are_refused_cleanly(as_role, session):
    admin = as_role("admin")
    cases = [
        (b"%PDF-1.4 not a roster", "roster.pdf"),
        (b"\x00\x01\x02 binary", "roster.csv"),
        (b"PK\x03\x04garbage", "roster.xlsx"),
        (b"", "roster.csv"),
        ("Mã đối tượng,Họ và tên\n".encode() + b"x" * (5 * 1024 * 1024), "roster.csv"),
    ]
    for content, name in cases:
        response = upload(admin, content, name)
        assert response.status_code == 200, name
        html = response.get_data(as_text=True)
        assert 'role="alert"' in html, name
        assert 'data-testid="preview"' not in html
    assert session.scalar(select(func.count(Beneficiary.id))) == 0


def test_upload_larger_than_the_limit_is_413(as_role, app):
    app.config["MAX_CONTENT_LENGTH"] = 1024 * 1024
    admin = as_role("admin")
    response = upload(admin, b"a" * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert "quá lớn" in response.get_data(as_text=True)


def test_missing_columns_message_in_vietnamese(as_role):
    admin = as_role("admin")
    html = upload(admin, "Mã đối tượng,Họ và tên\nA,B\n".encode()).get_data(as_text=True)
    assert "Thiếu các cột bắt buộc" in html and "Ngày sinh" in html


def test_bad_period_is_refused(as_role, session):
    admin = as_role("admin")
    html = upload(admin, SAMPLE.read_bytes(), period="2021-13").get_data(as_text=True)
    assert 'data-testid="flash-error"' in html
    assert session.scalar(select(func.count(Period.id))) == 0


def test_periods_page_and_closing(as_role, session, app):
    from terminal.services.roster import import_roster

    import_roster(session, SAMPLE, period="2021-10", actor="test")
    admin = as_role("admin")
    page = admin.get("/admin/periods").get_data(as_text=True)
    assert "10/2021" in page and "18.720.000 đ" in page
    token = csrf_from(page)
    assert admin.post("/admin/periods/2021-10/close", data={"csrf_token": token}).status_code == 302
    session.expire_all()
    assert session.scalar(select(Period.status)) is PeriodStatus.CLOSED
    page = admin.get("/admin/periods").get_data(as_text=True)
    assert "close-2021-10" not in page
    closed = upload(admin, SAMPLE.read_bytes()).get_data(as_text=True)
    assert "đã khóa sổ" in closed
