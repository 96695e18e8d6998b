"""Withdrawals through a provider over the API (API.md), against the sandbox process."""

from __future__ import annotations

from sqlalchemy import func, select

from terminal.models import (
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    Payout,
    Withdrawal,
    WithdrawalStatus,
)
from terminal.services.audit import verify_chain
from tests.providers.helpers import Agent, account_holder


def test_request_otp_confirm_pays_once(client, http_point, session, sandbox):
    person = account_holder(session, http_point, 1)
    agent = Agent(client)
    started = agent.start(person)
    assert started.status_code == 201, started.get_json()
    body = started.get_json()
    assert body["status"] == "otp_sent" and body["amount"] == 540_000
    assert set(body) >= {"withdrawal_id", "client_ref", "status", "amount", "otp_expires_at"}
    code = sandbox.otp(body["client_ref"])
    paid = agent.otp(body["withdrawal_id"], code)
    assert paid.status_code == 201, paid.get_json()
    payout = paid.get_json()
    assert payout["channel"] == "account" and payout["amount"] == 540_000
    assert payout["receipt_no"].startswith("PLVT-")
    # The same code again answers with the same payout, and nothing new is written.
    again = agent.otp(body["withdrawal_id"], code)
    assert again.status_code == 201 and again.get_json()["payout_id"] == payout["payout_id"]
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 1
    got = agent.get(body["withdrawal_id"]).get_json()
    assert got["status"] == "completed" and got["payout_id"] == payout["payout_id"]
    assert sandbox.ledger()["paid"][-1] == {"client_ref": body["client_ref"], "amount": 540_000}
    assert verify_chain(session).ok


def test_a_wrong_code_says_how_many_tries_are_left(client, http_point, session, sandbox):
    person = account_holder(session, http_point, 2)
    agent = Agent(client)
    body = agent.start(person).get_json()
    wrong = agent.otp(
        body["withdrawal_id"], "000000" if sandbox.otp(body["client_ref"]) != "000000" else "111111"
    )
    assert wrong.status_code == 422
    assert wrong.get_json()["error"] == "otp_invalid" and wrong.get_json()["attempts_left"] == 2
    malformed = agent.otp(body["withdrawal_id"], "12ab")
    assert malformed.status_code == 400


def test_the_held_entitlement_cannot_be_paid_or_withdrawn_again(
    client, http_point, session, sandbox
):
    person = account_holder(session, http_point, 3)
    agent = Agent(client)
    first = agent.start(person).get_json()
    second = agent.start(person)
    assert second.status_code == 409
    assert second.get_json()["error"] == "withdrawal_open"
    # A typed reference is refused at a point connected to its provider...
    manual = client.post(
        "/api/v1/payouts",
        json={
            "verification_id": agent.verify(person),
            "entitlement_ids": first["entitlement_ids"],
            "channel": "account",
            "provider_ref": "VTP-typed-1",
        },
        headers={**agent.headers, "Idempotency-Key": "manual-1"},
    )
    assert manual.status_code == 422 and manual.get_json()["error"] == "provider_connected"
    # ...and the supervisor's cash override cannot take a held period either.
    supervisor = Agent(client, "supervisorb")
    cash = client.post(
        "/api/v1/payouts",
        json={
            "verification_id": supervisor.verify(person),
            "entitlement_ids": first["entitlement_ids"],
            "channel": "cash",
            "override_reason": "Tài khoản bị khóa, trả tiền mặt",
        },
        headers={**supervisor.headers, "Idempotency-Key": "override-1"},
    )
    assert cash.status_code == 409 and cash.get_json()["error"] == "withdrawal_open"
    assert cash.get_json()["withdrawal_id"] == first["withdrawal_id"]


def test_a_refusal_is_a_case_with_the_providers_code(client, http_point, session, sandbox):
    sandbox.faults(not_withdrawable=1.0)
    person = account_holder(session, http_point, 4)
    agent = Agent(client)
    refused = agent.start(person)
    assert refused.status_code == 422, refused.get_json()
    body = refused.get_json()
    assert body["error"] == "provider_refused"
    assert body["reason"] == "credited_not_withdrawable"
    assert (
        body["provider_code"] == "credited_not_withdrawable"
        and "VT-417" in body["provider_message"]
    )
    session.rollback()
    case = session.get(Failure, body["failure_id"])
    assert case.reason is FailureReason.CREDITED_NOT_WITHDRAWABLE and case.is_case
    # The entitlement is free again: it can be paid another way.
    entitlement = session.scalars(
        select(Entitlement).where(Entitlement.beneficiary_id == person.id)
    ).one()
    assert entitlement.held_by_withdrawal_id is None and entitlement.status is EntitlementStatus.DUE


def test_three_sends_without_a_code_log_otp_not_received(client, http_point, session, sandbox):
    sandbox.faults(otp_loss=1.0)
    person = account_holder(session, http_point, 5)
    agent = Agent(client)
    body = agent.start(person).get_json()
    wid = body["withdrawal_id"]
    assert sandbox.otp(body["client_ref"]) is None
    assert agent.resend(wid).status_code == 202
    third = agent.resend(wid)
    assert third.status_code == 202 and third.get_json()["otp_sends"] == 3
    session.rollback()
    cases = session.scalars(
        select(Failure).where(Failure.reason == FailureReason.OTP_NOT_RECEIVED)
    ).all()
    assert len(cases) == 1 and cases[0].beneficiary_id == person.id
    # A fourth send is refused: the withdrawal ends and lets go of the entitlement.
    fourth = agent.resend(wid)
    assert fourth.status_code == 422 and fourth.get_json()["error"] == "otp_not_received"
    assert fourth.get_json()["failure_id"] == cases[0].id
    assert agent.get(wid).get_json()["status"] == "failed"


def test_resend_waits_for_the_cooldown(app, client, http_point, session, sandbox):
    app.config["OTP_RESEND_SECONDS"] = 60
    person = account_holder(session, http_point, 6)
    agent = Agent(client)
    body = agent.start(person).get_json()
    early = agent.resend(body["withdrawal_id"])
    assert early.status_code == 429
    assert early.get_json()["error"] == "otp_cooldown"
    assert 55 <= int(early.headers["Retry-After"]) <= 60


def test_no_answer_to_the_code_is_pending_then_reconciled_as_paid(
    app, client, http_point, session, sandbox
):
    person = account_holder(session, http_point, 7)
    agent = Agent(client)
    body = agent.start(person).get_json()
    code = sandbox.otp(body["client_ref"])
    sandbox.faults(timeout_rate=1.0)  # the provider pays, but answers too late
    pending = agent.otp(body["withdrawal_id"], code)
    assert pending.status_code == 202, pending.get_json()
    assert pending.get_json()["status"] == "pending"
    # Nothing else may start on it meanwhile.
    assert agent.start(person).status_code == 409
    assert agent.otp(body["withdrawal_id"], code).status_code == 202
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 0
    sandbox.faults()
    result = app.test_cli_runner().invoke(args=["reconcile", "--point", "PLVT"])
    assert result.exit_code == 0, result.output
    assert "1 completed, 0 released, 0 still pending" in result.output
    session.rollback()
    withdrawal = session.get(Withdrawal, body["withdrawal_id"])
    assert withdrawal.status is WithdrawalStatus.COMPLETED
    payout = session.get(Payout, withdrawal.payout_id)
    assert payout.amount_vnd == 540_000 and payout.provider_ref.startswith("VTP")
    # The pending's case is settled by the payout.
    case = session.get(Failure, withdrawal.failure_id)
    assert case.reason is FailureReason.PROVIDER_TIMEOUT and case.resolved_payout_id == payout.id
    assert (
        sum(e["amount"] for e in sandbox.ledger()["paid"] if e["client_ref"] == body["client_ref"])
        == 540_000
    )


def test_a_pending_the_provider_did_not_pay_is_released(app, client, http_point, session, sandbox):
    person = account_holder(session, http_point, 8)
    agent = Agent(client)
    body = agent.start(person).get_json()
    real = sandbox.otp(body["client_ref"])
    sandbox.faults(timeout_rate=1.0)
    # A wrong code whose answer came too late: the terminal cannot know it was wrong.
    pending = agent.otp(body["withdrawal_id"], "999999" if real != "999999" else "888888")
    assert pending.status_code == 202
    sandbox.faults()
    supervisor = Agent(client, "supervisorb")
    done = client.post("/api/v1/withdrawals/reconcile", headers=supervisor.headers)
    assert done.status_code == 200, done.get_json()
    assert done.get_json()["released"] == 1
    assert agent.get(body["withdrawal_id"]).get_json()["status"] == "released"
    assert sandbox.status(body["client_ref"])["status"] == "cancelled"
    # The person is still unpaid: the case stays open, the entitlement is free.
    session.rollback()
    withdrawal = session.get(Withdrawal, body["withdrawal_id"])
    assert session.get(Failure, withdrawal.failure_id).status.value == "open"
    again = agent.start(person)
    assert again.status_code == 201, again.get_json()


def test_a_manual_point_refuses_withdrawals(client, world, session):
    person = account_holder(session, world.point_b, 9)
    agent = Agent(client)
    refused = agent.start(person)
    assert refused.status_code == 422
    assert refused.get_json()["error"] == "provider_not_connected"


def test_an_idempotency_key_replays_the_first_answer(client, http_point, session, sandbox):
    person = account_holder(session, http_point, 10)
    agent = Agent(client)
    verification = agent.verify(person)
    ids = agent.entitlements(person)
    first = client.post(
        "/api/v1/withdrawals",
        json={"verification_id": verification, "entitlement_ids": ids},
        headers={**agent.headers, "Idempotency-Key": "same-key"},
    )
    again = client.post(
        "/api/v1/withdrawals",
        json={"verification_id": verification, "entitlement_ids": ids},
        headers={**agent.headers, "Idempotency-Key": "same-key"},
    )
    assert first.status_code == again.status_code == 201
    assert first.get_json()["withdrawal_id"] == again.get_json()["withdrawal_id"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    session.rollback()
    assert session.scalar(select(func.count(Withdrawal.id))) == 1


def test_the_sandbox_pages_refuse_bad_fault_rates(sandbox):
    import json
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        sandbox.base + "/sandbox/faults",
        data=json.dumps({"otp_loss": 2}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        urllib.request.urlopen(request, timeout=5)
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
    else:  # pragma: no cover
        raise AssertionError("a rate above 1 was accepted")
    assert sandbox.otp("PLVT-unknown") is None
    assert sandbox.status("PLVT-unknown") is None


def test_an_unknown_or_foreign_withdrawal_is_404(client, http_point, session, sandbox, world):
    person = account_holder(session, http_point, 11)
    body = Agent(client).start(person).get_json()
    other_point_clerk = Agent(client, "clerk1")  # HTBD's clerk: not their point
    assert other_point_clerk.get(body["withdrawal_id"]).status_code == 404
    assert other_point_clerk.otp(body["withdrawal_id"], "123456").status_code == 404
    agent = Agent(client)
    assert agent.get(2**63 + 5).status_code == 404
    assert agent.otp(999_999, "123456").status_code == 404
    bad = client.post(
        f"/api/v1/withdrawals/{body['withdrawal_id']}/otp",
        data="not json",
        headers={**agent.headers, "Content-Type": "application/json"},
    )
    assert bad.status_code == 400
    auditor = Agent(client, "auditor1")
    assert auditor.get(body["withdrawal_id"]).status_code == 200
    assert auditor.otp(body["withdrawal_id"], "123456").status_code == 403


def test_each_step_of_a_withdrawal_is_an_audit_event(app, client, http_point, session, sandbox):
    from terminal.models import AuditEvent

    agent = Agent(client)
    paid = agent.start(account_holder(session, http_point, 12)).get_json()
    assert agent.otp(paid["withdrawal_id"], sandbox.otp(paid["client_ref"])).status_code == 201
    sandbox.faults(not_withdrawable=1.0)
    assert agent.start(account_holder(session, http_point, 13)).status_code == 422
    sandbox.faults()
    pending = agent.start(account_holder(session, http_point, 14)).get_json()
    sandbox.faults(timeout_rate=1.0)
    assert agent.otp(pending["withdrawal_id"], "000000").status_code == 202
    sandbox.faults()
    client.post("/api/v1/withdrawals/reconcile", headers=Agent(client, "supervisorb").headers)
    session.rollback()
    actions = set(session.scalars(select(AuditEvent.action)))
    assert actions >= {
        "withdrawal.started",
        "withdrawal.failed",
        "withdrawal.pending",
        "withdrawal.released",
        "payout.recorded",
        "failure.recorded",
    }
    assert verify_chain(session).ok
