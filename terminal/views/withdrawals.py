"""Withdrawals through the provider, for people: the OTP page, pending ones, settlement.

At an ``http`` point the confirmation page asks the provider for a code
(``counter.withdraw``); the agent types the code the person reads out on the
withdrawal's page. Thin views over ``services.withdrawals`` and
``services.settlement``.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from flask import Blueprint, current_app, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _

from terminal.authz import allow
from terminal.db import get_session
from terminal.forms import ActionForm, OtpForm, SettlementUploadForm
from terminal.messages import detail_text, message_for
from terminal.models import Failure, WithdrawalStatus, utcnow
from terminal.policy import may
from terminal.services import settlement, withdrawals
from terminal.services.errors import ServiceError, Throttled
from terminal.services.failures import params_of

bp = Blueprint("withdrawals", __name__, url_prefix="/withdrawals")


def _settings() -> withdrawals.ProviderSettings:
    return withdrawals.ProviderSettings.from_config(current_app.config)


@bp.route("/<int:withdrawal_id>")
@allow("counter")
def show(withdrawal_id: int) -> Any:
    """The withdrawal's page: enter the code, resend it, or (pending) hand over nothing."""
    return _page(withdrawal_id)


def _page(
    withdrawal_id: int, *, form: OtpForm | None = None, error: str | None = None, status: int = 200
) -> Any:
    session = get_session()
    withdrawal = withdrawals.get_withdrawal(session, g.user, withdrawal_id)
    if withdrawal.status is WithdrawalStatus.COMPLETED and withdrawal.payout_id:
        return redirect(url_for("counter.result", payout_id=withdrawal.payout_id), code=303)
    failure = session.get(Failure, withdrawal.failure_id) if withdrawal.failure_id else None
    wait = 0
    if withdrawal.last_sent_at is not None:
        elapsed = (utcnow() - withdrawal.last_sent_at).total_seconds()
        wait = max(int(_settings().resend_seconds - elapsed + 0.999), 0)
    from terminal.models import Beneficiary

    person = session.get(Beneficiary, withdrawal.beneficiary_id)
    return (
        render_template(
            "withdrawals/show.html",
            w=withdrawal,
            person=person,
            form=form or OtpForm(),
            action=ActionForm(),
            error=error,
            failure=failure,
            failure_text=detail_text(failure.detail_code, params_of(failure)) if failure else "",
            wait=wait,
            sends_left=max(withdrawals.MAX_SENDS - withdrawal.otp_sends, 0),
            supervises=may(g.user, "supervise"),
        ),
        status,
    )


@bp.route("/<int:withdrawal_id>/otp", methods=["POST"])
@allow("counter")
def otp(withdrawal_id: int) -> Any:
    """Send the code to the provider: the payout (303 to its result) or pending."""
    form = OtpForm()
    if not form.validate_on_submit():
        return _page(withdrawal_id, form=form, error=_("Type the code."), status=400)
    try:
        outcome = withdrawals.confirm(
            get_session(), g.user, withdrawal_id, form.otp.data or "", settings=_settings()
        )
    except ServiceError as exc:
        form.otp.data = ""
        return _page(withdrawal_id, form=form, error=message_for(exc), status=exc.status)
    if outcome.status == 201:
        return redirect(url_for("counter.result", payout_id=outcome.body["payout_id"]), code=303)
    return redirect(url_for("withdrawals.show", withdrawal_id=withdrawal_id), code=303)


@bp.route("/<int:withdrawal_id>/resend", methods=["POST"])
@allow("counter")
def resend(withdrawal_id: int) -> Any:
    """Ask the provider to send the code again."""
    ActionForm().validate_on_submit()
    try:
        outcome = withdrawals.resend(get_session(), g.user, withdrawal_id, settings=_settings())
    except Throttled as exc:
        flash(_("Wait %(n)s seconds before sending a new code.", n=exc.retry_after), "error")
    except ServiceError as exc:
        flash(message_for(exc), "error")
    else:
        if outcome.body.get("status") == "otp_sent":
            flash(_("A new code was sent."), "success")
    return redirect(url_for("withdrawals.show", withdrawal_id=withdrawal_id), code=303)


@bp.route("/<int:withdrawal_id>/cancel", methods=["POST"])
@allow("counter")
def cancel(withdrawal_id: int) -> Any:
    """Give up a withdrawal still waiting for its code."""
    ActionForm().validate_on_submit()
    try:
        outcome = withdrawals.cancel(get_session(), g.user, withdrawal_id, settings=_settings())
    except ServiceError as exc:
        flash(message_for(exc), "error")
    else:
        if outcome.status == 200:
            flash(_("The withdrawal was cancelled. Nothing was paid."), "success")
    return redirect(url_for("withdrawals.show", withdrawal_id=withdrawal_id), code=303)


@bp.route("/")
@allow("counter")
def index() -> Any:
    """The point's open withdrawals, the reconciliation and the settlement files."""
    session = get_session()
    return render_template(
        "withdrawals/index.html",
        items=withdrawals.pending_list(session, g.user),
        imports=settlement.list_imports(session, g.user.payout_point_id),
        action=ActionForm(),
        upload=SettlementUploadForm(),
        supervises=may(g.user, "supervise"),
        report=None,
    )


@bp.route("/reconcile", methods=["POST"])
@allow("supervise")
def reconcile() -> Any:
    """Ask the provider about each pending withdrawal of the point."""
    ActionForm().validate_on_submit()
    report = withdrawals.reconcile(
        get_session(),
        actor=g.user.username,
        settings=_settings(),
        point_ids=[g.user.payout_point_id],
    )
    flash(
        _(
            "Reconciled: %(c)s completed, %(r)s released, %(p)s still pending.",
            c=report.completed,
            r=report.released,
            p=report.still_pending,
        ),
        "success" if not report.still_pending else "warning",
    )
    return redirect(url_for("withdrawals.index"), code=303)


@bp.route("/settlement", methods=["POST"])
@allow("supervise")
def import_settlement() -> Any:
    """Match the provider's settlement file; every difference becomes a case."""
    session = get_session()
    form = SettlementUploadForm()
    report = None
    if form.validate_on_submit():
        upload = form.file.data
        filename = os.path.basename(upload.filename or "")[:200]
        suffix = Path(filename).suffix.lower()
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"settlement{suffix}"
            upload.save(path)
            try:
                report = settlement.import_settlement(
                    session,
                    g.user.payout_point,
                    path,
                    filename=filename,
                    actor=g.user.username,
                    user_id=g.user.id,
                )
            except ServiceError as exc:
                flash(message_for(exc), "error")
    else:
        for errors in form.errors.values():
            for error in errors:
                flash(str(error), "error")
    return render_template(
        "withdrawals/index.html",
        items=withdrawals.pending_list(session, g.user),
        imports=settlement.list_imports(session, g.user.payout_point_id),
        action=ActionForm(),
        upload=SettlementUploadForm(),
        supervises=True,
        report=report,
    ), (200 if report is not None else 400)
