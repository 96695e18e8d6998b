"""Request and response models of the API; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from terminal.days import check_day

# A date in a request: refused (400) outside 2000-01-01..2100-12-31 (terminal/days.py).
Day = Annotated[date, AfterValidator(check_day)]


class Strict(BaseModel):
    """A request body: exact JSON types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", str_max_length=1000)


class ErrorBody(BaseModel):
    """Every error: a machine code and a sentence, plus fields named per endpoint."""

    error: str
    message: str


class TokenRequest(Strict):
    """Sign in for a bearer token."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class TokenUser(BaseModel):
    """Who the token belongs to."""

    username: str
    role: str
    payout_point: str | None


class TokenResponse(BaseModel):
    """A new bearer token, shown once."""

    token: str
    expires_at: datetime
    user: TokenUser


# ---- beneficiaries --------------------------------------------------------------


class BeneficiaryQuery(BaseModel):
    """Search parameters."""

    model_config = ConfigDict(extra="ignore")

    q: str = Field(default="", max_length=1000)
    commune: str | None = Field(default=None, max_length=120)
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=300)


class BeneficiaryItem(BaseModel):
    """A beneficiary in a list: ID masked."""

    code: str
    full_name: str
    date_of_birth: date | None
    gender: str
    category: str
    id_number_masked: str
    commune: str
    village: str
    payment_method: str
    provider: str
    status: str
    phone_masked: str = ""
    due_count: int = 0
    due_amount: int = 0


class BeneficiaryList(BaseModel):
    """A page of search results."""

    items: list[BeneficiaryItem]
    next_cursor: str | None


class ProxyItem(BaseModel):
    """A person authorised to collect."""

    id: int
    full_name: str
    id_number_masked: str
    relationship: str
    valid_from: date
    valid_until: date | None
    status: str
    is_guardian: bool = False


class EntitlementItem(BaseModel):
    """What is owed for one period."""

    id: int
    period: str
    amount: int
    status: str
    monthly_amount: int = 0
    arrears: int = 0


class BeneficiaryDetail(BeneficiaryItem):
    """A beneficiary with proxies and entitlements."""

    proxies: list[ProxyItem]
    entitlements: list[EntitlementItem]


# ---- verifications --------------------------------------------------------------


class VerificationRequest(Strict):
    """Prove who is collecting: the beneficiary or one of their proxies."""

    beneficiary_code: str = Field(min_length=1, max_length=32)
    collector: Literal["beneficiary", "proxy"]
    proxy_id: int | None = Field(default=None, ge=1, le=2**62)
    id_number: str | None = Field(default=None, max_length=40)
    id_qr: str | None = Field(default=None, max_length=1000)


class Collector(BaseModel):
    """Who took or takes the money."""

    type: str
    full_name: str


class VerificationResponse(BaseModel):
    """A successful verification, good for 10 minutes for the user who made it."""

    verification_id: int
    verified: bool
    method: str
    collector: Collector
    expires_at: datetime
    warnings: list[str] = []


class VerificationFailure(BaseModel):
    """A refused verification; the failure has been recorded."""

    error: str
    message: str
    reason: str
    failure_id: int


# ---- payouts --------------------------------------------------------------------


class PayoutRequest(Strict):
    """Pay due entitlements to a verified collector."""

    verification_id: int = Field(ge=1, le=2**62)
    entitlement_ids: list[int] = Field(min_length=1, max_length=60)
    channel: Literal["cash", "account"]
    provider_ref: str | None = Field(default=None, max_length=64)

    @field_validator("entitlement_ids")
    @classmethod
    def _ids_in_range(cls, value: list[int]) -> list[int]:
        if any(not 1 <= item <= 2**62 for item in value):
            raise ValueError("entitlement ids are positive integers")
        return value


class PayoutResponse(BaseModel):
    """A recorded payout."""

    payout_id: int
    receipt_no: str
    amount: int
    entitlement_ids: list[int]
    channel: str
    collector: Collector
    paid_at: datetime
    receipt_pdf: str
    receipt_verify_url: str
    status: str = "completed"


class AlreadyPaidBody(BaseModel):
    """An entitlement of the request was already paid."""

    error: str
    message: str
    entitlement_id: int
    receipt_no: str | None


class PayoutQuery(BaseModel):
    """Filters of the payout log."""

    model_config = ConfigDict(extra="ignore")

    from_: Day | None = Field(default=None, alias="from")
    to: Day | None = None
    payout_point: str | None = Field(default=None, max_length=12)
    commune: str | None = Field(default=None, max_length=120)
    status: Literal["completed", "reversed", "pending"] | None = None
    cursor: str | None = Field(default=None, max_length=40)
    limit: int = Field(default=50, ge=1, le=500)


class PayoutItem(BaseModel):
    """One payout in the log."""

    payout_id: int
    receipt_no: str | None
    paid_at: datetime
    payout_point: str
    beneficiary_code: str
    beneficiary_name: str
    commune: str
    amount: int
    channel: str
    collector: Collector
    provider_ref: str | None
    staff: str
    status: str
    entitlement_ids: list[int]


class PayoutList(BaseModel):
    """A page of the payout log."""

    items: list[PayoutItem]
    next_cursor: str | None
