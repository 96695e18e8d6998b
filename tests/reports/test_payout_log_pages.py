"""The auditors' payout log pages (``/audit/payouts``): filters, sorting, keyset pages, detail."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from terminal.clock import to_local
from terminal.db import write_transaction
from terminal.models import (
    Area,
    Beneficiary,
    Entitlement,
    FailureReason,
    Payout,
    PayoutLine,
    PayoutPoint,
    Period,
    Receipt,
    User,
)
from terminal.money import format_vnd
from terminal.services.failures import log_failure
from tests.conftest import api_token, bearer, csrf_from
from tests.reports.builders import build

ROW = re.compile(r'data-testid="payout-row" data-payout-id="(\d+)"')
NEXT = re.compile(r'href="([^"]+)" data-testid="pager-next"')
PREV = re.compile(r'href="([^"]+)" data-testid="pager-prev"')


@pytest.fixture
def paid(session: Any, world: Any) -> Any:
    """Pay, reverse and repay through the real services in both points' communes."""
    return build(session, world, people=22)


def raw_payouts(session: Any) -> list[dict[str, Any]]:
    """Every payout with the facts the filters read, straight from the tables."""
    session.rollback()
    rows = session.execute(
        select(
            Payout.id,
            Payout.paid_at,
            Payout.amount_vnd,
            Payout.channel,
            Payout.collector_type,
            Payout.status,
            PayoutPoint.code.label("point"),
            User.username,
            Area.name.label("commune"),
            Area.parent_id,
            Beneficiary.code,
        )
        .join(PayoutPoint, PayoutPoint.id == Payout.point_id)
        .join(User, User.id == Payout.user_id)
        .join(Beneficiary, Beneficiary.id == Payout.beneficiary_id)
        .join(Area, Area.id == Beneficiary.commune_id)
    ).all()
    districts = dict(session.execute(select(Area.id, Area.name)).all())
    periods: dict[int, set[str]] = {}
    for payout_id, code in session.execute(
        select(PayoutLine.payout_id, Period.code)
        .join(Entitlement, Entitlement.id == PayoutLine.entitlement_id)
        .join(Period, Period.id == Entitlement.period_id)
    ):
        periods.setdefault(payout_id, set()).add(code)
    return [
        {
            "id": r.id,
            "paid_at": r.paid_at,
            "amount": r.amount_vnd,
            "channel": "account" if r.channel.value == "account" else "cash",
            "collector": r.collector_type.value,
            "status": r.status.value,
            "point": r.point,
            "staff": r.username,
            "commune": r.commune,
            "district": districts[r.parent_id],
            "code": r.code,
            "periods": periods.get(r.id, set()),
        }
        for r in rows
    ]


def english(client: Any) -> Any:
    """Switch a signed-in client's pages to English (Vietnamese is the default)."""
    home = client.get("/").get_data(as_text=True)
    client.post("/lang", data={"csrf_token": csrf_from(home), "lang": "en", "next": "/"})
    return client


def walk(client: Any, url: str, **args: Any) -> list[int]:
    """Follow the pager's Next links from a page; return every row's payout id in order."""
    response = client.get(url, query_string=args)
    assert response.status_code == 200, response.get_data(as_text=True)[:400]
    html = response.get_data(as_text=True)
    ids = [int(i) for i in ROW.findall(html)]
    seen = 0
    while match := NEXT.search(html):
        seen += 1
        assert seen < 100
        html = client.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
        ids += [int(i) for i in ROW.findall(html)]
    return ids


def test_every_filter_narrows_to_exactly_its_payouts(as_role, paid, session):
    raw = raw_payouts(session)
    assert len(raw) > 15
    auditor = as_role("auditor")
    some = raw[0]
    day = to_local(some["paid_at"]).date()
    cases = [
        ({"period": "2021-09"}, lambda p: "2021-09" in p["periods"]),
        ({"period": "2021-10"}, lambda p: "2021-10" in p["periods"]),
        ({"from": day.isoformat(), "to": day.isoformat()}, lambda p: True),
        ({"from": day.strftime("%d/%m/%Y")}, lambda p: True),
        ({"district": "phu loc"}, lambda p: p["district"] == "Phú Lộc"),
        ({"commune": "Thủy Vân"}, lambda p: p["commune"] == "Thủy Vân"),
        ({"point": "plvt"}, lambda p: p["point"] == "PLVT"),
        ({"staff": "clerkb"}, lambda p: p["staff"] == "clerkb"),
        ({"channel": "account"}, lambda p: p["channel"] == "account"),
        ({"channel": "cash"}, lambda p: p["channel"] == "cash"),
        ({"collector": "proxy"}, lambda p: p["collector"] == "proxy"),
        ({"status": "reversed"}, lambda p: p["status"] == "reversed"),
        (
            {"district": "Hương Thủy", "channel": "cash", "collector": "beneficiary"},
            lambda p: (
                p["district"] == "Hương Thủy"
                and p["channel"] == "cash"
                and p["collector"] == "beneficiary"
            ),
        ),
    ]
    for args, wanted in cases:
        expected = {p["id"] for p in raw if wanted(p)}
        got = walk(auditor, "/audit/payouts", **args)
        assert len(got) == len(set(got)), args
        assert set(got) == expected, args
        assert 0 < len(expected) < len(raw) or args.get("from"), args


def test_sorting_newest_oldest_and_by_amount(as_role, paid, session):
    raw = raw_payouts(session)
    auditor = as_role("auditor")
    orders = {
        "newest": sorted(raw, key=lambda p: (p["paid_at"], p["id"]), reverse=True),
        "oldest": sorted(raw, key=lambda p: (p["paid_at"], p["id"])),
        "amount_desc": sorted(raw, key=lambda p: (p["amount"], p["id"]), reverse=True),
        "amount_asc": sorted(raw, key=lambda p: (p["amount"], p["id"])),
    }
    assert walk(auditor, "/audit/payouts") == [p["id"] for p in orders["newest"]]
    for sort, expected in orders.items():
        assert walk(auditor, "/audit/payouts", sort=sort) == [p["id"] for p in expected], sort


def _tie(session: Any) -> None:
    """Give the payouts only two times and two amounts: keyset pages must break the ties."""
    moment = datetime(2021, 10, 5, 3, 0, tzinfo=UTC)
    with write_transaction(session):
        ids = list(session.scalars(select(Payout.id).order_by(Payout.id)))
        for n, payout_id in enumerate(ids):
            session.execute(
                update(Payout)
                .where(Payout.id == payout_id)
                .values(
                    paid_at=moment + timedelta(seconds=n % 2),
                    amount_vnd=540_000 if n % 3 else 1_080_000,
                )
            )


@pytest.mark.parametrize("sort", ["newest", "oldest", "amount_desc", "amount_asc"])
def test_keyset_pages_with_equal_times_and_amounts_neither_skip_nor_repeat(
    as_role, paid, session, monkeypatch, sort
):
    import terminal.views.audit

    _tie(session)
    raw = raw_payouts(session)
    monkeypatch.setattr(terminal.views.audit, "PAGE_SIZE", 4)
    auditor = as_role("auditor")
    forwards = walk(auditor, "/audit/payouts", sort=sort)
    assert sorted(forwards) == sorted(p["id"] for p in raw)
    # And back again with Previous, page by page, to the first page.
    html = auditor.get("/audit/payouts", query_string={"sort": sort}).get_data(as_text=True)
    pages = [ROW.findall(html)]
    while match := NEXT.search(html):
        html = auditor.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
        pages.append(ROW.findall(html))
    back = [pages[-1]]
    while match := PREV.search(html):
        html = auditor.get(match.group(1).replace("&amp;", "&")).get_data(as_text=True)
        back.append(ROW.findall(html))
    assert back[::-1] == pages
    assert "pager-prev" not in html  # the first page again


def test_api_keyset_with_ties_and_before(client, world, paid, session):
    _tie(session)
    raw = raw_payouts(session)
    auditor = bearer(api_token(client, "auditor1"))
    for sort in ("newest", "amount_asc"):
        ids, cursor, pages = [], None, []
        while True:
            query = {"limit": 3, "sort": sort, **({"cursor": cursor} if cursor else {})}
            body = client.get("/api/v1/payouts", query_string=query, headers=auditor).get_json()
            pages.append(body)
            ids += [item["payout_id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if not cursor:
                break
        assert sorted(ids) == sorted(p["id"] for p in raw) and len(ids) == len(set(ids))
        # The page before the last is what "before" gives from the last.
        before = client.get(
            "/api/v1/payouts",
            query_string={"limit": 3, "sort": sort, "before": pages[-1]["prev_cursor"]},
            headers=auditor,
        ).get_json()
        assert before["items"] == pages[-2]["items"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"after": "not-a-cursor"}, "That page link is not valid any more"),
        ({"after": "bmV3ZXN0OjE6MQ", "sort": "amount_asc"}, "That page link is not valid any more"),
        ({"before": "%%%"}, "That page link is not valid any more"),
        ({"period": "2021-13"}, "Write the period as YYYY-MM"),
        ({"from": "31/02/2021"}, "Write the start date as dd/mm/yyyy"),
        ({"from": "0001-01-01"}, "Write the start date as dd/mm/yyyy"),
        ({"from": "2021-10-05", "to": "2021-10-01"}, "on or after the start date"),
        ({"status": "lost"}, "Choose a status from the list"),
        ({"channel": "gold"}, "Choose a channel from the list"),
        ({"collector": "x"}, "Choose who collected from the list"),
        ({"sort": "random"}, "Choose an order from the list"),
        ({"staff": "x" * 70}, "Check the filters"),
    ],
)
def test_bad_cursors_and_filters_are_a_message_not_a_500(as_role, paid, args, message):
    auditor = english(as_role("auditor"))
    response = auditor.get("/audit/payouts", query_string=args)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert 'data-testid="flash-error"' in html
    assert message in html, html[html.find("flash") : html.find("flash") + 300]
    assert "payout-row" not in html


def test_api_bad_cursor_is_400_json(client, world, paid):
    auditor = bearer(api_token(client, "auditor1"))
    for query in (
        {"cursor": "garbage!"},
        {"cursor": "bmV3ZXN0OjE6MQ", "sort": "oldest"},  # a cursor of another order
        {"before": "AAAA"},
        {"period": "2021-1"},
        {"sort": "up"},
        {"channel": "gold"},
    ):
        response = client.get("/api/v1/payouts", query_string=query, headers=auditor)
        assert response.status_code == 400, query
        assert response.get_json()["error"] == "invalid_request"


def test_staff_see_only_their_point(as_role, paid, session):
    raw = raw_payouts(session)
    clerk = as_role("clerk")
    mine = {p["id"] for p in raw if p["point"] == "HTBD"}
    assert set(walk(clerk, "/audit/payouts")) == mine
    # Asking for the other point shows nothing of it, and its payouts look missing.
    assert walk(clerk, "/audit/payouts", point="PLVT") == []
    theirs = next(p["id"] for p in raw if p["point"] == "PLVT")
    assert clerk.get(f"/audit/payouts/{theirs}").status_code == 404
    assert clerk.get(f"/audit/payouts/{min(mine)}").status_code == 200
    # No export for staff: the links are not there, and the route refuses.
    html = clerk.get("/audit/payouts").get_data(as_text=True)
    assert "export-csv" not in html and 'data-testid="filter-point"' not in html
    assert clerk.get("/audit/payouts/export?format=csv").status_code == 403


def test_quick_find_jumps_to_a_receipt_or_a_beneficiary(as_role, paid, session):
    session.rollback()
    receipt_no, payout_id = session.execute(
        select(Receipt.receipt_no, Receipt.payout_id).order_by(Receipt.id)
    ).first()
    auditor = as_role("auditor")
    found = auditor.get("/audit/payouts", query_string={"q": receipt_no.lower()})
    assert found.status_code == 303
    assert found.headers["Location"].endswith(f"/audit/payouts/{payout_id}")
    # A beneficiary paid twice (reversed, then repaid): the list of their payouts.
    code = next(c for c, case in paid.cases.items() if case == "repaid")
    listed = auditor.get("/audit/payouts", query_string={"q": code})
    html = listed.get_data(as_text=True)
    assert listed.status_code == 200 and len(ROW.findall(html)) == 2
    assert code in html
    once = next(c for c, case in paid.cases.items() if case == "paid")
    assert auditor.get("/audit/payouts", query_string={"q": once}).status_code == 303
    missing = auditor.get("/audit/payouts", query_string={"q": "NOPE-1"})
    assert missing.status_code == 404 and 'data-testid="flash-error"' in missing.get_data(
        as_text=True
    )


def test_the_detail_page_tells_the_whole_story(as_role, paid, session, world):
    session.rollback()
    # A reversed payout of point A, whose supervisor may open its receipt PDF.
    payout = session.scalar(
        select(Payout)
        .where(Payout.status == "reversed", Payout.point_id == world.point_a.id)
        .order_by(Payout.id)
    )
    person = payout.beneficiary
    failure = log_failure(
        session,
        user=world.users["clerk"],
        reason=FailureReason.OTP_NOT_RECEIVED,
        beneficiary_id=person.id,
    )
    auditor = as_role("auditor")
    html = auditor.get(f"/audit/payouts/{payout.id}").get_data(as_text=True)
    assert payout.receipt.receipt_no in html
    assert 'data-testid="receipt-reprints">0<' in html
    assert "/r/" in html  # the public verify link
    assert "receipt-pdf" not in html  # auditors have no counter: no PDF route for them
    assert "id_number" in html  # how the collector was verified
    assert payout.reversal_reason in html  # the reversal's reason
    assert 'data-testid="reversal"' in html
    assert "10/2021" in html and format_vnd(payout.amount_vnd) in html
    assert f"#{failure.id}" in html
    actions = re.findall(r'data-testid="event-action">([^<]+)<', html)
    assert actions[:1] == ["verification.succeeded"] or "verification.succeeded" in actions
    assert "payout.recorded" in actions and "payout.reversed" in actions
    # The supervisor of the point may open the receipt PDF from here.
    supervisor = as_role("supervisor")
    page = supervisor.get(f"/audit/payouts/{payout.id}").get_data(as_text=True)
    assert f"/counter/payouts/{payout.id}/receipt.pdf" in page
    assert auditor.get("/audit/payouts/999999").status_code == 404


def test_the_table_shows_money_the_vietnamese_way(as_role, paid):
    auditor = as_role("auditor")
    html = auditor.get("/audit/payouts").get_data(as_text=True)
    assert re.search(r'data-testid="payout-amount">\d{3}\.\d{3} đ<', html)
    assert 'data-testid="log-filters"' in html and 'data-testid="quick-find"' in html
