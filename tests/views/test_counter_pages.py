"""The counter pages through real forms: search, verify, confirm, pay, resubmit, reverse."""

from __future__ import annotations

import re
from datetime import date

import pytest
from sqlalchemy import func, select

from terminal.models import Entitlement, Failure, Payout, Receipt
from tests.conftest import csrf_from
from tests.factories import make_beneficiary, set_float

QR = "046153060816|186153060|Le Thi Huong|12101953|Nu|Thon 2, Thuy Duong|01012021\n"


@pytest.fixture
def hoa(world, session):
    person = make_beneficiary(
        session,
        "TTH0000001",
        commune=world.point_a.communes[0],
        periods=(("2021-09", 0), ("2021-10", 1_080_000)),
        proxy={"full_name": "Trần Văn Tư", "id_number": "046080000002", "relationship": "Con"},
    )
    set_float(session, "HTBD")
    return person


def post_form(client, page_url, action, data):
    html = client.get(page_url).get_data(as_text=True)
    return client.post(action, data={"csrf_token": csrf_from(html), **data})


def search(client, q):
    return post_form(client, "/counter/", "/counter/", {"q": q})


def verified_confirm_url(
    client, code="TTH0000001", collector="beneficiary", identity="046153060816"
):
    response = post_form(
        client,
        f"/counter/b/{code}",
        f"/counter/b/{code}/verify",
        {"collector": collector, "identity": identity},
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def pay_form(client, confirm_url):
    html = client.get(confirm_url).get_data(as_text=True)
    action = re.search(r'action="([^"]+/pay)"', html).group(1)
    data = {
        "csrf_token": csrf_from(html),
        "form_key": re.search(r'name="form_key"[^>]*value="([^"]+)"', html).group(1),
        "entitlements": re.findall(r'name="entitlements" value="(\d+)"', html),
        "channel": "cash",
        "provider_ref": "",
    }
    return html, action, data


def test_search_by_name_lists_masked_results(as_role, hoa):
    clerk = as_role("clerk")
    html = search(clerk, "le thi huong").get_data(as_text=True)
    assert 'data-testid="result-TTH0000001"' in html
    assert "********0816" in html and "046153060816" not in html
    assert "2.160.000 đ" in html


def test_search_by_scanned_qr_opens_the_beneficiary_prefilled(as_role, hoa):
    clerk = as_role("clerk")
    response = search(clerk, QR)
    html = response.get_data(as_text=True)
    assert 'data-testid="beneficiary-name"' in html
    assert 'value="046153060816|186153060' in html  # ready to verify with one Enter
    assert re.search(r'value="auto" checked', html)


def test_proxy_card_after_a_name_search_is_recognised(as_role, hoa, session):
    """The usual path: a name search, then the proxy's card with the default choice."""
    clerk = as_role("clerk")
    html = clerk.get("/counter/b/TTH0000001").get_data(as_text=True)
    assert re.search(r'value="auto" checked', html)
    confirm = verified_confirm_url(clerk, collector="auto", identity="046080000002")
    page = clerk.get(confirm).get_data(as_text=True)
    assert 'data-testid="collector-name">Trần Văn Tư<' in page
    session.rollback()
    assert session.scalar(select(func.count(Failure.id))) == 0


def test_the_clerks_choice_overrides_recognition(as_role, hoa, session):
    clerk = as_role("clerk")
    response = post_form(
        clerk,
        "/counter/b/TTH0000001",
        "/counter/b/TTH0000001/verify",
        {"collector": "beneficiary", "identity": "046080000002"},
    )
    assert response.status_code == 422
    html = response.get_data(as_text=True)
    assert 'data-code="id_mismatch"' in html
    session.rollback()
    failure = session.scalar(select(Failure))
    assert failure.detail_code == "verification.id_mismatch" and failure.detail == ""


def test_search_by_proxy_id_then_enter_verifies_the_proxy(as_role, hoa):
    clerk = as_role("clerk")
    html = search(clerk, "046080000002").get_data(as_text=True)
    assert 'value="046080000002"' in html and re.search(r'value="auto" checked', html)


def test_full_flow_and_resubmit_pays_once(as_role, hoa, session):
    clerk = as_role("clerk")
    confirm_url = verified_confirm_url(clerk, identity=QR)
    html, action, data = pay_form(clerk, confirm_url)
    assert "2.160.000 đ" in html
    assert "Hai triệu một trăm sáu mươi nghìn đồng" in html
    assert 'data-testid="card-compare"' in html and "Le Thi Huong" in html
    first = clerk.post(action, data=data)
    assert first.status_code == 303
    result_url = first.headers["Location"]
    again = clerk.post(action, data=data)  # the browser resubmits the same form
    assert again.status_code == 303 and again.headers["Location"] == result_url
    page = clerk.get(result_url).get_data(as_text=True)
    session.rollback()
    receipt_no = session.scalar(select(Receipt.receipt_no))
    assert receipt_no in page and "Đã trả" in page
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 1


def test_new_confirmation_for_a_paid_entitlement_is_refused(as_role, hoa, session):
    clerk = as_role("clerk")
    url = verified_confirm_url(clerk)
    _html, action, data = pay_form(clerk, url)
    clerk.post(action, data=data)
    url2 = verified_confirm_url(clerk)
    html2 = clerk.get(url2).get_data(as_text=True)
    assert 'data-testid="nothing-due"' in html2
    # A crafted form naming the paid entitlement is refused too.
    data2 = {**data, "csrf_token": csrf_from(html2), "form_key": "another-form"}
    refused = clerk.post(url2.replace("/v/", "/v/") + "/pay", data=data2)
    assert refused.status_code in (400, 409)
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 1


def test_wrong_id_is_refused_and_recorded(as_role, hoa, session):
    clerk = as_role("clerk")
    response = post_form(
        clerk,
        "/counter/b/TTH0000001",
        "/counter/b/TTH0000001/verify",
        {"collector": "beneficiary", "identity": "046153060899"},
    )
    assert response.status_code == 422
    assert 'data-testid="verify-error"' in response.get_data(as_text=True)
    session.rollback()
    assert session.scalar(select(Failure.reason)).value == "id_mismatch"


def test_other_points_beneficiary_is_404(as_role, world, session):
    make_beneficiary(
        session, "TTH0000050", commune=world.point_b.communes[0], id_number="046160000050"
    )
    clerk = as_role("clerk")
    assert clerk.get("/counter/b/TTH0000050").status_code == 404
    assert 'data-testid="no-results"' in search(clerk, "TTH0000050").get_data(as_text=True)


def test_cash_float_set_by_supervisor_and_enforced(as_role, world, session):
    make_beneficiary(
        session, "TTH0000060", commune=world.point_a.communes[0], id_number="046160000060"
    )
    supervisor = as_role("supervisor")
    saved = post_form(supervisor, "/counter/cash", "/counter/cash", {"advance": "300.000"})
    assert saved.status_code == 303
    clerk = as_role("clerk")
    url = verified_confirm_url(clerk, "TTH0000060", identity="046160000060")
    _html, action, data = pay_form(clerk, url)
    refused = clerk.post(action, data=data)
    assert refused.status_code == 422
    assert "tiền mặt" in refused.get_data(as_text=True).lower()
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 0
    page = clerk.get("/counter/cash").get_data(as_text=True)
    assert "300.000 đ" in page and 'data-testid="float-form"' not in page  # clerks only read it


def test_supervisor_reverses_and_entitlements_are_due_again(as_role, hoa, session):
    clerk = as_role("clerk")
    _html, action, data = pay_form(clerk, verified_confirm_url(clerk))
    result_url = clerk.post(action, data=data).headers["Location"]
    payout_id = int(result_url.rstrip("/").split("/")[-1])
    supervisor = as_role("supervisor")
    page = supervisor.get(result_url).get_data(as_text=True)
    response = supervisor.post(
        f"/counter/payouts/{payout_id}/reverse",
        data={"csrf_token": csrf_from(page), "reason": "Trả nhầm người nhận"},
    )
    assert response.status_code == 303
    session.rollback()
    session.expire_all()
    session.rollback()
    assert session.get(Payout, payout_id).status.value == "reversed"
    assert (
        session.scalar(select(func.count(Entitlement.id)).where(Entitlement.status == "due")) == 2
    )
    assert "ĐÃ HỦY" in supervisor.get(result_url).get_data(as_text=True)
    # A clerk may not reverse.
    assert clerk.post(
        f"/counter/payouts/{payout_id}/reverse",
        data={"csrf_token": csrf_from(page), "reason": "x" * 10},
    ).status_code in (400, 403)


def test_receipt_pdf_and_reprint(as_role, hoa, session):
    clerk = as_role("clerk")
    _html, action, data = pay_form(clerk, verified_confirm_url(clerk))
    result_url = clerk.post(action, data=data).headers["Location"]
    pdf = clerk.get(result_url + "/receipt.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    page = clerk.get(result_url).get_data(as_text=True)
    token = re.search(r'action="[^"]+/reprint"[^>]*>\s*<input[^>]*value="([^"]+)"', page)
    reprint = clerk.post(
        result_url + "/reprint", data={"csrf_token": csrf_from(page.split("/reprint")[1])}
    )
    assert reprint.status_code == 200 and reprint.mimetype == "application/pdf"
    assert token is None or token
    session.rollback()
    session.expire_all()
    session.rollback()
    assert session.scalar(select(Receipt.reprint_count)) == 1


def test_log_a_manual_failure(as_role, hoa, session):
    clerk = as_role("clerk")
    response = post_form(
        clerk,
        "/counter/b/TTH0000001",
        "/counter/b/TTH0000001/failure",
        {"reason": "otp_not_received", "detail": "Chờ 10 phút không có OTP"},
    )
    assert response.status_code == 303
    session.rollback()
    failure = session.scalars(select(Failure)).one()
    assert failure.reason.value == "otp_not_received" and failure.status.value == "open"
    assert failure.due_by > date(2021, 1, 1)


def test_auditor_and_admin_cannot_open_the_counter(as_role, hoa):
    for role in ("auditor", "admin"):
        assert as_role(role).get("/counter/").status_code == 403
