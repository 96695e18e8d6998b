"""RELIABILITY S08: the provider slow, hanging or dropping its answers.

A real ``payout-terminal provider-sandbox`` process does the work and then answers
late (slow: after the terminal stopped waiting; hanging: half a minute), or closes
the connection without an answer (dropping). Pass criterion: every unknown outcome
is ``pending``, never failed or paid; no payout (no cash) while pending; every call
about a withdrawal, status queries included, carries its one client reference; 0
double debits; and no pending older than T+5: each pending withdrawal has an open
case due within five days, listed overdue once it is late, and the scheduled
``payout-terminal reconcile`` (a real process) ends every one once the provider
answers again.
"""

from __future__ import annotations

import collections
import os
import subprocess
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from terminal.clock import local_date, today_local
from terminal.models import (
    Channel,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureStatus,
    Payout,
    PayoutLine,
    PayoutStatus,
    User,
    Withdrawal,
    WithdrawalStatus,
)
from terminal.services import followup
from terminal.services.audit import verify_chain
from terminal.services.failures import FOLLOW_UP_DAYS
from tests.providers.helpers import Agent, account_holder
from tests.reliability.conftest import SOAK
from tests.servers import SCRIPT
from tests.test_cli import _clean_env

# The terminal waits 0.3 s; a "slow" answer comes after 0.8 s.
SANDBOX_SLOW_SECONDS = 0.8
PROVIDER_TIMEOUT_MS = 300
PEOPLE = 40 if SOAK else 4  # per mode
MODES = {
    "slow": {"timeout_rate": 0.5, "slow_seconds": 0.8},
    "hanging": {"timeout_rate": 0.5, "slow_seconds": 30},
    "dropping": {"drop_rate": 0.5},
}


def _calls(sandbox) -> list[dict[str, str]]:
    return sandbox._call("GET", "/sandbox/calls")["calls"]


def _held(session, withdrawal_id: int) -> int:
    return session.scalar(
        select(func.count(Entitlement.id)).where(Entitlement.held_by_withdrawal_id == withdrawal_id)
    )


def _payouts_of(session, person) -> int:
    return session.scalar(
        select(func.count(Payout.id)).where(
            Payout.beneficiary_id == person.id, Payout.status == PayoutStatus.COMPLETED
        )
    )


CALM = {"otp_loss": 0, "timeout_rate": 0, "not_withdrawable": 0, "drop_rate": 0}


@pytest.mark.slow
def test_unknown_outcomes_stay_pending_and_end_once(
    app, client, session, sandbox, http_point, db_url, tmp_path, monkeypatch
):
    people = [
        account_holder(session, http_point, 10_000 + n, amount=500_000 + n * 1_000)
        for n in range(PEOPLE * len(MODES))
    ]
    # No retry: every late or lost answer is an unknown outcome (a retry with the same
    # reference is proven by tests/providers/test_withdrawal_soak.py).
    app.config["PROVIDER_RETRIES"] = 0
    calls_before = len(_calls(sandbox))
    ledger_before = len(sandbox.ledger()["paid"])
    agent = Agent(client)
    tally: collections.Counter = collections.Counter()
    pending: dict[int, object] = {}
    failed_starts: set[str] = set()
    for index, person in enumerate(people):
        mode = list(MODES)[index // PEOPLE]
        faulty = {**CALM, **MODES[mode]}
        # The faults hit every third start, and every confirm.
        sandbox._call("POST", "/sandbox/faults", faulty if index % 3 == 0 else CALM)
        started = agent.start(person)
        sandbox._call("POST", "/sandbox/faults", faulty)
        if started.status_code != 201:
            # No answer to the start: nothing can move without the code, so the
            # withdrawal ends with a case and the hold goes (checked below).
            body = started.get_json()
            assert started.status_code in (422, 502, 503, 504), body
            tally[f"{mode}: start {started.status_code} {body.get('reason') or body['error']}"] += 1
            session.rollback()
            ended = session.scalars(
                select(Withdrawal).where(Withdrawal.beneficiary_id == person.id)
            ).one()
            assert ended.status in (WithdrawalStatus.FAILED, WithdrawalStatus.RELEASED)
            assert _held(session, ended.id) == 0 and _payouts_of(session, person) == 0
            failed_starts.add(ended.client_ref)
            continue
        body = started.get_json()
        wid, ref = body["withdrawal_id"], body["client_ref"]
        code = sandbox.otp(ref)
        assert code is not None
        answer = agent.otp(wid, code)
        session.rollback()
        if answer.status_code == 201:
            tally[f"{mode}: paid"] += 1
            assert _payouts_of(session, person) == 1
            continue
        reply = answer.get_json()
        assert answer.status_code == 202, reply
        # Unknown: pending, the entitlement held, no payout, and the counter is told so.
        assert reply["status"] == "pending" and "hand over no money" in reply["message"]
        withdrawal = session.get(Withdrawal, wid)
        assert withdrawal.status is WithdrawalStatus.PENDING
        assert _held(session, wid) == 1 and _payouts_of(session, person) == 0
        # Asking again answers pending at once: no second confirm reaches the provider.
        confirms = sum(1 for c in _calls(sandbox) if c["endpoint"] == "confirm")
        assert agent.otp(wid, code).status_code == 202
        assert sum(1 for c in _calls(sandbox) if c["endpoint"] == "confirm") == confirms
        assert agent.get(wid).get_json()["status"] == "pending"
        pending[wid] = person
        tally[f"{mode}: pending"] += 1
    print(f"\n[S08] {len(people)} people: {dict(sorted(tally.items()))}")
    assert pending, tally  # the faults made unknown outcomes to prove the rules on

    # No pending older than T+5: each has an open case due within five days, which
    # the follow-up queue lists as overdue once its day has passed.
    session.rollback()
    supervisor = session.scalars(select(User).where(User.username == "supervisorb")).one()
    for wid in pending:
        withdrawal = session.get(Withdrawal, wid)
        case = session.get(Failure, withdrawal.failure_id)
        assert case is not None and case.is_case and case.status is FailureStatus.OPEN
        opened = local_date(withdrawal.created_at)
        assert case.due_by <= opened + timedelta(days=FOLLOW_UP_DAYS)
    if pending:
        late = today_local() + timedelta(days=FOLLOW_UP_DAYS + 1)
        monkeypatch.setattr(followup, "today_local", lambda: late)
        overdue = followup.queue(
            session, supervisor, followup.FailureFilter(overdue=True, case=True)
        )
        overdue_ids = {f.id for f in overdue}
        assert all(session.get(Withdrawal, w).failure_id in overdue_ids for w in pending)
        monkeypatch.undo()

    # The provider answers again; the scheduled reconciliation (a real process) ends all.
    sandbox._call("POST", "/sandbox/faults", CALM)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        _clean_env(db_url, tmp_path),
        TERMINAL_PROVIDER_TIMEOUT_MS="3000",
        TERMINAL_PROVIDER_RETRIES="1",
    )
    done = subprocess.run(
        [str(SCRIPT), "reconcile"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("0 still pending"), done.stdout
    session.rollback()
    statuses = collections.Counter(
        session.scalars(
            select(Withdrawal.status).where(Withdrawal.beneficiary_id.in_([p.id for p in people]))
        )
    )
    assert not statuses.get(WithdrawalStatus.PENDING) and not statuses.get(
        WithdrawalStatus.OTP_SENT
    ), statuses
    for wid in pending:
        # An unknown outcome ends on the provider's word only: never "failed".
        assert session.get(Withdrawal, wid).status in (
            WithdrawalStatus.COMPLETED,
            WithdrawalStatus.RELEASED,
        )

    # Every call about a withdrawal carries the one reference it was started with.
    calls = _calls(sandbox)[calls_before:]
    refs = {
        w.client_ref: w
        for w in session.scalars(
            select(Withdrawal).where(Withdrawal.beneficiary_id.in_([p.id for p in people]))
        )
    }
    assert len(refs) == len(people)  # one withdrawal, one reference, per person
    assert {c["client_ref"] for c in calls} == set(refs)
    by_ref = collections.defaultdict(collections.Counter)
    for c in calls:
        by_ref[c["client_ref"]][c["endpoint"]] += 1
    for wid in pending:
        ref = session.get(Withdrawal, wid).client_ref
        assert by_ref[ref]["status"] >= 1, (ref, by_ref[ref])
    for ref in failed_starts:
        assert by_ref[ref]["confirm"] == 0  # no code is ever sent for an ended start

    # 0 double debits: each reference and each account debited at most once, and the
    # money the sandbox paid is the terminal's completed account payouts, to the đồng.
    paid = sandbox.ledger()["paid"][ledger_before:]
    assert len({e["client_ref"] for e in paid}) == len(paid)
    accounts = collections.Counter(refs[e["client_ref"]].beneficiary_id for e in paid)
    assert all(n == 1 for n in accounts.values()), accounts
    completed = {ref: w for ref, w in refs.items() if w.status is WithdrawalStatus.COMPLETED}
    assert {e["client_ref"] for e in paid} == set(completed)
    for entry in paid:
        payout = session.get(Payout, completed[entry["client_ref"]].payout_id)
        assert payout.amount_vnd == entry["amount"] and payout.channel is Channel.ACCOUNT
    for person in people:
        entitlement = session.scalars(
            select(Entitlement).where(Entitlement.beneficiary_id == person.id)
        ).one()
        lines = session.scalar(
            select(func.count(PayoutLine.id)).where(
                PayoutLine.entitlement_id == entitlement.id, PayoutLine.reversed_at.is_(None)
            )
        )
        assert lines == (1 if entitlement.status is EntitlementStatus.PAID else 0)
        assert entitlement.held_by_withdrawal_id is None
    assert verify_chain(session).ok
