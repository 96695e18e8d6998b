"""Request and response models of the API; the OpenAPI document is generated from them."""

from __future__ import annotations

import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from terminal.clock import check_day, parse_iso_date
from terminal.money import MAX_AMOUNT

# A date in a request: refused (400) outside 2000-01-01..2100-12-31 (terminal/clock.py).
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
    # Left out: the terminal recognises the collector from the ID shown.
    collector: Literal["beneficiary", "proxy"] | None = None
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
    # The point supervisor's reason to pay an account holder in cash (their account
    # cannot pay out); audited.
    override_reason: str | None = Field(default=None, max_length=500)

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


# ---- running a day: cash float and reversals ------------------------------------


def _iso_date(value: object) -> object:
    """Accept a date only as YYYY-MM-DD text (not a timestamp, not 20211001)."""
    if isinstance(value, str):
        return parse_iso_date(value)
    return value


def _iso_date_or_empty(value: object) -> object:
    """Read an empty query value (``?date=``) as no date."""
    return None if value == "" else value


# A field named "date" would shadow the type inside the class body.
# The cash float's days are bounded by services.cash.check_cash_day (400
# date_out_of_range naming both bounds), narrower than the accepted days.
IsoDate = Annotated[date, BeforeValidator(_iso_date)]


# What the spec says of a query's day: a date, or empty (``?date=``) for today.
DAY_OR_EMPTY = WithJsonSchema(
    {
        "anyOf": [{"type": "string", "format": "date"}, {"type": "string", "maxLength": 0}],
        "description": "YYYY-MM-DD; empty or left out: today in Vietnam",
    }
)


class CashFloatQuery(BaseModel):
    """Which day's cash to show; today in Vietnam by default."""

    model_config = ConfigDict(extra="ignore")

    date: Annotated[IsoDate | None, BeforeValidator(_iso_date_or_empty), DAY_OR_EMPTY] = None


class CashFloatRequest(Strict):
    """Record a day's cash advance of the supervisor's point (replaces the figure)."""

    advance: int = Field(ge=0, le=MAX_AMOUNT, description="whole đồng")
    date: IsoDate | None = Field(default=None, description="YYYY-MM-DD; today in Vietnam if none")


class CashFloatBody(BaseModel):
    """A point's cash for one day: the advance, the cash paid out and what is left."""

    point: str
    date: IsoDate
    advance: int | None = Field(description="null when no advance is recorded for the day")
    paid_cash: int
    remaining: int
    payouts: int = Field(description="cash payouts of the day that were not reversed")


class AdvanceBelowPaidBody(BaseModel):
    """The advance is less than the cash already paid that day."""

    error: str
    message: str
    paid: int


class ReversalRequest(Strict):
    """Reverse a payout of the supervisor's point."""

    reason: str = Field(description="why the payout is reversed, 5-500 characters")

    @field_validator("reason")
    @classmethod
    def _no_controls(cls, value: str) -> str:
        # Tabs and new lines become spaces in the service; NUL and other controls have
        # no place in a reason (and PostgreSQL refuses NUL in text).
        if any(unicodedata.category(c) == "Cc" and not c.isspace() for c in value):
            raise ValueError("the reason contains control characters")
        return value


class ReversalResponse(BaseModel):
    """A reversed payout: its entitlements are due again, its cash back in the float."""

    payout_id: int
    status: Literal["reversed"]
    entitlement_ids: list[int]
    receipt_no: str | None
    amount: int
    reversed_at: datetime


# ---- failures and the follow-up queue ---------------------------------------------

FailureReasonCode = Literal[
    "id_mismatch",
    "proxy_not_authorized",
    "proxy_expired",
    "otp_not_received",
    "provider_rejected",
    "credited_not_withdrawable",
    "provider_timeout",
    "insufficient_cash",
    "recipient_absent",
    "recipient_deceased",
    "data_error",
    "system_error",
    "other",
]
FailureStatusCode = Literal["open", "in_progress", "resolved", "cancelled"]
# What the list filters on: the reasons people report, and those the terminal opens itself.
FailureReasonFilter = (
    FailureReasonCode | Literal["possible_double_payment", "qr_invalid", "beneficiary_inactive"]
)


class FailureCreate(Strict):
    """A failed attempt a person reports: it opens a follow-up case."""

    beneficiary_code: str = Field(min_length=1, max_length=32)
    entitlement_id: int | None = Field(default=None, ge=1, le=2**62)
    reason: FailureReasonCode
    detail: str | None = Field(default=None, max_length=1000)
    channel: Literal["cash", "account"] | None = None
    provider_ref: str | None = Field(default=None, min_length=1, max_length=64)


class FailureCreated(BaseModel):
    """The failure recorded."""

    id: int
    status: str
    case: bool
    due_by: date


class FailureQuery(BaseModel):
    """Filters of the failure list."""

    model_config = ConfigDict(extra="ignore")

    status: FailureStatusCode | None = None
    reason: FailureReasonFilter | None = None
    point: str | None = Field(default=None, max_length=12)
    commune: str | None = Field(default=None, max_length=120)
    overdue: bool = False
    case: bool | None = None
    cursor: str | None = Field(default=None, max_length=40)
    limit: int = Field(default=50, ge=1, le=500)


class FailureItem(BaseModel):
    """One failure of the list (the beneficiary's name masked)."""

    id: int
    case: bool
    reason: str
    status: str
    beneficiary_code: str | None
    beneficiary_name: str | None
    entitlement_id: int | None
    detail: str
    detail_code: str | None
    channel: str | None
    provider_ref: str | None
    point: str | None
    commune: str | None
    created_at: datetime
    updated_at: datetime | None
    due_by: date
    age_days: int
    overdue: bool
    owner: str | None
    note: str
    notes: int
    resolved_payout_id: int | None


class FailureList(BaseModel):
    """A page of failures."""

    items: list[FailureItem]
    next_cursor: str | None


class FailureUpdate(Strict):
    """A supervisor's work on a case: status, a note for its thread, its owner."""

    status: FailureStatusCode | None = None
    note: str | None = Field(default=None, max_length=2000)
    assignee: str | None = Field(default=None, max_length=64)


class FailureNoteItem(BaseModel):
    """One note of a case's thread."""

    at: datetime
    author: str | None
    text: str


class FailureDetail(FailureItem):
    """A failure with its thread of notes."""

    thread: list[FailureNoteItem]


class WithdrawalRequest(Strict):
    """Withdraw due entitlements from the verified beneficiary's account (an http point)."""

    verification_id: int = Field(ge=1, le=2**62)
    entitlement_ids: list[int] = Field(min_length=1, max_length=60)

    @field_validator("entitlement_ids")
    @classmethod
    def _ids_in_range(cls, value: list[int]) -> list[int]:
        if any(not 1 <= item <= 2**62 for item in value):
            raise ValueError("entitlement ids are positive integers")
        return value


class OtpRequest(Strict):
    """The code the account holder received."""

    otp: str = Field(min_length=1, max_length=16)


class WithdrawalBody(BaseModel):
    """A withdrawal through the provider and where it stands."""

    withdrawal_id: int
    client_ref: str
    status: str
    amount: int | None = None
    otp_expires_at: datetime | None = None
    payout_id: int | None = None
    failure_id: int | None = None


class ProviderRefusedBody(BaseModel):
    """The provider refused: its reason, and the follow-up case logged.

    Refusals before the provider is asked (``provider_not_connected``, a rule of the
    terminal) have no ``reason``.
    """

    error: str
    message: str
    reason: str | None = None
    failure_id: int | None = None


class ReconciledItem(BaseModel):
    """What reconciliation did to one withdrawal."""

    withdrawal_id: int
    client_ref: str
    outcome: str = Field(description="completed, released or still_pending")


class ReconcileReport(BaseModel):
    """How many withdrawals reconciliation completed, released or left pending."""

    completed: int
    released: int
    still_pending: int
    double_payment_cases: int
    items: list[ReconciledItem]


class PendingBody(BaseModel):
    """No answer in time: no money is handed over; the withdrawal waits for reconciliation."""

    status: str
    withdrawal_id: int
    client_ref: str
    failure_id: int | None = None
    message: str


class AuditQuery(BaseModel):
    """A page of the audit trail: the events after a sequence number."""

    model_config = ConfigDict(extra="ignore")

    after: int = Field(default=0, ge=0, le=2**62)
    limit: int = Field(default=100, ge=1, le=1000)


class AuditEventItem(BaseModel):
    """One event of the hash chain, as stored and hashed."""

    seq: int
    at: datetime
    actor: str
    action: str
    object_type: str
    object_id: str
    data: Any
    prev_hash: str
    hash: str


class AuditEventList(BaseModel):
    """Events in sequence order; ``next_after`` continues the walk (null at the end)."""

    items: list[AuditEventItem]
    next_after: int | None = None


class AuditVerifyBody(BaseModel):
    """The chain recomputed from the first event."""

    ok: bool
    events: int
    first_bad_seq: int | None


# ---- home delivery: devices, routes and offline sync ------------------------------


class DeviceRequest(Strict):
    """A tablet to register for a delivery user of the supervisor's point."""

    name: str = Field(min_length=1, max_length=80, description="what the tablet is called")
    username: str = Field(min_length=1, max_length=64, description="the delivery user")


class DeviceIssued(BaseModel):
    """The tablet's token: shown once, used as ``Authorization: Bearer``."""

    device_id: int
    token: str
    expires_at: datetime


class DeviceUser(BaseModel):
    """Who a tablet belongs to."""

    username: str
    full_name: str


class DevicePoint(BaseModel):
    """The point a tablet pays for."""

    code: str
    name: str


class DeviceBody(BaseModel):
    """A registered tablet."""

    device_id: int
    name: str
    state: Literal["active", "revoked", "expired"]
    expires_at: datetime
    last_seen_at: datetime | None = None
    user: DeviceUser
    point: DevicePoint


class DeviceList(BaseModel):
    """The point's tablets, newest first."""

    items: list[DeviceBody]


class RouteRequest(Strict):
    """People of a period to give a delivery user; their due entitlements are reserved."""

    username: str = Field(min_length=1, max_length=64)
    period: str = Field(pattern=r"^\d{4}-\d{2}$")
    beneficiary_codes: list[str] = Field(min_length=1, max_length=500)


class RouteAssignedBody(BaseModel):
    """The route: ``reserved`` entitlements newly reserved by this request."""

    route_id: int
    reserved: int
    people: int
    expires_at: datetime


class RouteEntitlement(BaseModel):
    """An entitlement the tablet may pay."""

    id: int
    period: str
    amount: int


class RouteProxy(BaseModel):
    """A proxy who may collect, with the salted hash of their ID number."""

    id: int
    full_name: str
    relationship: str
    id_hash: str | None
    valid_from: date
    valid_until: date | None


class RoutePerson(BaseModel):
    """A person on the route; ``id_hash`` is hex SHA-256 of salt + ID number."""

    code: str
    full_name: str
    village: str
    commune: str
    address: str
    year_of_birth: int
    entitlements: list[RouteEntitlement]
    id_hash: str | None
    proxies: list[RouteProxy]


class RouteBody(BaseModel):
    """The device user's current route, as the tablet stores it offline."""

    route_id: int
    period: str
    salt: str
    expires_at: datetime
    user: DeviceUser
    point: DevicePoint
    people: list[RoutePerson]


class SyncPayoutItem(BaseModel):
    """A payout the tablet made (documentation of an item of ``payouts``)."""

    client_ref: str = Field(pattern=r"^[A-Za-z0-9._:-]{16,64}$")
    beneficiary_code: str
    entitlement_ids: list[int]
    collector: Literal["beneficiary", "proxy"]
    proxy_id: int | None = None
    verified_by: Literal["id_number", "id_qr"]
    paid_at: datetime
    signature_png: str | None = Field(default=None, description="base64 PNG, up to 256 KB")
    lat: float | None = None
    lon: float | None = None


class SyncVisitItem(BaseModel):
    """A visit that paid nothing (documentation of an item of ``visits``)."""

    client_ref: str = Field(pattern=r"^[A-Za-z0-9._:-]{16,64}$")
    beneficiary_code: str
    outcome: Literal["absent", "refused", "deceased"]
    at: datetime
    note: str | None = Field(default=None, max_length=500)
    lat: float | None = None
    lon: float | None = None


class SyncRequest(Strict):
    """A tablet's queue: each item is checked and answered on its own.

    Items are read loosely here so that one malformed item is answered
    ``rejected`` instead of refusing the whole batch (and blocking the queue).
    """

    model_config = ConfigDict(strict=True, extra="ignore", str_max_length=400_000)

    payouts: list[Any] = Field(
        default_factory=list,
        max_length=50,
        description="payouts made on the tablet (client_ref, beneficiary_code, "
        "entitlement_ids, collector, proxy_id?, verified_by, paid_at, signature_png?, lat?, lon?)",
    )
    visits: list[Any] = Field(
        default_factory=list,
        max_length=50,
        description="visits that paid nothing (client_ref, beneficiary_code, "
        "outcome: absent|refused|deceased, at, note?, lat?, lon?)",
    )


class SyncResult(BaseModel):
    """One item's answer; ``duplicate`` repeats the first answer's fields."""

    model_config = ConfigDict(extra="allow")

    client_ref: str | None
    status: Literal["applied", "duplicate", "conflict", "rejected"]
    payout_id: int | None = None
    receipt_no: str | None = None
    failure_id: int | None = None
    error: str | None = None


class SyncResponse(BaseModel):
    """Answers in the order sent."""

    results: list[SyncResult]
    visits: list[SyncResult]
