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


class FailureStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    RESOLVED = "resolved"
    CANCELLED = "cancelled"


class IdempotencyState(StrEnum):
    IN_PROGRESS = "in_progress"
    DONE = "done"
