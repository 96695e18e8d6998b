"""The counter: search, verify, confirm, pay, print; keyboard first, touch friendly.

The usual path is four screens: search (or scan the card) → the beneficiary, with
the collector's ID to verify → the confirmation with the total in digits and words
→ the result with the receipt. Enter moves forward on each; the main field or
button has focus on every page.
"""

from __future__ import annotations

import secrets
from dataclasses import replace
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from terminal.authz import allow, may
from terminal.clock import today_local
from terminal.db import get_session
from terminal.forms import (
    ActionForm,
    CashFloatForm,
    FailureForm,
    PayForm,
    ReverseForm,
    SearchForm,
    VerifyForm,
    WithdrawForm,
)
from terminal.messages import message_for, message_for_body
from terminal.models import (
    Beneficiary,
    Channel,
    CollectorType,
    FailureReason,
    PaymentMethod,
    ProviderAdapterKind,
    Verification,
)
from terminal.money import parse_vnd, vnd_in_words
from terminal.services import cash as floats
from terminal.services import (
    counter,
    delivery,
    failures,
    idempotency,
    payouts,
    receipts,
    verifications,
)
from terminal.services import withdrawals as withdrawal_service
from terminal.services.errors import NotFound, Refused, ServiceError
from terminal.services.verifications import VerificationFailed

bp = Blueprint("counter", __name__, url_prefix="/counter")

# The reasons staff may log by hand; verification refusals are logged by the system.
MANUAL_REASONS = (
    FailureReason.OTP_NOT_RECEIVED,
    FailureReason.PROVIDER_REJECTED,
    FailureReason.CREDITED_NOT_WITHDRAWABLE,
    FailureReason.PROVIDER_TIMEOUT,
    FailureReason.RECIPIENT_ABSENT,
    FailureReason.RECIPIENT_DECEASED,
    FailureReason.DATA_ERROR,
    FailureReason.SYSTEM_ERROR,
    FailureReason.OTHER,
)


# ---- search ---------------------------------------------------------------------


@bp.route("/", methods=["GET", "POST"])
@allow("counter")
def search() -> Any:
    """Search by code, ID, phone, name, or a scanned CCCD QR code.

    The form is POSTed so ID numbers and scanned cards stay out of URLs and the
    browser history; one match opens the beneficiary at once.
    """
    form = SearchForm()
    hits: list[Any] = []
    cursor = None
    searched = False
    q = ""
    if form.validate_on_submit():
        q = form.q.data or ""
        searched = True
    elif request.method == "GET" and request.args.get("q"):
        q = request.args.get("q", "")[:200]
        form.q.data = q
        searched = True
    if searched:
        hits, cursor = counter.search(
            get_session(), g.user, q, limit=20, after=request.form.get("after")
        )
        kind, value = counter.classify_query(q)
        if len(hits) == 1 and kind in ("id", "code", "phone"):
            return _beneficiary_page(
                hits[0].beneficiary.code, prefill=q if kind == "id" else None, id_value=value
            )
    return render_template(
        "counter/search.html", form=form, hits=hits, searched=searched, cursor=cursor, q=q
    )


# ---- the beneficiary, and verification -----------------------------------------


def _collector_choices(record: counter.BeneficiaryFile) -> list[dict[str, Any]]:
    """Return who may be chosen as the collector, with why some may not.

    The first choice, the default, lets the terminal recognise the collector from
    the ID shown; the others are the clerk's override.
    """
    choices = [
        {
            "value": "auto",
            "label": _("Recognise from the ID card"),
            "note": _("the beneficiary or any proxy valid today"),
            "usable": True,
        },
        {
            "value": "beneficiary",
            "label": record.beneficiary.full_name,
            "note": _("the beneficiary in person"),
            "usable": not record.is_child,
        },
    ]
    for view in record.proxies:
        if view.status == "revoked":
            continue
        choices.append(
            {
                "value": f"proxy:{view.proxy.id}",
                "label": view.proxy.full_name,
                "note": view.proxy.relationship_label,
                "usable": view.status == "active"
                and (view.proxy.is_guardian or not record.is_child),
                "status": view.status,
            }
        )
    return choices


def _home_delivery(record: counter.BeneficiaryFile) -> dict[str, Any]:
    """Return the person's home-delivery route that holds periods, and their latest visits.

    Reserved periods are the route's tablet's to pay: the counter shows them but
    does not offer them (the payment service refuses them anyway).
    """
    session = get_session()
    person_id = record.beneficiary.id
    held = delivery.held_for_delivery(session, person_id)
    return {
        "reservation": delivery.reservation_of(session, person_id),
        "visits": delivery.visits_of(session, person_id, limit=10),
        "payable": [e for e in record.due if e.id not in held],
    }


def _beneficiary_page(
    code: str,
    *,
    form: VerifyForm | None = None,
    prefill: str | None = None,
    id_value: str | None = None,
    error: str | None = None,
    error_code: str | None = None,
    status: int = 200,
) -> Any:
    """Render a beneficiary with the verification form."""
    record = counter.beneficiary_file(get_session(), g.user, code)
    if form is None:
        form = VerifyForm()
        form.collector.data = "auto"
        if prefill:
            form.identity.data = prefill
    return (
        render_template(
            "counter/beneficiary.html",
            record=record,
            form=form,
            choices=_collector_choices(record),
            failure_form=FailureForm(),
            reasons=MANUAL_REASONS,
            error=error,
            error_code=error_code,
            prefilled=bool(prefill),
            **_home_delivery(record),
        ),
        status,
    )


@bp.route("/b/<code>")
@allow("counter")
def beneficiary(code: str) -> Any:
    """Show a beneficiary: what is due, who may collect, history."""
    return _beneficiary_page(code)


@bp.route("/b/<code>/verify", methods=["POST"])
@allow("counter")
def verify(code: str) -> Any:
    """Verify the collector by typed ID number or scanned CCCD QR."""
    form = VerifyForm()
    if not form.validate_on_submit():
        return _beneficiary_page(code, form=form, status=400)
    choice = form.collector.data or ""
    proxy_id = None
    collector: str | None = None
    # isdecimal, not isdigit: int() refuses "²", which isdigit lets through (a 500).
    if choice.startswith("proxy:") and choice[6:].isdecimal():
        collector, proxy_id = "proxy", int(choice[6:])
    elif choice == "beneficiary":
        collector = "beneficiary"
    elif choice != "auto":
        return _beneficiary_page(code, form=form, error=_("Choose who is collecting."), status=400)
    identity = form.identity.data or ""
    is_qr = "|" in identity
    try:
        result = verifications.verify_collector(
            get_session(),
            g.user,
            beneficiary_code=code,
            collector=collector,
            proxy_id=proxy_id,
            id_number=None if is_qr else identity,
            id_qr=identity if is_qr else None,
        )
    except VerificationFailed as exc:
        form.identity.data = ""
        return _beneficiary_page(
            code, form=form, error=message_for(exc), error_code=exc.fields.get("reason"), status=422
        )
    return redirect(url_for("counter.confirm", verification_id=result.verification.id), code=303)


@bp.route("/b/<code>/failure", methods=["POST"])
@allow("counter")
def log_failure(code: str) -> Any:
    """Record a failed attempt that the system could not see (OTP never came...)."""
    form = FailureForm()
    person = counter.get_beneficiary(get_session(), g.user, code)
    if not form.validate_on_submit():
        flash(_("Choose a reason."), "error")
        return redirect(url_for("counter.beneficiary", code=person.code))
    try:
        reason = FailureReason(form.reason.data)
    except ValueError:
        abort(400)
    if reason not in MANUAL_REASONS:
        abort(400)
    failure = failures.log_failure(
        get_session(),
        user=g.user,
        reason=reason,
        detail=form.detail.data or "",
        beneficiary_id=person.id,
        escalated=True,  # logged by a person: work for the follow-up queue
    )
    flash(_("Failure recorded for follow-up (case %(id)s).", id=failure.id), "success")
    return redirect(url_for("counter.beneficiary", code=person.code), code=303)


# ---- confirm and pay ------------------------------------------------------------


def _confirm_page(
    verification_id: int,
    *,
    form: PayForm | None = None,
    error: str | None = None,
    error_code: str | None = None,
    status: int = 200,
) -> Any:
    """Render the confirmation of a live verification."""
    session = get_session()
    try:
        verification = verifications.get_verification(session, g.user, verification_id)
    except Refused:
        flash(_("The verification has expired (10 minutes). Verify the collector again."), "error")
        return redirect(url_for("counter.search"))
    record = counter.beneficiary_file(session, g.user, verification.beneficiary.code)
    home = _home_delivery(record)
    # Periods reserved for a home-delivery route are not offered here.
    record = replace(record, due=home["payable"])
    account_holder = record.beneficiary.payment_method is PaymentMethod.ACCOUNT
    if form is None:
        form = PayForm()
        form.entitlements.data = [e.id for e in record.due]
        form.channel.data = "account" if account_holder else "cash"
    # Every confirmation shown is a new one-time key: a resubmitted form replays
    # its first outcome, a new confirmation is a new request.
    form.form_key.data = secrets.token_urlsafe(18)
    chosen = {i for i in (form.entitlements.data or []) if isinstance(i, int)}
    total = sum(e.amount_vnd for e in record.due if e.id in chosen) or record.due_vnd
    point = g.user.payout_point
    # At a point connected to its provider, an account holder is paid by a withdrawal
    # with an OTP, not by a typed reference.
    via_provider = (
        account_holder
        and point is not None
        and point.adapter is ProviderAdapterKind.HTTP
        and bool(point.provider_url)
    )
    withdraw_form = WithdrawForm(formdata=None) if via_provider else None
    if withdraw_form is not None:
        withdraw_form.form_key.data = form.form_key.data
    return (
        render_template(
            "counter/confirm.html",
            verification=verification,
            record=record,
            form=form,
            chosen=chosen,
            total=total,
            total_words=vnd_in_words(total),
            collector_name=(
                verification.proxy.full_name
                if verification.collector_type is CollectorType.PROXY and verification.proxy
                else record.beneficiary.full_name
            ),
            expires_in=verifications.expires_in(verification),
            cash=floats.cash_position(session, g.user.payout_point_id, today_local())
            if g.user.payout_point_id
            else None,
            may_override=account_holder and may(g.user, "supervise"),
            via_provider=via_provider,
            withdraw_form=withdraw_form,
            error=error,
            error_code=error_code,
            reservation=home["reservation"],
        ),
        status,
    )


@bp.route("/v/<int:verification_id>")
@allow("counter")
def confirm(verification_id: int) -> Any:
    """Show what will be paid, to whom, in digits and words, before paying."""
    return _confirm_page(verification_id)


@bp.route("/v/<int:verification_id>/pay", methods=["POST"])
@allow("counter")
def pay(verification_id: int) -> Any:
    """Pay through the one payment path, then show the result (303).

    The form's one-time key is the Idempotency-Key: a double click, a resubmit or
    F5 gets the first outcome.
    """
    form = PayForm()
    if not form.validate_on_submit():
        return _confirm_page(
            verification_id,
            form=form,
            error=_("Check the form."),
            error_code="invalid_request",
            status=400,
        )
    key = f"page:{form.form_key.data}"
    session = get_session()
    try:
        outcome = payouts.pay(
            session,
            g.user,
            payouts.PayoutOrder(
                verification_id=verification_id,
                entitlement_ids=tuple(form.entitlements.data or ()),
                channel=form.channel.data or "",
                provider_ref=form.provider_ref.data or None,
                override_reason=form.override_reason.data or None,
            ),
            key=key,
            verify_url=lambda payout: receipts.verify_url(current_app, payout),
        )
    except idempotency.InProgress:
        return redirect(url_for("counter.confirmation", form_key=form.form_key.data), code=303)
    except idempotency.KeyReused:
        # This confirmation was sent before with other choices: show what it did.
        return _after_key(form.form_key.data or "", verification_id)
    except ServiceError as exc:
        return _refused(verification_id, form, exc.code, message_for(exc), exc.status)
    if outcome.payout_id:
        return redirect(url_for("counter.result", payout_id=outcome.payout_id), code=303)
    return _refused(
        verification_id,
        form,
        outcome.body.get("error", "refused"),
        message_for_body(outcome.body),
        outcome.status,
    )


@bp.route("/v/<int:verification_id>/withdraw", methods=["POST"])
@allow("counter")
def withdraw(verification_id: int) -> Any:
    """Ask the point's provider to send the account holder a code (an http point).

    The form's one-time key is the Idempotency-Key: a double click asks once.
    """
    form = WithdrawForm()
    if not form.validate_on_submit():
        return _confirm_page(
            verification_id, error=_("Check the form."), error_code="invalid_request", status=400
        )
    try:
        outcome = withdrawal_service.start(
            get_session(),
            g.user,
            withdrawal_service.WithdrawalOrder(
                verification_id, tuple(form.entitlements.data or ())
            ),
            key=f"page:{form.form_key.data}",
            settings=withdrawal_service.ProviderSettings.from_config(current_app.config),
        )
    except ServiceError as exc:
        return _refused(verification_id, PayForm(), exc.code, message_for(exc), exc.status)
    withdrawal_id = outcome.body.get("withdrawal_id")
    if outcome.status == 201 and "payout_id" in outcome.body:
        return redirect(url_for("counter.result", payout_id=outcome.body["payout_id"]), code=303)
    if outcome.status >= 400 or withdrawal_id is None:
        return _refused(
            verification_id,
            PayForm(),
            outcome.body.get("error", "refused"),
            message_for_body(outcome.body),
            outcome.status,
        )
    return redirect(url_for("withdrawals.show", withdrawal_id=withdrawal_id), code=303)


def _refused(verification_id: int, form: PayForm, code: str, message: str, status: int) -> Any:
    """Show a refused payment on its confirmation, or alone if the verification is gone."""
    session = get_session()
    try:
        verifications.get_verification(session, g.user, verification_id)
    except ServiceError:
        person = session.scalar(
            select(Beneficiary.code)
            .join(Verification, Verification.beneficiary_id == Beneficiary.id)
            .where(Verification.id == verification_id, Verification.user_id == g.user.id)
        )
        page = render_template("counter/refused.html", error=message, error_code=code, code=person)
        return page, status
    return _confirm_page(verification_id, form=form, error=message, error_code=code, status=status)


def _after_key(form_key: str, verification_id: int) -> Any:
    """Send a used confirmation to the payout it made, else back to a fresh one."""
    stored = idempotency.stored(get_session(), g.user, f"page:{form_key}")
    payout_id = stored.body.get("payout_id") if stored and stored.status == 201 else None
    if payout_id:
        return redirect(url_for("counter.result", payout_id=payout_id), code=303)
    flash(_("This confirmation was already used. Check and confirm again."), "error")
    return redirect(url_for("counter.confirm", verification_id=verification_id), code=303)


@bp.route("/confirmations/<form_key>")
@allow("counter")
def confirmation(form_key: str) -> Any:
    """Tell the clerk what became of a confirmation still being recorded.

    The page refreshes itself (no script, no waiting worker) until the payment is
    recorded, then shows the result.
    """
    stored = idempotency.stored(get_session(), g.user, f"page:{form_key[:240]}")
    if stored is not None:
        payout_id = stored.body.get("payout_id") if stored.status == 201 else None
        if payout_id:
            return redirect(url_for("counter.result", payout_id=payout_id), code=303)
        flash(message_for_body(stored.body), "error")
        return redirect(url_for("counter.search"), code=303)
    return render_template("counter/pending.html"), 202


# ---- result, receipt, reversal --------------------------------------------------


@bp.route("/payouts/<int:payout_id>")
@allow("counter")
def result(payout_id: int) -> Any:
    """Show a recorded payout with its receipt number and what to do next."""
    payout = payouts.get_payout(get_session(), g.user, payout_id)
    return render_template(
        "counter/result.html",
        payout=payout,
        collector=payouts.collector_name(payout),
        words=vnd_in_words(payout.amount_vnd),
        reverse_form=ReverseForm() if may(g.user, "supervise") else None,
        reprint_form=ActionForm(),
        is_cash=payout.channel in (Channel.CASH, Channel.CASH_HOME),
    )


@bp.route("/payouts/<int:payout_id>/receipt.pdf")
@allow("counter")
def receipt_pdf(payout_id: int) -> Any:
    """Open the receipt PDF ready to print."""
    session = get_session()
    payout = payouts.get_payout(session, g.user, payout_id)
    data = receipts.original_pdf(current_app, session, payout)
    return _pdf(data, payout.receipt.receipt_no)


@bp.route("/payouts/<int:payout_id>/reprint", methods=["POST"])
@allow("counter")
def reprint(payout_id: int) -> Any:
    """Print the receipt again, marked as a reprint (counted and audited)."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    session = get_session()
    payout = payouts.get_payout(session, g.user, payout_id)
    data = receipts.reprint_pdf(current_app, session, g.user, payout)
    return _pdf(data, f"{payout.receipt.receipt_no}-in-lai")


def _pdf(data: bytes, name: str) -> Response:
    """Return PDF bytes to open in the browser's viewer, ready to print."""
    response = Response(data, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}.pdf"'
    return response


@bp.route("/payouts/<int:payout_id>/reverse", methods=["POST"])
@allow("supervise")
def reverse(payout_id: int) -> Any:
    """Reverse a payout with a reason (supervisors)."""
    form = ReverseForm()
    if not form.validate_on_submit():
        flash(_("Give the reason for the reversal."), "error")
        return redirect(url_for("counter.result", payout_id=payout_id), code=303)
    try:
        payouts.reverse_payout(get_session(), g.user, payout_id, reason=form.reason.data or "")
    except ServiceError as exc:
        if isinstance(exc, NotFound):
            raise
        flash(message_for(exc), "error")
    else:
        flash(_("The payout was reversed; its entitlements are due again."), "success")
    return redirect(url_for("counter.result", payout_id=payout_id), code=303)


# ---- the day's cash and payouts ------------------------------------------------


@bp.route("/cash", methods=["GET", "POST"])
@allow("counter")
def cash() -> Any:
    """Show today's cash at the point; the supervisor records the advance."""
    session = get_session()
    form = CashFloatForm() if may(g.user, "supervise") else None
    if form is not None and form.validate_on_submit():
        try:
            amount = parse_vnd(form.advance.data or "", allow_zero=True)
            floats.set_cash_float(session, g.user, advance_vnd=amount)
        except ValueError:
            flash(_("Enter the amount in đồng, e.g. 50.000.000."), "error")
        except ServiceError as exc:
            flash(message_for(exc), "error")
        else:
            flash(_("Today's cash advance is recorded."), "success")
            return redirect(url_for("counter.cash"), code=303)
    position = floats.cash_position(session, g.user.payout_point_id, today_local())
    closing = floats.closing_of(session, g.user.payout_point_id, position.day)
    return render_template(
        "counter/cash.html", position=position, form=None if closing else form, closing=closing
    )


@bp.route("/today")
@allow("counter")
def today() -> Any:
    """List the point's payouts of today."""
    from terminal.services import payout_log

    day = today_local()
    rows, _cursor = payout_log.page(
        get_session(),
        g.user,
        payout_log.PayoutFilter(date_from=day, date_to=day),
        after=None,
        limit=500,
    )
    return render_template("counter/today.html", rows=rows, day=day)
