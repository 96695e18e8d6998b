"""The auditors' payout log: filters, keyset pages, one payout's whole story, exports.

Staff see their point's payouts (the policy's scope), auditors every point's; both
only read. Exports of the filtered log (CSV streamed, XLSX from a temporary file)
are the auditors' alone and each leaves an audit event. Thin views over
``services.payout_log``.
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from terminal.authz import allow
from terminal.db import get_session, new_session
from terminal.money import format_vnd_plain
from terminal.policy import may, sees_everywhere
from terminal.services import payout_log
from terminal.services.errors import InvalidInput

bp = Blueprint("audit", __name__, url_prefix="/audit")

PAGE_SIZE = 50
# The query-string names of the filters, as the form sends them.
FILTER_ARGS = (
    "period",
    "from",
    "to",
    "district",
    "commune",
    "point",
    "staff",
    "channel",
    "collector",
    "status",
    "beneficiary",
)
# What a page says of a refused filter, by the field the service names.
FIELD_MESSAGES = {
    "from": _l("Write the start date as dd/mm/yyyy."),
    "to": _l("Write the end date as dd/mm/yyyy, on or after the start date."),
    "period": _l("Write the period as YYYY-MM, for example 2021-10."),
    "cursor": _l("That page link is not valid any more: start again from the first page."),
    "sort": _l("Choose an order from the list."),
    "status": _l("Choose a status from the list."),
    "channel": _l("Choose a channel from the list."),
    "collector": _l("Choose who collected from the list."),
    "format": _l("Exports are CSV or Excel."),
}
SORT_LABELS = {
    "newest": _l("Newest first"),
    "oldest": _l("Oldest first"),
    "amount_desc": _l("Largest amount first"),
    "amount_asc": _l("Smallest amount first"),
}
STATUS_LABELS = {
    "completed": _l("Paid"),
    "reversed": _l("Reversed"),
    "pending": _l("Pending"),
}
CHANNEL_LABELS = {"cash": _l("Cash"), "account": _l("Account")}
COLLECTOR_LABELS = {"beneficiary": _l("In person"), "proxy": _l("Proxy")}


def refusal(error: InvalidInput) -> str:
    """Return the page's message for a refused filter or cursor."""
    field = error.fields.get("field")
    if error.code == "export_too_large":
        return _(
            "%(rows)s payouts match: an Excel file from this page holds at most %(limit)s. "
            "Narrow the filters, or download CSV (any size).",
            rows=format_vnd_plain(error.fields["rows"]),
            limit=format_vnd_plain(error.fields["limit"]),
        )
    return str(FIELD_MESSAGES.get(field, _l("Check the filters: one of them is not valid.")))


def query_args(filters: payout_log.PayoutFilter) -> dict[str, str]:
    """Return a filter as the query string the form sends (for links and exports)."""
    names = {"date_from": "from", "date_to": "to", "point_code": "point"}
    names["beneficiary_code"] = "beneficiary"
    return {names.get(k, k): v for k, v in filters.as_dict().items()}


def _raw_args() -> dict[str, str]:
    """Return the filter values of the request as sent (to refill the form)."""
    return {name: request.args.get(name, "")[:120] for name in FILTER_ARGS}


@bp.route("/payouts")
@allow("payout_log")
def payouts() -> Any:
    """The payout log: filters, a quick find, a page of payouts and the pager."""
    session = get_session()
    found = (request.args.get("q") or "").strip()
    form = _raw_args()
    sort = request.args.get("sort") or payout_log.SORTS[0]
    status = 200
    result = None
    filters = payout_log.PayoutFilter()
    try:
        if found:
            payout_id, by_person = payout_log.find(session, g.user, found)
            if payout_id is not None:
                return redirect(url_for("audit.payout", payout_id=payout_id), code=303)
            if by_person is None:
                raise LookupError
            form["beneficiary"] = by_person.beneficiary_code or ""
        filters = payout_log.filters_from(form)
        result = payout_log.browse(
            session,
            g.user,
            filters,
            limit=PAGE_SIZE,
            sort=sort,
            after=request.args.get("after") or None,
            before=request.args.get("before") or None,
        )
        if found and len(result.items) == 1 and not result.next_cursor:
            # One payout for that beneficiary: straight to it.
            return redirect(url_for("audit.payout", payout_id=result.items[0]["payout_id"]), 303)
    except InvalidInput as error:
        flash(refusal(error), "error")
        status = 400
    except LookupError:
        flash(_("No receipt or beneficiary code %(text)s here.", text=found[:32]), "error")
        status = 404
    args = query_args(filters) if result is not None else {}
    if result is not None:
        args["sort"] = result.sort
    return (
        render_template(
            "audit/payouts.html",
            result=result,
            form=form,
            sort=sort if sort in payout_log.SORTS else payout_log.SORTS[0],
            args=args,
            found=found,
            periods=payout_log.period_codes(session),
            everywhere=sees_everywhere(g.user),
            exports=may(g.user, "export"),
            sorts=SORT_LABELS,
            statuses=STATUS_LABELS,
            channels=CHANNEL_LABELS,
            collectors=COLLECTOR_LABELS,
        ),
        status,
    )


@bp.route("/payouts/<int:payout_id>")
@allow("payout_log")
def payout(payout_id: int) -> Any:
    """One payout: verification, receipt, what it paid, reversal, failures, audit events."""
    from terminal.services.receipts import verify_url

    detail = payout_log.payout_detail(get_session(), g.user, payout_id)
    receipt = detail["payout"].receipt
    return render_template(
        "audit/payout.html",
        **detail,
        verify=verify_url(current_app, detail["payout"]) if receipt else None,
        pdf=may(g.user, "counter") and receipt is not None,
        statuses=STATUS_LABELS,
        channels=CHANNEL_LABELS,
        collectors=COLLECTOR_LABELS,
    )


@bp.route("/payouts/export")
@allow("export")
def export_payouts() -> Any:
    """The filtered log as CSV (streamed) or Excel, for auditors; each export is audited."""
    fmt = request.args.get("format", "csv")
    try:
        filters = payout_log.filters_from(_raw_args())
        payout_log.check_export(g.user, fmt)
        if fmt == "xlsx":
            handle, _count = payout_log.xlsx_file(
                get_session(), g.user, filters, actor=g.user.username
            )
            response = Response(payout_log.file_chunks(handle), mimetype=payout_log.XLSX_MIMETYPE)
        else:
            app = current_app._get_current_object()  # the rows are read after the request
            rows = payout_log.csv_lines(lambda: new_session(app), g.user, filters)
            response = Response(rows, mimetype="text/csv")
    except InvalidInput as error:
        flash(refusal(error), "error")
        kept = {k: v for k, v in _raw_args().items() if v}
        return redirect(url_for("audit.payouts", **kept), code=303)
    response.headers["Content-Disposition"] = f'attachment; filename="payouts.{fmt}"'
    return response
