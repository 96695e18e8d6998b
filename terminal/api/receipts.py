"""``/api/v1/receipts``: the PDF, the public check and the public key."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g
from pydantic import BaseModel, ConfigDict, Field

from terminal.api import endpoint, parse_query, reply
from terminal.api.schemas import ErrorBody
from terminal.authz import PUBLIC
from terminal.clock import to_local
from terminal.db import get_session
from terminal.extensions import limiter
from terminal.services import receipts


class VerifyQuery(BaseModel):
    """The token a receipt's QR code carries after /r/."""

    model_config = ConfigDict(extra="ignore")

    token: str = Field(min_length=1, max_length=400)


class VerifyResponse(BaseModel):
    """Whether a receipt is genuine; the facts only when it is."""

    valid: bool
    receipt_no: str | None = None
    amount: int | None = None
    paid_at: Any = None
    status: str | None = None


@endpoint(
    "/receipts/<receipt_no>.pdf",
    "GET",
    summary="The receipt as application/pdf",
    permission="payout_log",
    responses={200: "application/pdf", 401: ErrorBody, 403: ErrorBody, 404: ErrorBody},
)
def receipt_pdf(receipt_no: str) -> Any:
    """Return the original receipt PDF (drawn again if its file is missing)."""
    session = get_session()
    payout = receipts.find_receipt(session, g.user, receipt_no)
    data = receipts.original_pdf(current_app, session, payout)
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{payout.receipt.receipt_no}.pdf"'
    return response


@endpoint(
    "/receipts/verify",
    "GET",
    summary="Check a receipt token: genuine, reversed or not valid",
    permission=PUBLIC,
    query=VerifyQuery,
    responses={200: VerifyResponse, 400: ErrorBody, 429: ErrorBody},
)
@limiter.limit("30 per minute")
def verify_receipt() -> Any:
    """Check a token from a receipt's QR code."""
    query = parse_query(VerifyQuery)
    check = receipts.check_token(get_session(), current_app, query.token)
    if not check.valid:
        return reply(VerifyResponse(valid=False))
    return reply(
        VerifyResponse(
            valid=True,
            receipt_no=check.receipt_no,
            amount=check.amount_vnd,
            paid_at=to_local(check.paid_at).isoformat() if check.paid_at else None,
            status=check.status,
        )
    )


@endpoint(
    "/receipts/public-key",
    "GET",
    summary="The Ed25519 public key that checks receipt tokens offline (PEM)",
    permission=PUBLIC,
    responses={200: "application/x-pem-file"},
)
def receipt_public_key() -> Any:
    """Serve the public key for offline receipt checks."""
    return Response(receipts.public_key(current_app), mimetype="application/x-pem-file")
