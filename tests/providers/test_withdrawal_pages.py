"""The agent's pages at an http point: send the code, type it, get the receipt; pending: stop."""

from __future__ import annotations

import io
import re

from sqlalchemy import func, select

from terminal.models import Failure, Payout, Withdrawal
from tests.conftest import csrf_from, login
from tests.providers.helpers import account_holder
from tests.views.test_counter_pages import verified_confirm_url


def _agent(app):
    client = app.test_client()
    assert login(client, "agentb").status_code == 302
    return client


def _send_code(client, person):
    confirm_url = verified_confirm_url(client, code=person.code, identity=person.id_number)
    html = client.get(confirm_url).get_data(as_text=True)
    assert 'data-testid="withdraw-form"' in html and 'data-testid="pay-form"' not in html
    assert "******0001" in html or "****" in html  # the account number is masked
    action = re.search(r'action="([^"]+/withdraw)"', html).group(1)
    data = {
        "csrf_token": csrf_from(html),
        "form_key": re.search(r'name="form_key"[^>]*value="([^"]+)"', html).group(1),
        "entitlements": re.findall(r'name="entitlements" value="(\d+)"', html),
    }
    sent = client.post(action, data=data)
    return sent, action, data


def test_send_the_code_type_it_and_get_the_receipt(app, http_point, session, sandbox):
    person = account_holder(session, http_point, 21)
    agent = _agent(app)
    sent, action, data = _send_code(agent, person)
    assert sent.status_code == 303, sent.get_data(as_text=True)[:500]
    page_url = sent.headers["Location"]
    assert re.search(r"/withdrawals/\d+$", page_url)
    # A double click on "send the code" asks the provider once.
    assert agent.post(action, data=data).headers["Location"] == page_url
    html = agent.get(page_url).get_data(as_text=True)
    assert 'data-testid="otp-input"' in html and "540.000 đ" in html
    session.rollback()
    withdrawal = session.scalars(select(Withdrawal)).one()
    wrong = agent.post(f"{page_url}/otp", data={"csrf_token": csrf_from(html), "otp": "000001"})
    assert wrong.status_code == 422
    assert "Mã không đúng. Còn 2 lần thử." in wrong.get_data(as_text=True)
    code = sandbox.otp(withdrawal.client_ref)
    paid = agent.post(f"{page_url}/otp", data={"csrf_token": csrf_from(html), "otp": code})
    assert paid.status_code == 303 and "/counter/payouts/" in paid.headers["Location"]
    result = agent.get(paid.headers["Location"]).get_data(as_text=True)
    assert "PLVT-" in result
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 1


def test_pending_tells_the_agent_not_to_hand_over_money(app, http_point, session, sandbox):
    person = account_holder(session, http_point, 22)
    agent = _agent(app)
    sent, _action, _data = _send_code(agent, person)
    page_url = sent.headers["Location"]
    html = agent.get(page_url).get_data(as_text=True)
    session.rollback()
    withdrawal = session.scalars(select(Withdrawal)).one()
    code = sandbox.otp(withdrawal.client_ref)
    sandbox.faults(timeout_rate=1.0)
    answer = agent.post(f"{page_url}/otp", data={"csrf_token": csrf_from(html), "otp": code})
    sandbox.faults()
    assert answer.status_code == 303
    page = agent.get(page_url).get_data(as_text=True)
    assert 'data-testid="withdrawal-pending"' in page
    assert "KHÔNG GIAO TIỀN" in page
    # The point's list shows it; the supervisor's button completes it.
    supervisor = app.test_client()
    login(supervisor, "supervisorb")
    listing = supervisor.get("/withdrawals/").get_data(as_text=True)
    assert withdrawal.client_ref in listing
    done = supervisor.post("/withdrawals/reconcile", data={"csrf_token": csrf_from(listing)})
    assert done.status_code == 303
    assert agent.get(page_url).status_code == 303  # completed: on to its receipt


def test_three_lost_codes_end_in_a_case(app, http_point, session, sandbox):
    sandbox.faults(otp_loss=1.0)
    person = account_holder(session, http_point, 23)
    agent = _agent(app)
    sent, _action, _data = _send_code(agent, person)
    page_url = sent.headers["Location"]
    for _ in range(3):
        html = agent.get(page_url).get_data(as_text=True)
        agent.post(f"{page_url}/resend", data={"csrf_token": csrf_from(html)})
    page = agent.get(page_url).get_data(as_text=True)
    assert 'data-testid="withdrawal-ended"' in page
    session.rollback()
    assert (
        session.scalar(select(func.count(Failure.id)).where(Failure.reason == "otp_not_received"))
        == 1
    )


def test_the_supervisor_matches_a_settlement_file(app, http_point, session, sandbox):
    person = account_holder(session, http_point, 24)
    agent = _agent(app)
    sent, _action, _data = _send_code(agent, person)
    page_url = sent.headers["Location"]
    html = agent.get(page_url).get_data(as_text=True)
    session.rollback()
    withdrawal = session.scalars(select(Withdrawal)).one()
    code = sandbox.otp(withdrawal.client_ref)
    agent.post(f"{page_url}/otp", data={"csrf_token": csrf_from(html), "otp": code})
    session.rollback()
    paid_at = session.scalars(select(Payout.paid_at)).one().isoformat()
    supervisor = app.test_client()
    login(supervisor, "supervisorb")
    listing = supervisor.get("/withdrawals/").get_data(as_text=True)
    csv = (
        "client_ref,amount,status,time\n"
        f"{withdrawal.client_ref},540000,paid,{paid_at}\n"
        f"PLVT-unknown-1,100000,paid,{paid_at}\n"
    ).encode()
    answer = supervisor.post(
        "/withdrawals/settlement",
        data={"csrf_token": csrf_from(listing), "file": (io.BytesIO(csv), "vtp-2021-10.csv")},
        content_type="multipart/form-data",
    )
    page = answer.get_data(as_text=True)
    assert answer.status_code == 200, page[:1000]
    assert 'data-testid="settlement-report"' in page and "PLVT-unknown-1" in page


def test_the_supervisor_may_pay_cash_when_the_account_cannot_pay_out(app, http_point, session):
    from tests.factories import set_float

    person = account_holder(session, http_point, 25)
    set_float(session, "PLVT")
    supervisor = app.test_client()
    login(supervisor, "supervisorb")
    confirm_url = verified_confirm_url(supervisor, code=person.code, identity=person.id_number)
    html = supervisor.get(confirm_url).get_data(as_text=True)
    assert 'data-testid="withdraw-form"' in html
    assert 'data-testid="override-at-provider-point"' in html
    assert 'name="channel" value="cash"' in html and 'name="provider_ref"' not in html
    action = re.search(r'action="([^"]+/pay)"', html).group(1)
    keys = re.findall(r'name="form_key"[^>]*value="([^"]+)"', html)
    paid = supervisor.post(
        action,
        data={
            "csrf_token": csrf_from(html),
            "form_key": keys[-1],
            "entitlements": re.findall(r'name="entitlements" value="(\d+)"', html)[:1],
            "channel": "cash",
            "override_reason": "Tài khoản không rút được (VT-417)",
        },
    )
    assert paid.status_code == 303, paid.get_data(as_text=True)[:800]
    session.rollback()
    payout = session.scalars(select(Payout)).one()
    assert payout.channel.value == "cash" and payout.beneficiary_id == person.id
