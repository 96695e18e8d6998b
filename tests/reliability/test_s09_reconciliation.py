"""RELIABILITY S09: reconciliation against the provider's statement, discrepancies planted.

Withdrawals go through a real ``payout-terminal provider-sandbox``; the statement is
the sandbox's own ledger with the five kinds of discrepancy planted in it: debited
but not paid (the answer to the code was lost, so the terminal waits), paid but not
debited, amounts differ, a double debit; and a drawer short at a cash counter's
closing. Pass criterion: each becomes a follow-up case (open, due within T+5), and
Σ due = Σ paid + Σ unpaid + Σ pending holds at every step, counted from three
tables: the entitlements, the payout lines and the open withdrawals.
"""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select

from terminal.clock import today_local
from terminal.models import (
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureStatus,
    Payout,
    PayoutLine,
    PayoutStatus,
    Withdrawal,
    WithdrawalStatus,
)
from terminal.services import counter, daybook, followup, payouts, verifications
from terminal.services.audit import verify_chain
from terminal.services.failures import FOLLOW_UP_DAYS
from tests import test_cli
from tests.conftest import login
from tests.factories import make_beneficiary, set_float
from tests.providers.helpers import Agent, account_holder
from tests.services.test_receipts import pay_now

run = test_cli.run  # a command line run as the console script does

KINDS = {
    "settlement.missing_at_terminal",  # debited, not paid at the terminal
    "settlement.missing_at_provider",  # paid at the terminal, not debited
    "settlement.amount_difference",
    "settlement.double_debit",
    "daybook.drawer_difference",  # the drawer short at the closing
}


def _sums(session) -> dict[str, int]:
    """Return Σ due, and Σ paid, Σ unpaid, Σ pending each from its own table."""
    session.rollback()

    def total(query) -> int:
        return int(session.scalar(query) or 0)

    due = total(
        select(func.sum(Entitlement.amount_vnd)).where(
            Entitlement.status != EntitlementStatus.CANCELLED
        )
    )
    paid = total(
        select(func.sum(PayoutLine.amount_vnd))
        .join(Payout, Payout.id == PayoutLine.payout_id)
        .where(Payout.status == PayoutStatus.COMPLETED, PayoutLine.reversed_at.is_(None))
    )
    pending = total(
        select(func.sum(Withdrawal.amount_vnd)).where(
            Withdrawal.status.in_((WithdrawalStatus.PENDING, WithdrawalStatus.OTP_SENT))
        )
    )
    unpaid = total(
        select(func.sum(Entitlement.amount_vnd)).where(
            Entitlement.status == EntitlementStatus.DUE,
            Entitlement.held_by_withdrawal_id.is_(None),
        )
    )
    return {"due": due, "paid": paid, "unpaid": unpaid, "pending": pending}


def _balanced(session) -> dict[str, int]:
    sums = _sums(session)
    assert sums["due"] == sums["paid"] + sums["unpaid"] + sums["pending"], sums
    return sums


def test_every_planted_discrepancy_becomes_a_case_and_the_sums_hold(
    app, client, session, world, sandbox, http_point, run, tmp_path
):
    people = [
        account_holder(session, http_point, 900 + n, amount=600_000 + n * 10_000) for n in range(7)
    ]
    _balanced(session)
    agent = Agent(client)
    refs = []
    for n, person in enumerate(people):
        body = agent.start(person).get_json()
        if n == 5:
            # Debited but not paid: the provider pays, its answer is lost with the line.
            sandbox._call("POST", "/sandbox/faults", {"drop_rate": 1})
        answer = agent.otp(body["withdrawal_id"], sandbox.otp(body["client_ref"]))
        sandbox._call("POST", "/sandbox/faults", {"drop_rate": 0})
        assert answer.status_code == (202 if n == 5 else 201), answer.get_json()
        refs.append(body["client_ref"])
        _balanced(session)
    # The last one waits for its code: open, neither paid nor unpaid.
    waiting = account_holder(session, http_point, 990, amount=777_000)
    assert agent.start(waiting).status_code == 201
    sums = _balanced(session)
    assert sums["pending"] == 650_000 + 777_000 and sums["paid"] > 0

    # A cash day at point A closed with the drawer 50.000 đ short.
    set_float(session, "HTBD", 10_000_000)
    clerk, supervisor = world.users["clerk"], world.users["supervisor"]
    cash = make_beneficiary(session, "TTH0000901", commune=world.point_a.communes[0])
    verification = verifications.verify_collector(
        session,
        clerk,
        beneficiary_code=cash.code,
        collector="beneficiary",
        id_number=cash.id_number,
    )
    due = counter.beneficiary_file(session, clerk, cash.code).due
    pay_now(
        app,
        session,
        clerk,
        payouts.PayoutOrder(verification.verification.id, tuple(e.id for e in due), "cash", None),
    )
    _balanced(session)
    daybook.close_day(session, supervisor, returned_vnd=10_000_000 - 540_000 - 50_000)

    # The statement: the sandbox's ledger, with the discrepancies planted.
    ledger = {e["client_ref"]: e for e in sandbox.ledger()["entries"]}
    assert refs[5] in ledger  # the provider did pay the one the terminal waits for
    rows = []
    for n, ref in enumerate(refs):
        entry = ledger[ref]
        if n == 1:
            continue  # paid at the terminal, not debited
        amount = entry["amount"] + (1_000 if n == 2 else 0)  # amounts differ
        rows.append(f"{ref};{amount};paid;{entry['paid_at']}")
        if n == 3:
            rows.append(f"{ref};{amount};paid;{entry['paid_at']}")  # debited twice
    statement = tmp_path / "statement.csv"
    statement.write_text("client_ref;amount;status;time\n" + "\n".join(rows) + "\n")
    result = run("import-settlement", str(statement), "--point", http_point.code)
    assert result.returncode == 0, result.stderr
    assert "1 missing at the terminal, 1 missing at the provider" in result.stdout
    assert "1 amount differences; 4 follow-up cases" in result.stdout
    _balanced(session)

    cases = session.scalars(
        select(Failure).where(Failure.detail_code.in_(KINDS), Failure.is_case.is_(True))
    ).all()
    assert sorted(c.detail_code for c in cases) == sorted(KINDS)
    today = today_local()
    for case in cases:
        assert case.status is FailureStatus.OPEN
        assert case.due_by <= today + timedelta(days=FOLLOW_UP_DAYS)
    by_kind = {c.detail_code: c for c in cases}
    assert json.loads(by_kind["daybook.drawer_difference"].detail_params)["difference_vnd"] == (
        50_000
    )
    assert by_kind["settlement.double_debit"].provider_ref == refs[3]
    assert by_kind["settlement.missing_at_terminal"].provider_ref == refs[5]
    # Every case is on the follow-up queue, in the reader's words (no raw code shown).
    auditor = world.users["auditor"]
    listed = {f.id for f in followup.queue(session, auditor, followup.FailureFilter(case=True))}
    assert {c.id for c in cases} <= listed
    browser = app.test_client()
    assert login(browser, auditor.username).status_code == 302
    page = browser.get("/followup/")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for code in KINDS:
        assert code not in html, code

    # The reconciliation completes the one that was debited; the sums still hold.
    supervisor_b = Agent(client, "supervisorb")
    done = client.post("/api/v1/withdrawals/reconcile", headers=supervisor_b.headers).get_json()
    assert done["completed"] == 1, done
    final = _balanced(session)
    assert final["pending"] == 777_000
    assert verify_chain(session).ok
