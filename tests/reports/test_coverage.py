"""Coverage of a period (API.md, "Audit and reports"): the figures match a count by hand."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from sqlalchemy import select

from terminal.models import AuditEvent, point_communes
from terminal.services import reports
from terminal.services.errors import Forbidden, InvalidInput, NotFound
from tests.conftest import api_token, bearer
from tests.reports.builders import PERIOD, build, expected_coverage, raw_tables

FIGURES = (
    "beneficiaries",
    "paid",
    "paid_pct",
    "amount_due",
    "amount_paid",
    "cash",
    "account",
    "via_proxy",
)


@pytest.fixture
def built(session, world):
    """Two districts, five communes, every case of payment, through the services."""
    return build(session, world)


def _as_table(body):
    """Return an answer's rows and total as {area: figures}."""
    rows = {row["area"]: {k: row[k] for k in FIGURES} for row in body["rows"]}
    rows["total"] = {k: body["total"][k] for k in FIGURES}
    return rows


@pytest.mark.parametrize("group_by", ["district", "commune"])
def test_the_auditor_sees_every_area_as_counted_by_hand(app, session, world, built, group_by):
    expected = expected_coverage(raw_tables(session), group_by)
    token = api_token(app.test_client(), "auditor1")
    response = app.test_client().get(
        f"/api/v1/reports/coverage?period={PERIOD}&group_by={group_by}", headers=bearer(token)
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["period"] == PERIOD
    assert _as_table(body) == expected
    areas = {"district": {"Hương Thủy", "Phú Lộc"}}.get(group_by) or {
        "Thủy Dương",
        "Thủy Vân",
        "Phú Bài",
        "Lăng Cô",
        "Vinh Mỹ",
    }
    assert {row["area"] for row in body["rows"]} == areas
    total = body["total"]
    # The world holds every case, so none of these is trivially zero.
    assert 0 < total["via_proxy"] < total["paid"] < total["beneficiaries"]
    assert total["cash"] > 0 and total["account"] > 0
    assert total["cash"] + total["account"] == total["paid"]


def test_cancelled_entitlements_and_reversed_payouts_count_as_the_docstring_says(
    session, world, built
):
    report = reports.coverage(session, None, period=PERIOD, group_by="district")
    counts = {case: list(built.cases.values()).count(case) for case in set(built.cases.values())}
    stopped_cancelled = sum(
        1 for n, case in enumerate(built.cases.values()) if case == "stopped" and n % 2 == 0
    )
    people = len(built.cases)
    # Cancelled entitlements are nobody's due this month.
    assert report.total.beneficiaries == people - counts["cancelled"] - stopped_cancelled
    # Paid: this month paid, alone or with the earlier one, or paid again after a reversal;
    # a reversed payout alone pays nothing.
    paid = (
        counts["paid"]
        + counts["paid_proxy"]
        + counts["paid_both_periods"]
        + counts["repaid"]
        + counts["home"]
    )
    assert report.total.paid == paid


def test_a_supervisor_sees_only_the_communes_of_their_point(app, session, world, built):
    scope = set(
        session.scalars(
            select(point_communes.c.commune_id).where(point_communes.c.point_id == world.point_a.id)
        )
    )
    expected = expected_coverage(raw_tables(session), "commune", scope)
    token = api_token(app.test_client(), "supervisor1")
    body = (
        app.test_client()
        .get(f"/api/v1/reports/coverage?period={PERIOD}&group_by=commune", headers=bearer(token))
        .get_json()
    )
    assert _as_table(body) == expected
    assert {row["area"] for row in body["rows"]} == {"Thủy Dương", "Thủy Vân", "Phú Bài"}
    by_district = (
        app.test_client()
        .get(f"/api/v1/reports/coverage?period={PERIOD}&group_by=district", headers=bearer(token))
        .get_json()
    )
    assert [row["area"] for row in by_district["rows"]] == ["Hương Thủy"]
    assert by_district["total"]["beneficiaries"] == expected["total"]["beneficiaries"]


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ("period=2021-13&group_by=district", 400, "period_invalid"),
        ("period=10/2021&group_by=district", 400, "period_invalid"),
        ("group_by=district", 400, "period_invalid"),
        (f"period={PERIOD}&group_by=village", 400, "group_by_invalid"),
        (f"period={PERIOD}&group_by=", 400, "group_by_invalid"),
        ("period=2030-01&group_by=commune", 404, "period_not_found"),
        ("period=" + "9" * 30, 400, "invalid_request"),
    ],
)
def test_bad_inputs_are_400_with_a_clear_message(app, world, built, query, status, code):
    token = api_token(app.test_client(), "auditor1")
    response = app.test_client().get(f"/api/v1/reports/coverage?{query}", headers=bearer(token))
    assert response.status_code == status
    body = response.get_json()
    assert body["error"] == code
    assert body["message"]


@pytest.mark.parametrize("role", ["clerk", "agent", "delivery", "admin"])
def test_other_roles_are_refused(app, world, role):
    token = api_token(app.test_client(), world.users[role].username)
    response = app.test_client().get(
        f"/api/v1/reports/coverage?period={PERIOD}", headers=bearer(token)
    )
    assert response.status_code == 403


def test_the_service_refuses_without_the_permission(session, world):
    with pytest.raises(Forbidden):
        reports.coverage(session, world.users["clerk"], period=PERIOD, group_by="commune")
    with pytest.raises(InvalidInput):
        reports.coverage(session, None, period="2021-1", group_by="commune")
    with pytest.raises(NotFound):
        reports.coverage(session, None, period="2021-10", group_by="commune")


def test_paid_pct_is_rounded_half_up_and_zero_without_beneficiaries():
    def row(paid, people):
        """Return a row with these counts."""
        return reports.CoverageRow("x", None, people, paid, 0, 0, paid, 0, 0)

    assert row(2053, 4716).paid_pct == Decimal("43.5")
    assert row(1, 8).paid_pct == Decimal("12.5")  # 12.5 exactly
    assert row(1, 16).paid_pct == Decimal("6.3")  # 6.25 rounds up
    assert row(2, 3).paid_pct == Decimal("66.7")
    assert row(8364, 8364).paid_pct == Decimal("100.0")
    assert row(0, 0).paid_pct == Decimal("0")


# ---- the page ---------------------------------------------------------------------------


def test_the_page_shows_the_summary_line_a_chart_and_the_table(as_role, session, world, built):
    expected = expected_coverage(raw_tables(session), "commune")
    page = as_role("auditor").get(f"/reports/coverage?period={PERIOD}&group_by=commune")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    total = expected["total"]
    pct = f"{Decimal(str(total['paid_pct'])):.1f}".replace(".", ",")
    line = re.search(r'data-testid="coverage-summary-line">([^<]+)<', html).group(1)
    assert line.startswith(f"{total['paid']}/{total['beneficiaries']} ")
    assert line.endswith(f"({pct}%)")
    svg = re.search(r"<svg[^>]*coverage-chart.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
    bars = re.findall(r'data-testid="chart-bar" data-area="([^"]+)"', svg)
    assert sorted(bars) == sorted(k for k in expected if k != "total")
    assert len(re.findall(r'data-testid="coverage-row"', html)) == len(bars)
    # Money as on every page: "1.234.000 đ".
    amount = f"{total['amount_due']:,}".replace(",", ".") + " đ"
    assert amount in html
    # Auditors get the return file's links; the table's downloads are for everyone here.
    assert 'data-testid="return-file-xlsx"' in html


def test_the_pilots_summary_line_in_vietnamese_numbers(app):
    from terminal.views.reports import summary_line

    row = reports.CoverageRow("Hương Thủy", None, 4716, 2053, 0, 0, 0, 2053, 0)
    with app.test_request_context("/", headers={"Accept-Language": "vi"}):
        line = summary_line(row)
    assert line.startswith("2.053/4.716 ")
    assert line.endswith("(43,5%)")


def test_a_supervisor_page_lists_their_communes_without_the_return_file(as_role, world, built):
    html = as_role("supervisor").get(f"/reports/coverage?period={PERIOD}&group_by=commune")
    text = html.get_data(as_text=True)
    bars = re.findall(r'data-testid="chart-bar" data-area="([^"]+)"', text)
    assert sorted(bars) == sorted(["Thủy Dương", "Thủy Vân", "Phú Bài"])
    assert "return-file" not in text


def test_the_page_says_what_is_wrong_and_never_fails(as_role, world, built):
    auditor = as_role("auditor")
    for query, status in (
        ("period=2021-13", 400),
        ("period=abc&group_by=commune", 400),
        (f"period={PERIOD}&group_by=thon", 400),
        ("period=2031-01", 404),
        (f"period={PERIOD}&format=pdf", 400),
    ):
        response = auditor.get(f"/reports/coverage?{query}")
        assert response.status_code == status, query
        assert 'data-testid="flash-error"' in response.get_data(as_text=True), query


def test_the_page_without_any_period_says_so(as_role, world):
    html = as_role("auditor").get("/reports/coverage").get_data(as_text=True)
    assert 'data-testid="coverage-no-periods"' in html


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_the_table_downloads_and_the_download_is_audited(as_role, session, world, built, fmt):
    import io

    expected = expected_coverage(raw_tables(session), "district")
    before = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    response = as_role("supervisor").get(
        f"/reports/coverage?period={PERIOD}&group_by=district&format={fmt}"
    )
    assert response.status_code == 200
    if fmt == "csv":
        import csv

        text = response.get_data().decode("utf-8-sig")
        rows = list(csv.reader(io.StringIO(text)))
    else:
        from openpyxl import load_workbook

        sheet = load_workbook(io.BytesIO(response.get_data()), read_only=True).active
        rows = [[("" if v is None else v) for v in r] for r in sheet.iter_rows(values_only=True)]
    header, body = rows[0], rows[1:]
    assert header[:4] == ["area", "district", "beneficiaries", "paid"]
    assert [r[0] for r in body] == ["Hương Thủy", "total"]  # the supervisor's district only
    assert str(body[0][4]) == str(Decimal(str(expected["Hương Thủy"]["paid_pct"])))
    session.rollback()
    event = session.scalar(
        select(AuditEvent).where(
            AuditEvent.seq > (before or 0), AuditEvent.action == "export.written"
        )
    )
    assert event is not None and event.actor == "supervisor1"
    assert '"kind":"coverage"' in event.data.replace(" ", "")
