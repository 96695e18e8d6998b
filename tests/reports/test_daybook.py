"""The day book: a point's daily settlement, closing the day, and the signed payout list.

Through the pages and the API as people and scripts use them, on a real database:
the figures, the closing (its event, its refusals, what changes a closed day), the
scope of each role, the PDF and XLSX files, and bad input changing nothing.
"""

from __future__ import annotations

import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader
from sqlalchemy import func, select

from terminal.clock import to_local, today_local
from terminal.db import write_transaction
from terminal.models import (
    AuditEvent,
    CashFloat,
    Channel,
    CollectorType,
    DayClosing,
    Entitlement,
    EntitlementStatus,
    PayoutStatus,
    Period,
)
from terminal.services import daybook
from terminal.services.errors import Conflict, Refused
from tests.conftest import api_token, bearer, csrf_from, login, submit
from tests.factories import make_beneficiary, set_float

ADVANCE = 5_000_000


@pytest.fixture
def people(world, session):
    """Two cash beneficiaries and an account holder at point A, one cash at point B."""
    a = world.point_a.communes[0]
    return {
        "hoa": make_beneficiary(session, "TTH0000001", commune=a, id_number="046153060816"),
        "lan": make_beneficiary(
            session,
            "TTH0000002",
            commune=a,
            full_name="Trần Thị Lan",
            id_number="046160000002",
            monthly=720_000,
            periods=(("2021-09", 0), ("2021-10", 0)),
        ),
        "acc": make_beneficiary(
            session,
            "TTH0000003",
            commune=a,
            full_name="Phan Văn Minh",
            id_number="046160000003",
            method="account",
            provider="viettel_pay",
        ),
        "far": make_beneficiary(
            session,
            "TTH0000004",
            commune=world.point_b.communes[0],
            full_name="Hồ Thị Mai",
            id_number="046160000004",
        ),
    }


@pytest.fixture
def tokens(client, world):
    """Return a function giving a role's Authorization header (`<role>b` at point B)."""
    cache: dict[str, dict[str, str]] = {}

    def header(role: str) -> dict[str, str]:
        if role not in cache:
            user = world.users_b[role[:-1]] if role.endswith("b") else world.users[role]
            cache[role] = bearer(api_token(client, user.username))
        return cache[role]

    return header


def pay(client, headers, person, *, channel="cash", provider_ref=None):
    """Verify a beneficiary and pay all their due entitlements; return the 201 body."""
    verified = client.post(
        "/api/v1/verifications",
        json={
            "beneficiary_code": person.code,
            "collector": "beneficiary",
            "id_number": person.id_number,
        },
        headers=headers,
    )
    assert verified.status_code == 201, verified.get_json()
    detail = client.get(f"/api/v1/beneficiaries/{person.code}", headers=headers).get_json()
    body = {
        "verification_id": verified.get_json()["verification_id"],
        "entitlement_ids": [e["id"] for e in detail["entitlements"] if e["status"] == "due"],
        "channel": channel,
    }
    if provider_ref:
        body["provider_ref"] = provider_ref
    paid = client.post(
        "/api/v1/payouts", json=body, headers={**headers, "Idempotency-Key": str(uuid.uuid4())}
    )
    assert paid.status_code == 201, paid.get_json()
    return paid.get_json()


def reverse(client, headers, payout_id):
    """Reverse a payout as the point's supervisor."""
    response = client.post(
        f"/api/v1/payouts/{payout_id}/reversal",
        json={"reason": "paid to the wrong person"},
        headers=headers,
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def day(client, session, people, tokens):
    """A day at point A: cash to Hoa (reversed) and Lan, an account payout to Minh."""
    set_float(session, "HTBD", ADVANCE)
    clerk = tokens("clerk")
    paid = {
        "hoa": pay(client, clerk, people["hoa"]),
        "lan": pay(client, clerk, people["lan"]),
        "acc": pay(client, clerk, people["acc"], channel="account", provider_ref="VTP-1"),
    }
    reverse(client, tokens("supervisor"), paid["hoa"]["payout_id"])
    return paid


def state(session):
    """Return what a refused request must leave unchanged: closings, floats, audit length."""
    session.rollback()
    session.expire_all()
    return (
        session.execute(select(DayClosing.id, DayClosing.returned_vnd)).all(),
        session.execute(select(CashFloat.advance_vnd, CashFloat.counted_vnd)).all(),
        session.scalar(select(func.count(AuditEvent.seq))),
    )


def events(session, action):
    """Return the data of the audit events of an action, oldest first."""
    session.rollback()
    rows = session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
    )
    return [json.loads(e.data) for e in rows]


def pdf_text(body: bytes) -> tuple[PdfReader, list[str]]:
    """Return a PDF's reader and the text of each page."""
    assert body.startswith(b"%PDF-")
    reader = PdfReader(io.BytesIO(body))
    return reader, [page.extract_text() for page in reader.pages]


# ---- the settlement's figures -------------------------------------------------------


def test_the_settlement_adds_up_cash_account_and_reversed(session, world, day):
    session.rollback()  # a fresh read: the payouts were made by other sessions
    result = daybook.settlement(session, world.users["supervisor"])
    assert result.point.code == "HTBD" and result.day == today_local()
    assert [r.beneficiary_code for r in result.rows] == ["TTH0000001", "TTH0000002", "TTH0000003"]
    assert [r.status for r in result.rows] == [
        PayoutStatus.REVERSED,
        PayoutStatus.COMPLETED,
        PayoutStatus.COMPLETED,
    ]
    assert result.rows[0].receipt_no == day["hoa"]["receipt_no"]
    assert result.rows[1].collector is CollectorType.BENEFICIARY
    figures = result.figures
    assert (figures.payouts, figures.cash_paid_vnd, figures.account_paid_vnd) == (
        2,
        1_440_000,
        540_000,
    )
    assert figures.total_vnd == 1_980_000
    assert figures.advance_vnd == ADVANCE and figures.returned_vnd is None
    assert figures.expected_return_vnd == ADVANCE - 1_440_000
    totals = {t.channel: (t.count, t.amount_vnd) for t in result.by_channel}
    assert totals == {
        Channel.CASH: (1, 1_440_000),
        Channel.CASH_HOME: (0, 0),
        Channel.ACCOUNT: (1, 540_000),
    }
    assert [r.beneficiary_code for r in result.reversed_listed] == ["TTH0000001"]
    assert not result.closed and result.changes == []


def test_the_page_shows_the_day_to_its_supervisor(as_role, day):
    page = as_role("supervisor").get("/daybook/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'data-testid="figure-cash-paid">1.440.000 đ' in html
    assert 'data-testid="figure-account-paid">540.000 đ' in html
    assert 'data-testid="figure-advance">5.000.000 đ' in html
    assert 'data-testid="figure-difference">—' in html  # nothing counted back yet
    assert "Một triệu chín trăm tám mươi nghìn đồng" in html
    assert html.count('data-testid="settlement-row"') == 3
    assert 'data-status="reversed"' in html
    assert day["lan"]["receipt_no"] in html and "Trần Thị Lan" in html
    assert 'data-testid="close-form"' in html


def test_the_api_gives_the_same_figures(client, tokens, day):
    response = client.get("/api/v1/daybook", headers=tokens("supervisor"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["point"] == "HTBD" and body["closed"] is False
    assert body["figures"]["cash_paid"] == 1_440_000
    assert body["figures"]["account_paid"] == 540_000
    assert body["figures"]["advance"] == ADVANCE
    assert [p["status"] for p in body["payouts"]] == ["reversed", "completed", "completed"]
    assert {c["channel"]: c["count"] for c in body["by_channel"]} == {
        "cash": 1,
        "cash_home": 0,
        "account": 1,
    }


# ---- closing the day ----------------------------------------------------------------


def close(client, returned="3.560.000", note="Đủ tiền", **extra):
    """Close today through the page's form."""
    data = {"day": today_local().isoformat(), "returned": returned, "note": note, "confirm": "y"}
    data.update(extra)
    return submit(client, "/daybook/close", data, form_page="/daybook/")


def test_closing_writes_the_figures_and_its_event(session, world, as_role, day):
    supervisor = as_role("supervisor")
    response = close(supervisor)
    assert response.status_code == 303
    page = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="settlement-state"' in page and "Đủ tiền" in page
    assert 'data-testid="figure-returned">3.560.000 đ' in page
    assert 'data-testid="figure-difference">0 đ' in page
    assert 'data-testid="close-form"' not in page
    session.rollback()
    row = session.scalar(select(DayClosing))
    assert (row.point_id, row.business_date) == (world.point_a.id, today_local())
    assert (row.payouts, row.cash_paid_vnd, row.account_paid_vnd) == (2, 1_440_000, 540_000)
    assert (row.advance_vnd, row.returned_vnd, row.note) == (ADVANCE, 3_560_000, "Đủ tiền")
    assert row.closed_by_id == world.users["supervisor"].id
    [event] = events(session, "day.closed")
    assert event["day"] == today_local().isoformat()
    assert (event["cash_paid_vnd"], event["returned_vnd"], event["difference_vnd"]) == (
        1_440_000,
        3_560_000,
        0,
    )
    counted = session.scalar(select(CashFloat.counted_vnd))
    assert counted == 3_560_000


def test_a_difference_is_shown_when_the_drawer_disagrees(session, world, as_role, day):
    supervisor = as_role("supervisor")
    assert close(supervisor, returned="3.500.000").status_code == 303
    page = supervisor.get("/daybook/").get_data(as_text=True)
    assert 'data-testid="figure-difference">60.000 đ' in page


def test_a_day_closes_once(session, client, as_role, tokens, day):
    supervisor = as_role("supervisor")
    assert close(supervisor).status_code == 303
    before = state(session)
    again = client.post("/api/v1/daybook/close", json={"returned": 0}, headers=tokens("supervisor"))
    assert again.status_code == 409
    assert again.get_json()["error"] == "already_closed"
    # The page has no form any more; a forged second post is refused with a message.
    token = csrf_from(supervisor.get("/daybook/").get_data(as_text=True))
    page = supervisor.post(
        "/daybook/close",
        data={
            "csrf_token": token,
            "day": today_local().isoformat(),
            "returned": "1",
            "confirm": "y",
        },
    )
    assert page.status_code == 409
    assert 'data-testid="flash-error"' in page.get_data(as_text=True)
    assert state(session) == before


def test_the_advance_of_a_closed_day_is_refused(session, client, as_role, tokens, day):
    supervisor = as_role("supervisor")
    assert close(supervisor).status_code == 303
    before = state(session)
    response = client.put(
        "/api/v1/cash-float", json={"advance": 9_000_000}, headers=tokens("supervisor")
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "day_closed"
    cash_page = supervisor.get("/counter/cash").get_data(as_text=True)
    assert 'data-testid="cash-day-closed"' in cash_page
    assert 'data-testid="float-form"' not in cash_page
    posted = supervisor.post(
        "/counter/cash", data={"csrf_token": csrf_from(cash_page), "advance": "9.000.000"}
    )
    text = posted.get_data(as_text=True)
    assert "cash-day-closed" in text
    assert state(session) == before
    assert session.scalar(select(CashFloat.advance_vnd)) == ADVANCE


def test_changes_after_closing_are_listed_apart(
    session, client, world, people, as_role, tokens, day
):
    supervisor = as_role("supervisor")
    assert close(supervisor).status_code == 303
    reverse(client, tokens("supervisor"), day["lan"]["payout_id"])
    # Hoa's entitlement is due again since her reversal: paid once more, after closing.
    again = pay(client, tokens("clerk"), people["hoa"])
    session.rollback()
    result = daybook.settlement(session, world.users["auditor"], point="HTBD")
    assert result.closed
    assert result.figures.cash_paid_vnd == 1_440_000  # as closed
    assert result.figures.payouts == 2
    kinds = [(c.kind, c.row.payout_id) for c in result.changes]
    assert ("reversal", day["lan"]["payout_id"]) in kinds
    assert ("payout", again["payout_id"]) in kinds
    assert result.current.cash_paid_vnd == again["amount"]
    # The payout made after closing is not in the closed table, only among the changes.
    assert again["payout_id"] not in [r.payout_id for r in result.listed]
    page = supervisor.get("/daybook/").get_data(as_text=True)
    assert page.count('data-testid="change-row"') == 2
    assert 'data-kind="reversal"' in page and 'data-kind="payout"' in page
    assert 'data-testid="figure-cash-paid">1.440.000 đ' in page


def test_a_future_day_cannot_be_closed(session, world, client, tokens, day):
    before = state(session)
    tomorrow = (today_local() + timedelta(days=1)).isoformat()
    response = client.post(
        "/api/v1/daybook/close",
        json={"returned": 0, "date": tomorrow},
        headers=tokens("supervisor"),
    )
    assert response.status_code == 422
    assert response.get_json()["error"] == "day_in_future"
    with pytest.raises(Refused):
        daybook.close_day(
            session,
            world.users["supervisor"],
            returned_vnd=0,
            day=today_local() + timedelta(days=1),
        )
    assert state(session) == before


def test_the_service_refuses_a_second_close(session, world, day):
    daybook.close_day(session, world.users["supervisor"], returned_vnd=3_560_000)
    with pytest.raises(Conflict) as refused:
        daybook.close_day(session, world.users["supervisor"], returned_vnd=3_560_000)
    assert refused.value.code == "already_closed"


def test_an_api_close_answers_the_closed_settlement(client, tokens, day):
    response = client.post(
        "/api/v1/daybook/close",
        json={"returned": 3_560_000, "note": "ok"},
        headers=tokens("supervisor"),
    )
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["closed"] is True
    assert body["closing"]["figures"]["difference"] == 0
    assert body["closing"]["closed_by"] == "supervisor1"


# ---- who sees and closes what ---------------------------------------------------------


def test_another_points_supervisor_neither_sees_nor_closes(
    session, client, app, world, tokens, day
):
    other = app.test_client()
    login(other, world.users_b["supervisor"].username)
    page = other.get("/daybook/?point=HTBD")
    assert page.status_code == 404
    assert "HTBD" not in page.get_data(as_text=True).split("<main", 1)[1].split("flash", 1)[0]
    assert (
        client.get("/api/v1/daybook?point=HTBD", headers=tokens("supervisorb")).status_code == 404
    )
    pdf = other.get("/daybook/settlement.pdf?point=HTBD")
    assert pdf.status_code == 303 and pdf.mimetype != "application/pdf"
    # Closing closes only one's own point: point B's day, never A's.
    before = state(session)
    assert (
        client.post(
            "/api/v1/daybook/close", json={"returned": 0}, headers=tokens("supervisorb")
        ).status_code
        == 201
    )
    session.rollback()
    assert session.scalar(select(DayClosing.point_id)) == world.point_b.id
    assert len(state(session)[0]) == len(before[0]) + 1


def test_an_auditor_reads_any_point_but_closes_nothing(session, client, as_role, tokens, day):
    auditor = as_role("auditor")
    headers = tokens("auditor")
    before = state(session)
    chooser = auditor.get("/daybook/")
    assert chooser.status_code == 200
    assert 'data-testid="choose-first"' in chooser.get_data(as_text=True)
    page = auditor.get(f"/daybook/?point=HTBD&date={today_local().isoformat()}")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert 'data-testid="figure-cash-paid">1.440.000 đ' in html
    assert 'data-testid="close-form"' not in html
    token = csrf_from(html)
    refused = auditor.post(
        "/daybook/close",
        data={
            "csrf_token": token,
            "day": today_local().isoformat(),
            "returned": "0",
            "confirm": "y",
        },
    )
    assert refused.status_code == 403
    api = client.post("/api/v1/daybook/close", json={"returned": 0}, headers=headers)
    assert api.status_code == 403
    assert state(session) == before
    assert client.get("/api/v1/daybook?point=PLVT", headers=tokens("auditor")).status_code == 200


def test_counter_staff_have_no_day_book(as_role, world):
    clerk = as_role("clerk")
    assert clerk.get("/daybook/").status_code == 403
    assert clerk.get("/daybook/payout-list").status_code == 403
    assert 'data-testid="tile-daybook"' not in clerk.get("/").get_data(as_text=True)
    for role in ("supervisor", "auditor"):
        assert 'data-testid="tile-daybook"' in as_role(role).get("/").get_data(as_text=True)


# ---- the PDF and the workbook --------------------------------------------------------


def test_the_settlement_pdf_is_an_a4_landscape_bang_ke(session, as_role, day):
    auditor = as_role("auditor")
    response = auditor.get(f"/daybook/settlement.pdf?point=HTBD&date={today_local().isoformat()}")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    reader, pages = pdf_text(response.data)
    box = reader.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (842, 595)
    text = "\n".join(pages)
    assert "BẢNG KÊ CHI TRẢ" in text
    assert today_local().strftime("%d/%m/%Y") in text
    assert "HTBD" in text and "Trần Thị Lan" in text
    assert "Một triệu chín trăm tám mươi nghìn đồng" in text
    for block in ("Người lập biểu", "Thủ quỹ", "Trưởng điểm/Phụ trách"):
        assert block in text
    assert "Trang 1/1" in text
    [export] = events(session, "export.written")
    assert export["kind"] == "daybook" and export["format"] == "pdf"
    assert export["filters"] == {"point": "HTBD", "date": today_local().isoformat()}


def test_a_long_day_runs_across_pages_with_its_header(session, world, day):
    session.rollback()
    result = daybook.settlement(session, world.users["supervisor"])
    row = result.rows[1]
    many = [
        daybook.PayoutRow(**{**row.__dict__, "payout_id": n, "receipt_no": f"HTBD-2026-{n:06d}"})
        for n in range(1, 121)
    ]
    long_day = daybook.Settlement(
        point=result.point, day=result.day, rows=many, current=result.current
    )
    from terminal.daybook_files import settlement_pdf

    _reader, pages = pdf_text(settlement_pdf(long_day, printed_at=datetime.now(UTC)))
    assert len(pages) >= 3
    for number, text in enumerate(pages, start=1):
        if "HTBD-2026-" in text:
            assert "Số biên nhận" in text  # the table's header, repeated
        assert f"Trang {number}/{len(pages)}" in text
    assert sum("HTBD-2026-" in text for text in pages) >= 3
    joined = "\n".join(pages)
    assert "HTBD-2026-000001" in joined and "HTBD-2026-000120" in joined


def test_the_settlement_workbook_keeps_numbers_as_numbers(session, as_role, day):
    # The printed settlement is the supervisor's; the spreadsheet is an export (auditors).
    assert as_role("supervisor").get("/daybook/settlement.xlsx").status_code == 403
    response = as_role("auditor").get("/daybook/settlement.xlsx?point=HTBD")
    assert response.status_code == 200
    sheet = load_workbook(io.BytesIO(response.data)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert rows[0][0] == "BẢNG KÊ CHI TRẢ"
    lan = next(r for r in rows if r[1] == day["lan"]["receipt_no"])
    assert lan[3:6] == ["TTH0000002", "Trần Thị Lan", 1_440_000]
    assert isinstance(lan[5], int)
    cash = next(r for r in rows if r[0] == "Tiền mặt tại quầy")
    assert cash[1:3] == [1, 1_440_000]
    advance = next(r for r in rows if r[0] == "Tiền mặt tạm ứng đầu ngày")
    assert advance[1] == ADVANCE
    [export] = events(session, "export.written")
    assert (export["kind"], export["format"], export["rows"]) == ("daybook", "xlsx", 3)


# ---- the signed payout list -----------------------------------------------------------


@pytest.fixture
def commune_list(session, world):
    """People of Thủy Dương (point A) for 2021-10, with what the list must say."""
    here, there = world.point_a.communes[0], world.point_a.communes[1]
    make_beneficiary(
        session,
        "TTH0000101",
        commune=here,
        full_name="Nguyễn Văn An",
        born=None,
        birth_year=1940,
        periods=(("2021-08", 0), ("2021-09", 0), ("2021-10", 0)),
    )
    make_beneficiary(
        session,
        "TTH0000102",
        commune=here,
        full_name="Lê Thị Bình",
        monthly=720_000,
        periods=(("2021-10", 1_440_000),),
    )
    paid = make_beneficiary(session, "TTH0000103", commune=here, full_name="Đã Nhận Rồi")
    make_beneficiary(session, "TTH0000104", commune=here, full_name="Tạm Dừng", status="suspended")
    make_beneficiary(session, "TTH0000105", commune=there, full_name="Xã Khác")
    with write_transaction(session):
        entitlement = session.scalar(
            select(Entitlement).where(Entitlement.beneficiary_id == paid.id)
        )
        entitlement.status = EntitlementStatus.PAID
    return here


def test_the_payout_list_has_the_due_people_and_their_earlier_months(session, world, commune_list):
    result = daybook.payout_list(
        session, world.users["supervisor"], commune=str(commune_list.id), period="2021-10"
    )
    assert [r.code for r in result.rows] == ["TTH0000101", "TTH0000102"] or [
        r.code for r in result.rows
    ] == ["TTH0000102", "TTH0000101"]
    rows = {r.code: r for r in result.rows}
    an, binh = rows["TTH0000101"], rows["TTH0000102"]
    assert (an.birth_year, an.monthly_vnd, an.arrears_vnd) == (1940, 540_000, 0)
    assert an.earlier_periods == ("08/2021", "09/2021") and an.earlier_vnd == 1_080_000
    assert an.total_vnd == 1_620_000
    assert (binh.monthly_vnd, binh.arrears_vnd, binh.earlier_vnd, binh.total_vnd) == (
        720_000,
        1_440_000,
        0,
        2_160_000,
    )
    assert [r.no for r in result.rows] == [1, 2]
    assert result.total_vnd == 3_780_000
    assert (result.monthly_vnd, result.arrears_vnd, result.earlier_vnd) == (
        1_260_000,
        1_440_000,
        1_080_000,
    )


def test_the_payout_list_page_and_files(session, world, as_role, commune_list):
    supervisor = as_role("supervisor")
    chooser = supervisor.get("/daybook/payout-list").get_data(as_text=True)
    assert f'value="{commune_list.id}"' in chooser and 'value="2021-10"' in chooser
    assert "Lăng Cô" not in chooser  # point B's commune
    query = f"commune={commune_list.id}&period=2021-10"
    page = supervisor.get(f"/daybook/payout-list?{query}").get_data(as_text=True)
    assert page.count('data-testid="list-row"') == 2
    assert f'value="{commune_list.id}" selected' in page and 'value="2021-10" selected' in page
    assert page.count(" selected>") == 2  # the commune and the period chosen, nothing else
    assert 'data-testid="list-total">3.780.000 đ' in page
    assert "Tạm Dừng" not in page and "Đã Nhận Rồi" not in page and "Xã Khác" not in page
    assert events(session, "export.written") == []  # looking is not exporting

    pdf = supervisor.get(f"/daybook/payout-list?{query}&format=pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    reader, pages = pdf_text(pdf.data)
    box = reader.pages[0].mediabox
    assert float(box.width) > float(box.height)
    text = "\n".join(pages)
    assert "DANH SÁCH CHI TRẢ" in text and "10/2021" in text
    assert "Nguyễn Văn An" in text and "1.620.000" in text and "3.780.000" in text
    assert "Ba triệu bảy trăm tám mươi nghìn đồng" in text
    assert "Người lập danh sách" in text and "Người phê duyệt" in text

    assert supervisor.get(f"/daybook/payout-list?{query}&format=xlsx").status_code == 403
    xlsx = as_role("auditor").get(f"/daybook/payout-list?{query}&format=xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.data)).active
    rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    an = next(r for r in rows if r[3] == "TTH0000101")
    assert an[:9] == [
        an[0],
        "Nguyễn Văn An",
        1940,
        "TTH0000101",
        540_000,
        0,
        "08/2021, 09/2021",
        1_080_000,
        1_620_000,
    ]
    total = next(r for r in rows if isinstance(r[1], str) and r[1].startswith("Cộng"))
    assert total[4:9] == [1_260_000, 1_440_000, None, 1_080_000, 3_780_000]
    recorded = events(session, "export.written")
    assert [(e["kind"], e["format"], e["rows"]) for e in recorded] == [
        ("payout_list", "pdf", 2),
        ("payout_list", "xlsx", 2),
    ]
    assert recorded[0]["filters"]["period"] == "2021-10"


def test_the_payout_list_of_another_points_commune_is_not_found(app, world, as_role, commune_list):
    other = app.test_client()
    login(other, world.users_b["supervisor"].username)
    response = other.get(
        f"/daybook/payout-list?commune={commune_list.id}&period=2021-10&format=pdf"
    )
    assert response.status_code == 404
    assert response.mimetype == "text/html"
    auditor = as_role("auditor")
    page = auditor.get(f"/daybook/payout-list?commune={commune_list.id}&period=2021-10")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('data-testid="list-row"') == 2


# ---- bad input: a message, and nothing changed --------------------------------------


@pytest.mark.parametrize(
    ("url", "status"),
    [
        ("/daybook/?date=2021-13-45", 400),
        ("/daybook/?point=HTBD&date=yesterday", 400),
        ("/daybook/?point=HTBD&date=2999-01-01", 400),
        ("/daybook/?point=NOPE", 404),
        ("/daybook/?point=%27%3B--", 404),
        ("/daybook/payout-list?commune=abc&period=2021-10", 404),
        ("/daybook/payout-list?commune=99999999999999999999999&period=2021-10", 404),
        ("/daybook/payout-list?commune={commune}&period=2021-13", 400),
        ("/daybook/payout-list?commune={commune}&period=1999-01", 400),
        ("/daybook/payout-list?commune={commune}&period=", 400),
        ("/daybook/payout-list?commune=&period=2021-10", 400),
        ("/daybook/payout-list?commune={district}&period=2021-10", 404),
    ],
)
def test_bad_queries_get_a_message(session, world, as_role, day, url, status):
    auditor = as_role("auditor")
    commune = world.point_a.communes[0]
    url = url.format(commune=commune.id, district=world.point_a.district_id)
    before = state(session)
    response = auditor.get(url)
    assert response.status_code == status
    assert 'data-testid="flash-error"' in response.get_data(as_text=True)
    assert state(session) == before


def test_a_bad_period_code_is_not_found(session, world, as_role):
    commune = world.point_a.communes[0]
    response = as_role("supervisor").get(
        f"/daybook/payout-list?commune={commune.id}&period=2020-01"
    )
    assert response.status_code == 404
    assert 'data-testid="flash-error"' in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "data",
    [
        {"returned": "ba triệu"},
        {"returned": "-5"},
        {"returned": "1.5"},
        {"returned": ""},
        {"returned": "3.560.000", "confirm": ""},
        {"returned": "3.560.000", "day": "2021-02-30"},
        {"returned": "3.560.000", "note": "x" * 501},
    ],
)
def test_a_bad_close_form_changes_nothing(session, as_role, day, data):
    supervisor = as_role("supervisor")
    before = state(session)
    form = {"day": today_local().isoformat(), "note": "", "confirm": "y", **data}
    response = submit(supervisor, "/daybook/close", form, form_page="/daybook/")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-testid="flash-error"' in html
    assert 'data-testid="close-form"' in html  # shown again to correct
    assert state(session) == before


@pytest.mark.parametrize(
    "body",
    [
        {"returned": "3560000"},
        {"returned": -1},
        {"returned": 1.5},
        {},
        {"returned": 0, "date": "02/12/2026"},
    ],
)
def test_a_bad_api_close_changes_nothing(session, client, tokens, day, body):
    before = state(session)
    response = client.post("/api/v1/daybook/close", json=body, headers=tokens("supervisor"))
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_request"
    assert state(session) == before


def test_a_bad_api_query_is_a_400(client, tokens, world):
    response = client.get("/api/v1/daybook?date=20211001", headers=tokens("supervisor"))
    assert response.status_code == 400
    response = client.get("/api/v1/daybook", headers=tokens("auditor"))
    assert response.status_code == 400
    assert response.get_json()["error"] == "point_missing"


def test_open_periods_are_listed_newest_first(session, world, commune_list):
    periods = [p.code for p in daybook.open_periods(session)]
    assert periods == sorted(periods, reverse=True) and "2021-10" in periods
    session.rollback()
    assert session.scalar(select(func.count(Period.id))) == len(periods)
    assert to_local(datetime.now(UTC)).date() == today_local()
