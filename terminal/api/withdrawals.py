"""``/api/v1/withdrawals``: account withdrawals through the point's provider, with an OTP.

API.md, "Account withdrawals through a provider". The service owns the protocol
(terminal/services/withdrawals.py); these handlers parse, call and answer.
"""

from __future__ import annotations

from typing import Any

from flask import current_app, g, jsonify, request

from terminal.api import endpoint, parse_body, reply
from terminal.api.schemas import (
    ErrorBody,
    OtpRequest,
    PayoutResponse,
    PendingBody,
    ProviderRefusedBody,
    ReconcileReport,
    WithdrawalBody,
    WithdrawalRequest,
)
from terminal.db import get_session
from terminal.services import withdrawals

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


def _settings() -> withdrawals.ProviderSettings:
    return withdrawals.ProviderSettings.from_config(current_app.config)


def _answer(outcome: withdrawals.Outcome) -> Any:
    response = jsonify(outcome.body)
    response.status_code = outcome.status
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@endpoint(
    "/withdrawals",
    "POST",
    summary="Start a withdrawal at an http point: the provider sends the holder an OTP",
    permission="counter",
    body=WithdrawalRequest,
    headers={"Idempotency-Key": "a client-made unique string, 1-255 visible ASCII characters"},
    responses={201: WithdrawalBody, **ERRORS, 409: ErrorBody, 422: ProviderRefusedBody},
)
def create_withdrawal() -> Any:
    """Hold the entitlements and ask the provider for an OTP, once per Idempotency-Key."""
    data = parse_body(WithdrawalRequest)
    outcome = withdrawals.start(
        get_session(),
        g.user,
        withdrawals.WithdrawalOrder(data.verification_id, tuple(data.entitlement_ids)),
        key=request.headers.get("Idempotency-Key"),
        settings=_settings(),
    )
    return _answer(outcome)


@endpoint(
    "/withdrawals/<int:withdrawal_id>/otp",
    "POST",
    summary="Confirm with the OTP: 201 the payout, 202 pending (hand over nothing)",
    permission="counter",
    body=OtpRequest,
    responses={201: PayoutResponse, 202: PendingBody, **ERRORS, 409: ErrorBody, 422: ErrorBody},
)
def confirm_withdrawal(withdrawal_id: int) -> Any:
    """Send the code to the provider; a late answer leaves the withdrawal pending."""
    data = parse_body(OtpRequest)
    outcome = withdrawals.confirm(
        get_session(), g.user, withdrawal_id, data.otp, settings=_settings()
    )
    return _answer(outcome)


@endpoint(
    "/withdrawals/<int:withdrawal_id>/resend",
    "POST",
    summary="Send a new OTP after the cooldown; after the third, otp_not_received is logged",
    permission="counter",
    responses={202: WithdrawalBody, **ERRORS, 409: ErrorBody, 422: ErrorBody, 429: ErrorBody},
)
def resend_otp(withdrawal_id: int) -> Any:
    """Ask the provider to send the code again."""
    outcome = withdrawals.resend(get_session(), g.user, withdrawal_id, settings=_settings())
    return _answer(outcome)


@endpoint(
    "/withdrawals/<int:withdrawal_id>/cancel",
    "POST",
    summary="Give up a withdrawal still waiting for its OTP (the person left)",
    permission="counter",
    responses={200: WithdrawalBody, **ERRORS, 409: ErrorBody},
)
def cancel_withdrawal(withdrawal_id: int) -> Any:
    """Cancel at the provider and let go of the entitlements."""
    outcome = withdrawals.cancel(get_session(), g.user, withdrawal_id, settings=_settings())
    return _answer(outcome)


@endpoint(
    "/withdrawals/<int:withdrawal_id>",
    "GET",
    summary="A withdrawal and where it stands",
    permission="lookup",
    responses={200: WithdrawalBody, **ERRORS},
)
def get_withdrawal(withdrawal_id: int) -> Any:
    """Show a withdrawal of the caller's point (auditors: any)."""
    withdrawal = withdrawals.get_withdrawal(get_session(), g.user, withdrawal_id)
    return jsonify(withdrawals.withdrawal_body(withdrawal))


@endpoint(
    "/withdrawals/reconcile",
    "POST",
    summary="Ask the provider about each pending withdrawal of the point; complete or release",
    permission="supervise",
    responses={200: ReconcileReport, 401: ErrorBody, 403: ErrorBody},
)
def reconcile_withdrawals() -> Any:
    """The supervisor's reconciliation of their point."""
    user = g.user
    points = [user.payout_point_id] if user.payout_point_id is not None else None
    report = withdrawals.reconcile(
        get_session(), actor=user.username, settings=_settings(), point_ids=points
    )
    return reply(ReconcileReport(**report.counts(), items=report.items))
