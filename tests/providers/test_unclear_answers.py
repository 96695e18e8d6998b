"""Only the provider's clear word ends a withdrawal: every unclear answer keeps the hold.

A scripted provider (no network) answers what a misbehaving gateway might; the
sandbox tests cover the honest provider.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from terminal.models import Entitlement, Payout, Withdrawal, WithdrawalStatus
from terminal.providers import ProviderAnswer, ProviderUnreachable
from terminal.services import withdrawals
from tests.providers.helpers import Agent, account_holder


class Scripted:
    """A provider whose answers a test sets per call; None means no answer in time."""

    def __init__(self) -> None:
        self.answers: dict[str, Any] = {
            "start": ProviderAnswer(201, {"status": "otp_sent", "otp_expires_at": None}),
        }
        self.calls: list[str] = []

    def _answer(self, name: str) -> ProviderAnswer:
        self.calls.append(name)
        answer = self.answers.get(name)
        if answer is None:
            raise ProviderUnreachable("scripted silence")
        return answer

    def start(self, client_ref, **_kw):
        return self._answer("start")

    def resend(self, client_ref):
        return self._answer("resend")

    def confirm(self, client_ref, otp):
        return self._answer("confirm")

    def status(self, client_ref):
        return self._answer("status")

    def cancel(self, client_ref):
        return self._answer("cancel")


PAID = ProviderAnswer(200, {"status": "paid", "amount": 540_000, "provider_ref": "GW-1"})


@pytest.fixture
def provider(monkeypatch, http_point):
    scripted = Scripted()
    monkeypatch.setattr(withdrawals.ProviderSettings, "adapter", lambda self, point: scripted)
    monkeypatch.setattr(withdrawals.ProviderSettings, "adapter_of", lambda self, w: scripted)
    return scripted


def _state(session, wid):
    session.rollback()
    withdrawal = session.get(Withdrawal, wid)
    held = session.scalar(
        select(func.count(Entitlement.id)).where(Entitlement.held_by_withdrawal_id == wid)
    )
    return withdrawal.status, held, session.scalar(select(func.count(Payout.id)))


def _started(client, session, http_point, n):
    agent = Agent(client)
    body = agent.start(account_holder(session, http_point, n)).get_json()
    return agent, body["withdrawal_id"]


@pytest.mark.parametrize(
    "answer",
    [
        ProviderAnswer(200, {"error": "malformed_answer"}),
        ProviderAnswer(200, {"status": "processing"}),
        ProviderAnswer(404, {"error": "not_found"}),
        ProviderAnswer(429, {"error": "slow_down"}),
        ProviderAnswer(409, {"error": "something"}),
        None,
    ],
    ids=["garbled", "processing", "404", "429", "409", "silence"],
)
def test_an_unclear_answer_to_the_code_is_pending(client, session, http_point, provider, answer):
    agent, wid = _started(client, session, http_point, 41)
    provider.answers["confirm"] = answer
    reply = agent.otp(wid, "123456")
    assert reply.status_code == 202, reply.get_json()
    assert _state(session, wid) == (WithdrawalStatus.PENDING, 1, 0)


def test_cancel_without_a_clear_answer_keeps_the_hold(client, session, http_point, provider):
    agent, wid = _started(client, session, http_point, 42)
    provider.answers["status"] = ProviderAnswer(200, {"status": "otp_sent"})
    provider.answers["cancel"] = None  # the cancel gets no answer
    reply = client.post(f"/api/v1/withdrawals/{wid}/cancel", headers=agent.headers)
    assert reply.status_code == 202 and reply.get_json()["status"] == "pending"
    assert _state(session, wid) == (WithdrawalStatus.PENDING, 1, 0)


def test_cancel_of_a_withdrawal_the_provider_paid_completes_it(
    client, session, http_point, provider
):
    agent, wid = _started(client, session, http_point, 43)
    provider.answers["status"] = PAID
    reply = client.post(f"/api/v1/withdrawals/{wid}/cancel", headers=agent.headers)
    assert reply.status_code == 201, reply.get_json()
    assert _state(session, wid) == (WithdrawalStatus.COMPLETED, 0, 1)


def test_resend_answered_already_paid_completes_it(client, session, http_point, provider):
    agent, wid = _started(client, session, http_point, 44)
    provider.answers["resend"] = ProviderAnswer(409, {"error": "paid"})
    provider.answers["status"] = PAID
    reply = agent.resend(wid)
    assert reply.status_code == 201, reply.get_json()
    assert _state(session, wid) == (WithdrawalStatus.COMPLETED, 0, 1)


def test_a_paid_answer_after_release_records_the_payout_once(
    app, client, session, http_point, provider
):
    agent, wid = _started(client, session, http_point, 45)
    provider.answers["status"] = ProviderAnswer(200, {"status": "otp_sent"})
    provider.answers["cancel"] = ProviderAnswer(200, {"status": "cancelled"})
    assert (
        client.post(f"/api/v1/withdrawals/{wid}/cancel", headers=agent.headers).status_code == 200
    )
    assert _state(session, wid) == (WithdrawalStatus.RELEASED, 0, 0)
    # A provider that paid after all (against its own cancel) is believed, once.
    session.rollback()
    withdrawal = session.get(Withdrawal, wid)
    with app.app_context():
        outcome = withdrawals._complete(session, withdrawal, PAID, actor="test")
        assert outcome.status == 201
        again = withdrawals._complete(session, withdrawal, PAID, actor="test")
    assert again.status == 201 and again.body["payout_id"] == outcome.body["payout_id"]
    assert _state(session, wid) == (WithdrawalStatus.COMPLETED, 0, 1)


def test_reconcile_releases_only_on_a_clear_cancel(app, client, session, http_point, provider):
    agent, wid = _started(client, session, http_point, 46)
    provider.answers["confirm"] = None
    assert agent.otp(wid, "123456").status_code == 202
    settings = withdrawals.ProviderSettings.from_config(app.config)
    for status, cancel in (
        (ProviderAnswer(404, {"error": "gateway page"}), None),  # a 404 that is not the provider's
        (ProviderAnswer(200, {"status": "otp_sent"}), ProviderAnswer(200, {"status": "odd"})),
        (None, None),
    ):
        provider.answers["status"], provider.answers["cancel"] = status, cancel
        with app.app_context():
            report = withdrawals.reconcile(session, actor="test", settings=settings)
        assert report.counts()["still_pending"] == 1, (report.items, provider.calls)
        assert _state(session, wid) == (WithdrawalStatus.PENDING, 1, 0)
    provider.answers["status"] = ProviderAnswer(200, {"status": "otp_sent"})
    provider.answers["cancel"] = ProviderAnswer(200, {"status": "cancelled"})
    with app.app_context():
        assert withdrawals.reconcile(session, actor="test", settings=settings).released == 1
    assert _state(session, wid) == (WithdrawalStatus.RELEASED, 0, 0)
