"""Reports: a period's coverage by area (auditors, supervisors) and its return file (auditors).

Thin views over ``services.reports``, which says what every figure and status means.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from flask import Blueprint, Response, current_app, flash, g, render_template, request
from flask_babel import format_decimal
from flask_babel import gettext as _

from terminal.authz import allow
from terminal.db import get_session, new_session
from terminal.messages import message_for
from terminal.money import format_vnd_plain
from terminal.policy import may
from terminal.services import payout_log, reports
from terminal.services.errors import ServiceError

bp = Blueprint("reports", __name__, url_prefix="/reports")

MIMETYPES = {"csv": "text/csv", "xlsx": reports.XLSX_MIMETYPE}


def percent(value: Decimal) -> str:
    """Return a share with one decimal in the page's language: 43,5 in Vietnamese."""
    return format_decimal(value, format="0.0")


def summary_line(row: reports.CoverageRow) -> str:
    """Return the pilot's summary line: "2.053/4.716 đối tượng (43,5%)"."""
    return _(
        "%(paid)s/%(total)s beneficiaries (%(pct)s%%)",
        paid=format_vnd_plain(row.paid),
        total=format_vnd_plain(row.beneficiaries),
        pct=percent(row.paid_pct),
    )


def _message(error: ServiceError) -> str:
    """Return what a refusal says on the page."""
    if error.code == "group_by_invalid":
        return _("Group by district or by commune.")
    if error.code == "format_invalid":
        return _("Download as CSV or Excel.")
    if error.code == "export_too_large":
        return _(
            "%(rows)s rows: an Excel file from this page holds at most %(limit)s. "
            "Download CSV, or use the export-period command.",
            rows=format_vnd_plain(error.fields["rows"]),
            limit=format_vnd_plain(error.fields["limit"]),
        )
    return message_for(error)


def _attachment(body: Any, fmt: str, name: str) -> Response:
    """Return a download."""
    response = Response(body, mimetype=MIMETYPES[fmt])
    response.headers["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response


@bp.route("/coverage")
@allow("audit")
def coverage() -> Any:
    """Show a period's coverage: the summary line, a bar chart of paid %, the table."""
    session = get_session()
    periods = reports.period_codes(session)
    period = (request.args.get("period") or "").strip()[:20] or (periods[0] if periods else "")
    group_by = (request.args.get("group_by") or "district").strip()[:20]
    fmt = request.args.get("format")
    report = None
    status = 200
    if period:
        try:
            report = reports.coverage(session, g.user, period=period, group_by=group_by)
        except ServiceError as error:
            flash(_message(error), "error")
            status = error.status
    if report is not None and fmt is not None:
        if fmt not in reports.FORMATS:
            flash(_("Download as CSV or Excel."), "error")
            status = 400
        else:
            body = reports.coverage_export(session, g.user, report, fmt)
            return _attachment(body, fmt, f"coverage-{report.period}-{report.group_by}")
    return _page(report, periods, period, group_by, status)


def _page(
    report: reports.Coverage | None, periods: list[str], period: str, group_by: str, status: int
) -> Any:
    """Render the coverage page."""
    return (
        render_template(
            "reports/coverage.html",
            report=report,
            periods=periods,
            period=period,
            group_by=group_by,
            summary=summary_line(report.total) if report else None,
            percent=percent,
            exports=may(g.user, "export"),
        ),
        status,
    )


@bp.route("/period")
@allow("export")
def return_file() -> Any:
    """Download a period's return file for the ministry (auditors); the export is audited."""
    session = get_session()
    fmt = request.args.get("format", "csv")
    try:
        spec = reports.return_file(
            session,
            g.user,
            actor=g.user.username,
            period=request.args.get("period"),
            fmt=fmt,
            max_xlsx_rows=payout_log.WEB_XLSX_MAX_ROWS,
        )
    except ServiceError as error:
        flash(_message(error), "error")
        return _page(None, reports.period_codes(session), "", "district", error.status)
    app = current_app._get_current_object()  # the CSV generator runs after the request
    body = reports.return_file_stream(lambda: new_session(app), session, spec, fmt)
    return _attachment(body, fmt, f"chi-tra-{spec.period}")
