"""The follow-up queue: the cases of a point, oldest first, and the day's summary.

Staff see their point's cases, the point's supervisor works them, auditors read
every point's. Thin views over ``services.followup``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _

from terminal.authz import allow
from terminal.clock import check_day, parse_iso_date, today_local
from terminal.db import get_session
from terminal.forms import ActionForm, CaseForm
from terminal.labels import FAILURE_STATUS, REASON
from terminal.messages import message_for
from terminal.models import FailureReason, FailureStatus
from terminal.policy import may
from terminal.services import followup
from terminal.services.errors import ServiceError

bp = Blueprint("followup", __name__, url_prefix="/followup")


def _filters() -> followup.FailureFilter:
    """Read the queue's filters from the query string; unknown values are ignored."""
    args = request.args
    reason = args.get("reason", "")
    return followup.FailureFilter(
        reason=FailureReason(reason) if reason in set(FailureReason) else None,
        point_code=(args.get("point") or "")[:12] or None,
        commune=(args.get("commune") or "")[:120] or None,
        overdue=args.get("overdue") == "1",
    )


@bp.route("/")
@allow("follow_up")
def queue() -> Any:
    """List the open cases, oldest first, with their age, deadline and owner."""
    filters = _filters()
    cases = followup.queue(get_session(), g.user, filters)
    today = today_local()
    return render_template(
        "followup/queue.html",
        items=[followup.item_of(case, today) for case in cases],
        filters=filters,
        reasons=REASON,
        limit=followup.QUEUE_LIMIT,
        everywhere=g.user.payout_point_id is None,
    )


def _case_form(case: Any) -> CaseForm:
    form = CaseForm()
    form.status.choices = [(s.value, str(FAILURE_STATUS[s])) for s in FailureStatus]
    form.assignee.choices = [("", _("(no owner)"))] + [
        (u.username, f"{u.full_name} ({u.username})") for u in followup.owners(get_session(), case)
    ]
    if request.method == "GET":
        form.status.data = case.status.value
        form.assignee.data = case.assignee.username if case.assignee else ""
    return form


@bp.route("/<int:failure_id>", methods=["GET", "POST"])
@allow("follow_up")
def case(failure_id: int) -> Any:
    """Show a case with its thread; the point's supervisor works it here."""
    session = get_session()
    failure = followup.get_failure(session, g.user, failure_id)
    works = may(g.user, "supervise")
    form = _case_form(failure) if works else None
    status = 200
    if request.method == "POST":
        if form is None:
            abort(403)
        if form.validate_on_submit():
            try:
                followup.update(
                    session,
                    g.user,
                    failure_id,
                    status=FailureStatus(form.status.data),
                    note=form.note.data or None,
                    assignee=form.assignee.data or None,
                )
            except ServiceError as error:
                flash(message_for(error), "error")
                status = error.status
            else:
                flash(_("Case %(id)s saved.", id=failure_id), "success")
                return redirect(url_for("followup.case", failure_id=failure_id), code=303)
        else:
            flash(_("Check the form."), "error")
            status = 400
        failure = followup.get_failure(session, g.user, failure_id)
    return (
        render_template(
            "followup/case.html",
            case=followup.item_of(failure),
            thread=followup.thread(failure),
            form=form,
        ),
        status,
    )


@bp.route("/summary")
@allow("follow_up")
def summary() -> Any:
    """The day's summary, as a table and as text to paste into a message."""
    day = today_local()
    if request.args.get("date"):
        try:
            day = check_day(parse_iso_date(request.args["date"]))
        except ValueError:
            flash(_("Write the date as YYYY-MM-DD."), "error")
    result = followup.daily_summary(get_session(), g.user, day)
    return render_template(
        "followup/summary.html",
        summary=result,
        text=followup.summary_text(result),
        reasons=REASON,
    )


@bp.route("/at-risk")
@allow("follow_up")
def at_risk() -> Any:
    """People unpaid in the last two ended periods, by commune; ``?format=csv`` too."""
    codes, rows = followup.at_risk(get_session(), g.user)
    if request.args.get("format") == "xlsx":
        response = Response(
            followup.at_risk_export(codes, rows, "xlsx"),
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        )
        response.headers["Content-Disposition"] = 'attachment; filename="two-missed-periods.xlsx"'
        return response
    if request.args.get("format") == "csv":
        response = Response(followup.at_risk_export(codes, rows, "csv"), mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="two-missed-periods.csv"'
        return response
    return render_template(
        "followup/at_risk.html",
        codes=codes,
        rows=rows,
        form=ActionForm() if may(g.user, "supervise") else None,
    )


@bp.route("/at-risk/cases", methods=["POST"])
@allow("supervise")
def open_reach_cases() -> Any:
    """Open a case to reach each listed person who has none (the point's supervisor)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    opened = followup.open_reach_cases(get_session(), g.user)
    flash(_("%(n)d cases opened.", n=opened), "success")
    return redirect(url_for("followup.at_risk"), code=303)


@bp.route("/failures")
@allow("export")
def export_failures() -> Any:
    """Every failure and case, oldest first, as CSV or Excel (auditors); the export is audited."""
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    body, _count = followup.failures_export(get_session(), g.user, fmt)
    mimetype = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == "xlsx"
        else "text/csv"
    )
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="failures.{fmt}"'
    return response


@bp.route("/corrections")
@allow("follow_up")
def corrections() -> Any:
    """The open data errors, one row per field, as CSV or Excel for the roster's keeper."""
    fmt = request.args.get("format", "csv")
    if fmt not in ("csv", "xlsx"):
        abort(400)
    body = followup.corrections_export(followup.corrections(get_session(), g.user), fmt)
    mimetype = (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        if fmt == "xlsx"
        else "text/csv"
    )
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="corrections.{fmt}"'
    return response
