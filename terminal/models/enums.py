"""The closed vocabularies of the domain; values are what the API and database carry."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CLERK = "clerk"
    AGENT = "agent"
    DELIVERY = "delivery"
    SUPERVISOR = "supervisor"
    AUDITOR = "auditor"
    ADMIN = "admin"


class AreaLevel(StrEnum):
    PROVINCE = "province"
    DISTRICT = "district"
    COMMUNE = "commune"


class PointKind(StrEnum):
    POST_OFFICE = "post_office"
    AGENT = "agent"
    DELIVERY = "delivery"


class ReceiptFormat(StrEnum):
    ROLL_80MM = "80mm"
    A5 = "a5"


class Gender(StrEnum):
    MALE = "male"
    FEMALE = "female"


class Category(StrEnum):
    ORPHAN = "orphan"
    DISABLED_SEVERE = "disabled_severe"
    DISABLED_EXTREME = "disabled_extreme"
    ELDERLY_80 = "elderly_80"
    OTHER = "other"


class PaymentMethod(StrEnum):
    CASH = "cash"
    ACCOUNT = "account"


class Provider(StrEnum):
    POST = "post"
    VIETTEL_PAY = "viettel_pay"
    VIETINBANK = "vietinbank"


class BeneficiaryStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    DECEASED = "deceased"
    MOVED = "moved"


class PeriodStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class EntitlementStatus(StrEnum):
    DUE = "due"
    PAID = "paid"
    CANCELLED = "cancelled"


class CollectorType(StrEnum):
    BENEFICIARY = "beneficiary"
    PROXY = "proxy"


class VerificationMethod(StrEnum):
    ID_NUMBER = "id_number"
    ID_QR = "id_qr"
    OTP = "otp"


class Channel(StrEnum):
    CASH = "cash"
    CASH_HOME = "cash_home"
    ACCOUNT = "account"


class PayoutStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    REVERSED = "reversed"


class FailureReason(StrEnum):
    ID_MISMATCH = "id_mismatch"
    PROXY_NOT_AUTHORIZED = "proxy_not_authorized"
    PROXY_EXPIRED = "proxy_expired"
    BENEFICIARY_INACTIVE = "beneficiary_inactive"
    QR_INVALID = "qr_invalid"
    OTP_NOT_RECEIVED = "otp_not_received"
    PROVIDER_REJECTED = "provider_rejected"
    CREDITED_NOT_WITHDRAWABLE = "credited_not_withdrawable"
    PROVIDER_TIMEOUT = "provider_timeout"
    INSUFFICIENT_CASH = "insufficient_cash"
    RECIPIENT_ABSENT = "recipient_absent"
    RECIPIENT_DECEASED = "recipient_deceased"
    DATA_ERROR = "data_error"
    SYSTEM_ERROR = "system_error"
    OTHER = "other"
    # A tablet paid offline what was paid elsewhere meanwhile: money to recover.
    POSSIBLE_DOUBLE_PAYMENT = "possible_double_payment"


class FailureStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class WithdrawalStatus(StrEnum):
    """A withdrawal through a provider: waiting for the OTP, unknown, or ended."""

    OTP_SENT = "otp_sent"
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    RELEASED = "released"


class SampleAnswer(StrEnum):
    """What a person sampled by an auditor says they received."""

    IN_FULL = "in_full"
    NOT_RECEIVED = "not_received"
    OTHER_AMOUNT = "other_amount"


class VisitOutcome(StrEnum):
    """What a home-delivery visit came to."""

    PAID = "paid"
    ABSENT = "absent"
    REFUSED = "refused"
    DECEASED = "deceased"


class SyncStatus(StrEnum):
    """A tablet's synced item, as the server answered it (API.md ``POST /sync``)."""

    APPLIED = "applied"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    REJECTED = "rejected"


class ProviderAdapterKind(StrEnum):
    MANUAL = "manual"
    HTTP = "http"


class IdempotencyState(StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"


class AuditAction(StrEnum):
    """What an audit event records; the value is the text stored and hashed in the chain."""

    AUTH_LOGIN = "auth.login"
    AUTH_LOGOUT = "auth.logout"
    AUTH_IDLE_TIMEOUT = "auth.idle_timeout"
    AUTH_SESSION_EXPIRED = "auth.session_expired"
    AUTH_ACCOUNT_DISABLED = "auth.account_disabled"
    AUTH_TOKEN_ISSUED = "auth.token_issued"  # noqa: S105 (an event name, not a secret)
    AUTH_TOKEN_REVOKED = "auth.token_revoked"  # noqa: S105
    USER_CREATED = "user.created"
    USER_UPDATED = "user.updated"
    POINT_CREATED = "point.created"
    POINT_UPDATED = "point.updated"
    ROSTER_IMPORTED = "roster.imported"
    BENEFICIARY_UPDATED = "beneficiary.updated"
    BENEFICIARY_STOPPED = "beneficiary.stopped"
    ENTITLEMENT_UPDATED = "entitlement.updated"
    PERIOD_CLOSED = "period.closed"
    VERIFICATION_SUCCEEDED = "verification.succeeded"
    FAILURE_RECORDED = "failure.recorded"
    FAILURE_UPDATED = "failure.updated"
    PAYOUT_RECORDED = "payout.recorded"
    WITHDRAWAL_STARTED = "withdrawal.started"
    WITHDRAWAL_PENDING = "withdrawal.pending"
    WITHDRAWAL_FAILED = "withdrawal.failed"
    WITHDRAWAL_RELEASED = "withdrawal.released"
    SETTLEMENT_IMPORTED = "settlement.imported"
    PAYOUT_REVERSED = "payout.reversed"
    CASH_FLOAT_SET = "cash_float.set"
    RECEIPT_REPRINTED = "receipt.reprinted"
    DATA_GENERATED = "data.generated"
    AUTH_LOGIN_FAILED = "auth.login_failed"
    AUTH_LOCKED_OUT = "auth.locked_out"
    EXPORT_WRITTEN = "export.written"
    DAY_CLOSED = "day.closed"
    SAMPLE_DRAWN = "sample.drawn"
    SAMPLE_ANSWERED = "sample.answered"
    DEVICE_REGISTERED = "device.registered"
    DEVICE_REVOKED = "device.revoked"
    ROUTE_ASSIGNED = "route.assigned"
    ROUTE_RELEASED = "route.released"
    VISIT_RECORDED = "visit.recorded"
    SYNC_CONFLICT = "sync.conflict"
    BACKUP_WRITTEN = "backup.written"
