"""``/api/v1/beneficiaries``, ``/verifications`` and ``POST /payouts`` (API.md).

The payout log (``GET /payouts``) is in ``terminal.api.payout_log``.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, g, jsonify, request

from terminal.api import endpoint, parse_body, parse_query, reply
from terminal.api.schemas import (
    AlreadyPaidBody,
    BeneficiaryDetail,
    BeneficiaryItem,
    BeneficiaryList,
    BeneficiaryQuery,
    Collector,
    EntitlementItem,
    ErrorBody,
    PayoutRequest,
    PayoutResponse,
    ProxyItem,
    VerificationFailure,
    VerificationRequest,
    VerificationResponse,
)
from terminal.clock import to_local
from terminal.db import get_session
from terminal.models import Beneficiary
from terminal.services import counter, payouts, verifications
from terminal.services.receipts import verify_url
from terminal.text import mask_id, mask_phone

log = logging.getLogger("terminal")


def beneficiary_item(person: Beneficiary, due_count: int = 0, due_vnd: int = 0) -> BeneficiaryItem:
    """Return the list view of a beneficiary, personal numbers masked."""
    return BeneficiaryItem(
        code=person.code,
        full_name=person.full_name,
        date_of_birth=person.date_of_birth,
        gender=person.gender.value,
        category=person.category.value,
        id_number_masked=mask_id(person.id_number),
        commune=person.commune.name,
        village=person.village,
        payment_method=person.payment_method.value,
        provider=person.provider.value,
        status=person.status.value,
        phone_masked=mask_phone(person.phone),
        due_count=due_count,
        due_amount=due_vnd,
    )


@endpoint(
    "/beneficiaries",
    "GET",
    summary="Search beneficiaries by code, ID number, phone or name (accents optional)",
    permission="lookup",
    query=BeneficiaryQuery,
    responses={200: BeneficiaryList, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody},
)
def search_beneficiaries() -> Any:
    """Search within the caller's communes."""
    query = parse_query(BeneficiaryQuery)
    hits, cursor = counter.search(
        get_session(), g.user, query.q, commune=query.commune, limit=query.limit, after=query.cursor
    )
    items = [beneficiary_item(h.beneficiary, h.due_count, h.due_vnd) for h in hits]
    return reply(BeneficiaryList(items=items, next_cursor=cursor))


@endpoint(
    "/beneficiaries/<code>",
    "GET",
    summary="One beneficiary with proxies and entitlements",
    permission="lookup",
    responses={200: BeneficiaryDetail, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody},
)
def show_beneficiary(code: str) -> Any:
    """Return a beneficiary of the caller's communes."""
    record = counter.beneficiary_file(get_session(), g.user, code)
    base = beneficiary_item(record.beneficiary, len(record.due), record.due_vnd)
    return reply(
        BeneficiaryDetail(
            **base.model_dump(),
            proxies=[
                ProxyItem(
                    id=view.proxy.id,
                    full_name=view.proxy.full_name,
                    id_number_masked=mask_id(view.proxy.id_number),
                    relationship=view.proxy.relationship_label,
                    valid_from=view.proxy.valid_from,
                    valid_until=view.proxy.valid_until,
                    status=view.status,
                    is_guardian=view.proxy.is_guardian,
                )
                for view in record.proxies
            ],
            entitlements=[
                EntitlementItem(
                    id=e.id,
                    period=e.period.code,
                    amount=e.amount_vnd,
                    status=e.status.value,
                    monthly_amount=e.monthly_vnd,
                    arrears=e.arrears_vnd,
                )
                for e in record.entitlements
            ],
        )
    )


@endpoint(
    "/verifications",
    "POST",
    summary="Verify who is collecting (typed ID number or scanned CCCD QR)",
    permission="counter",
    body=VerificationRequest,
    responses={
        201: VerificationResponse,
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        404: ErrorBody,
        422: VerificationFailure,
    },
)
def create_verification() -> Any:
    """Verify the collector; a refusal is recorded as a failure."""
    data = parse_body(VerificationRequest)
    result = verifications.verify_collector(
        get_session(),
        g.user,
        beneficiary_code=data.beneficiary_code,
        # Left out, the collector is recognised from the ID; a proxy_id names a proxy.
        collector=data.collector or ("proxy" if data.proxy_id is not None else None),
        proxy_id=data.proxy_id,
        id_number=data.id_number,
        id_qr=data.id_qr,
    )
    verification = result.verification
    return reply(
        VerificationResponse(
            verification_id=verification.id,
            verified=True,
            method=verification.method.value,
            collector=Collector(
                type=verification.collector_type.value, full_name=result.collector_name
            ),
            expires_at=to_local(verification.expires_at),
            warnings=list(result.warnings),
        ),
        201,
    )


@endpoint(
    "/payouts",
    "POST",
    summary="Pay due entitlements to a verified collector (Idempotency-Key required)",
    permission="counter",
    body=PayoutRequest,
    headers={"Idempotency-Key": "a client-made unique string, 1-255 visible ASCII characters"},
    responses={
        201: PayoutResponse,
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
        404: ErrorBody,
        409: AlreadyPaidBody,
        422: ErrorBody,
        503: ErrorBody,  # unavailable, or outcome_unknown: the COMMIT went unanswered
    },
)
def create_payout() -> Any:
    """Record a payout exactly once per Idempotency-Key and per entitlement."""
    data = parse_body(PayoutRequest)
    outcome = payouts.pay(
        get_session(),
        g.user,
        payouts.PayoutOrder(
            verification_id=data.verification_id,
            entitlement_ids=tuple(data.entitlement_ids),
            channel=data.channel,
            provider_ref=data.provider_ref,
            override_reason=data.override_reason,
        ),
        key=request.headers.get("Idempotency-Key"),
        verify_url=lambda payout: verify_url(current_app, payout),
    )
    response = reply_json(outcome.body, outcome.status)
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def reply_json(body: dict[str, Any], status: int) -> Any:
    """Return a JSON body with a status."""
    response = jsonify(body)
    response.status_code = status
    return response
