"""The day book: a point's daily settlement, its closing, and the signed payout list.

Supervisors see their own point (and close its day); auditors choose any point and
day and read only. Thin views over ``services.daybook``; the papers are drawn by
``terminal.daybook_files``, and every file sent is recorded as an export first.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from terminal import daybook_files
from terminal.authz import allow, may
from terminal.clock import parse_iso_date, today_local, utcnow
from terminal.db import get_session
from terminal.labels import CHANNEL
from terminal.messages import message_for
from terminal.money import InvalidAmount, parse_vnd, vnd_in_words
from terminal.services import daybook
from terminal.services.audit import record_export
from terminal.services.errors import InvalidInput, ServiceError

bp = Blueprint("daybook", __name__, url_prefix="/daybook")

PDF_MIME = "application/pdf"


class CloseDayForm(FlaskForm):
    """Close a day: the cash counted back, a note, and a confirmation."""

    day = HiddenField(validators=[DataRequired(), Length(max=10)])
    returned = StringField(
        _l("Cash returned at closing (đồng)"),
        validators=[DataRequired(), Length(max=30)],
        description=_l("The cash counted back into the safe, e.g. 12.500.000"),
    )
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)])
    confirm = BooleanField(
        _l(
            "I have counted the cash. After closing, the day's advance cannot be changed "
            "and closing cannot be undone."
        ),
        validators=[DataRequired()],
    )


def _day_arg(value: str | None) -> date | None:
    """Read a YYYY-MM-DD day from the query; refuse anything else (400)."""
    if not value:
        return None
    try:
        return parse_iso_date(value)
    except ValueError:
        raise InvalidInput("write the date as YYYY-MM-DD", code="date_invalid") from None


def _settlement() -> daybook.Settlement:
    """Return the settlement the query asks for (point code, date)."""
    return daybook.settlement(
        get_session(),
        g.user,
        point=(request.args.get("point") or "").strip() or None,
        day=_day_arg(request.args.get("date")),
    )


def _page(result: daybook.Settlement | None, form: CloseDayForm | None, status: int = 200) -> Any:
    """Render the settlement page (or only the chooser when there is nothing to show)."""
    today = today_local()
    return (
        render_template(
            "daybook/settlement.html",
            result=result,
            form=form,
            points=daybook.points_for(get_session(), g.user),
            chosen_point=(request.args.get("point") or "").strip().upper(),
            chosen_day=(request.args.get("date") or today.isoformat())[:10],
            today=today,
            channels=CHANNEL,
            words=vnd_in_words,
        ),
        status,
    )


def _close_form(result: daybook.Settlement) -> CloseDayForm | None:
    """Return the closing form when the user supervises this point and the day is open."""
    if not may(g.user, "supervise") or result.closed or result.point.id != g.user.payout_point_id:
        return None
    form = CloseDayForm()
    if request.method == "GET":
        form.day.data = result.day.isoformat()
    return form


@bp.route("/")
@allow("audit")
def index() -> Any:
    """Show a point's settlement of a day: the supervisor's point today by default."""
    try:
        if g.user.payout_point_id is None and not request.args.get("point"):
            _day_arg(request.args.get("date"))
            return _page(None, None)  # an auditor chooses a point first
        result = _settlement()
    except ServiceError as error:
        flash(message_for(error), "error")
        return _page(None, None, error.status)
    return _page(result, _close_form(result))


@bp.route("/close", methods=["POST"])
@allow("supervise")
def close() -> Any:
    """Close the day of the supervisor's point with the cash counted back."""
    session = get_session()
    form = CloseDayForm()
    if not form.validate_on_submit():
        if form.confirm.errors and not form.csrf_token.errors:
            flash(_("Tick the confirmation to close the day."), "error")
        else:
            flash(_("Check the form."), "error")
        return _reshow(form, 400)
    try:
        day = _day_arg(form.day.data)
        returned = parse_vnd(form.returned.data or "", allow_zero=True)
        daybook.close_day(session, g.user, returned_vnd=returned, day=day, note=form.note.data)
    except InvalidAmount:
        form.returned.errors = [_("Enter the amount in đồng, e.g. 12.500.000.")]
        flash(_("Enter the amount in đồng, e.g. 12.500.000."), "error")
        return _reshow(form, 400)
    except ServiceError as error:
        flash(message_for(error), "error")
        return _reshow(form, error.status)
    flash(_("The day is closed."), "success")
    return redirect(url_for("daybook.index", date=day.isoformat() if day else None), code=303)


def _reshow(form: CloseDayForm, status: int) -> Any:
    """Show the supervisor's settlement again with the refused form and its message."""
    try:
        wanted = _day_arg(form.day.data)
    except ServiceError:
        wanted = None
    result = None
    for day in dict.fromkeys((wanted, None)):  # the day asked for, else today
        try:
            result = daybook.settlement(get_session(), g.user, day=day)
            break
        except ServiceError:
            continue
    return _page(result, form if result is not None and not result.closed else None, status)


def _attachment(body: bytes, mimetype: str, filename: str) -> Response:
    """Return a file to download."""
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _refused_file(error: ServiceError) -> Any:
    """Answer a file that cannot be made with the page and its message."""
    flash(message_for(error), "error")
    return redirect(url_for("daybook.index"), code=303)


@bp.route("/settlement.<fmt>")
@allow("audit")
def settlement_file(fmt: str) -> Any:
    """Send the settlement as PDF or XLSX (recorded as an export)."""
    if fmt not in ("pdf", "xlsx"):
        return _refused_file(InvalidInput("unknown format", code="invalid_request"))
    if fmt == "xlsx" and not may(g.user, "export"):
        # The printed document is the supervisor's; the spreadsheet of personal data is
        # an export, and exports are for auditors (DESIGN rule 8).
        abort(403)
    try:
        result = _settlement()
    except ServiceError as error:
        return _refused_file(error)
    session = get_session()
    record_export(
        session,
        actor=g.user.username,
        kind="daybook",
        fmt=fmt,
        filters={"point": result.point.code, "date": result.day.isoformat()},
        rows=len(result.rows),
    )
    name = f"bang-ke-{result.point.code}-{result.day.isoformat()}.{fmt}"
    if fmt == "pdf":
        return _attachment(
            daybook_files.settlement_pdf(result, printed_at=utcnow()), PDF_MIME, name
        )
    return _attachment(
        daybook_files.settlement_xlsx(result, printed_at=utcnow()), daybook_files.XLSX_MIME, name
    )


@bp.route("/payout-list")
@allow("audit")
def payout_list() -> Any:
    """Choose a commune and an open period; show and print its signed payout list.

    The list carries names, years of birth and amounts of the commune's people: a
    supervisor prints it for their own communes to run the payout session, an
    auditor for any. Either way each file is recorded as an export.
    """
    session = get_session()
    commune = (request.args.get("commune") or "").strip()
    period = (request.args.get("period") or "").strip()
    fmt = request.args.get("format", "")
    result = None
    status = 200
    if commune or period or fmt:
        try:
            result = daybook.payout_list(session, g.user, commune=commune, period=period)
        except ServiceError as error:
            flash(message_for(error), "error")
            status = error.status
    if fmt == "xlsx" and not may(g.user, "export"):
        abort(403)
    if result is not None and fmt in ("pdf", "xlsx"):
        record_export(
            session,
            actor=g.user.username,
            kind="payout_list",
            fmt=fmt,
            filters={"commune": result.commune.name, "period": result.period.code},
            rows=len(result.rows),
        )
        name = f"danh-sach-chi-tra-{result.commune.id}-{result.period.code}.{fmt}"
        if fmt == "pdf":
            body = daybook_files.payout_list_pdf(result, printed_at=utcnow())
            return _attachment(body, PDF_MIME, name)
        body = daybook_files.payout_list_xlsx(result, printed_at=utcnow())
        return _attachment(body, daybook_files.XLSX_MIME, name)
    return (
        render_template(
            "daybook/payout_list.html",
            result=result,
            communes=daybook.communes_for(session, g.user),
            periods=daybook.open_periods(session),
            chosen_commune=commune,
            chosen_period=period,
            words=vnd_in_words,
        ),
        status,
    )
