"""What the domain's codes are called on the pages, in the page's language."""

from __future__ import annotations

from typing import Any

from flask import Flask
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from terminal.models import (
    BeneficiaryStatus,
    Category,
    Channel,
    FailureReason,
    FailureStatus,
    PaymentMethod,
    Provider,
    VisitOutcome,
)

CATEGORY = {
    Category.ORPHAN: _l("Orphaned child"),
    Category.DISABLED_SEVERE: _l("Severe disability"),
    Category.DISABLED_EXTREME: _l("Especially severe disability"),
    Category.ELDERLY_80: _l("Aged 80 or over"),
    Category.OTHER: _l("Other"),
}
STATUS = {
    BeneficiaryStatus.ACTIVE: _l("receiving"),
    BeneficiaryStatus.SUSPENDED: _l("suspended"),
    BeneficiaryStatus.DECEASED: _l("deceased"),
    BeneficiaryStatus.MOVED: _l("moved away"),
}
METHOD = {PaymentMethod.CASH: _l("Cash"), PaymentMethod.ACCOUNT: _l("Account")}
PROVIDER = {
    Provider.POST: _l("Post office"),
    Provider.VIETTEL_PAY: "Viettel Pay",
    Provider.VIETINBANK: "VietinBank",
}
CHANNEL = {
    Channel.CASH: _l("Cash at the counter"),
    Channel.CASH_HOME: _l("Cash at home"),
    Channel.ACCOUNT: _l("Account withdrawal"),
}
REASON = {
    FailureReason.ID_MISMATCH: _l("ID does not match"),
    FailureReason.PROXY_NOT_AUTHORIZED: _l("Not authorised to collect"),
    FailureReason.PROXY_EXPIRED: _l("Authorisation expired"),
    FailureReason.BENEFICIARY_INACTIVE: _l("Beneficiary not receiving"),
    FailureReason.QR_INVALID: _l("Unreadable card QR code"),
    FailureReason.OTP_NOT_RECEIVED: _l("OTP code not received"),
    FailureReason.PROVIDER_REJECTED: _l("Rejected by the provider"),
    FailureReason.CREDITED_NOT_WITHDRAWABLE: _l("Credited but cannot be withdrawn"),
    FailureReason.PROVIDER_TIMEOUT: _l("Provider did not answer"),
    FailureReason.INSUFFICIENT_CASH: _l("Not enough cash"),
    FailureReason.RECIPIENT_ABSENT: _l("Recipient absent"),
    FailureReason.RECIPIENT_DECEASED: _l("Recipient deceased"),
    FailureReason.DATA_ERROR: _l("Data error"),
    FailureReason.SYSTEM_ERROR: _l("System error"),
    FailureReason.OTHER: _l("Other"),
    FailureReason.POSSIBLE_DOUBLE_PAYMENT: _l("Possible double payment"),
}
FAILURE_STATUS = {
    FailureStatus.OPEN: _l("open"),
    FailureStatus.IN_PROGRESS: _l("in progress"),
    FailureStatus.RESOLVED: _l("resolved"),
    FailureStatus.CANCELLED: _l("cancelled"),
}
VISIT_OUTCOME = {
    VisitOutcome.PAID: _l("paid"),
    VisitOutcome.ABSENT: _l("not at home"),
    VisitOutcome.REFUSED: _l("refused"),
    VisitOutcome.DECEASED: _l("reported deceased"),
}
# A tablet's state (services.delivery.device_state).
DEVICE_STATE = {
    "active": _l("active"),
    "revoked": _l("revoked"),
    "expired": _l("expired"),
}
PROXY_STATUS = {
    "active": _l("valid"),
    "expired": _l("expired"),
    "not_yet_valid": _l("not yet valid"),
    "revoked": _l("revoked"),
}


def _lookup(table: dict[Any, Any]) -> Any:
    """Return a function naming a code from a table (the code itself if unknown)."""
    return lambda code: str(table.get(code, code))


def status_badge(status: BeneficiaryStatus) -> Markup:
    """Return a coloured badge for a beneficiary's status."""
    kind = "ok" if status is BeneficiaryStatus.ACTIVE else "bad"
    label = escape(str(STATUS.get(status, status)))
    return Markup('<span class="badge {}">{}</span>').format(kind, label)


def failure_detail(failure: Any) -> str:
    """Return what went wrong in a failure: the system's words translated, or a person's."""
    from terminal.messages import detail_text
    from terminal.services.failures import params_of

    if failure.detail_code:
        return detail_text(failure.detail_code, params_of(failure)) or failure.detail
    return failure.detail


def init_app(app: Flask) -> None:
    """Make the label functions available in every template."""
    app.jinja_env.globals.update(
        category_label=_lookup(CATEGORY),
        status_label=_lookup(STATUS),
        method_label=_lookup(METHOD),
        provider_label=_lookup(PROVIDER),
        channel_label=_lookup(CHANNEL),
        reason_label=_lookup(REASON),
        failure_status_label=_lookup(FAILURE_STATUS),
        proxy_status_label=_lookup(PROXY_STATUS),
        visit_outcome_label=_lookup(VISIT_OUTCOME),
        device_state_label=_lookup(DEVICE_STATE),
        status_badge=status_badge,
        failure_detail=failure_detail,
    )
