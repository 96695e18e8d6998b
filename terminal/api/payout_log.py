"""``GET /api/v1/payouts``: the payout log, a page at a time, or the whole of it as CSV or XLSX.

API.md's filters (``from``, ``to``, ``payout_point``, ``commune``, ``status``) and cursor
hold as written; more filters (``period``, ``district``, ``staff``, ``channel``,
``collector``, ``beneficiary``), ``sort`` and ``before`` (the page before) are added.
With ``Accept: text/csv`` the whole filtered log streams as CSV; with ``Accept:`` the
XLSX type or ``format=xlsx`` it comes as a workbook. Exports are the auditors' and
each leaves an ``export.written`` event, committed before the first byte.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Response, current_app, g, request
from pydantic import ConfigDict, Field

from terminal.api import endpoint, parse_query, reply
from terminal.api.schemas import ErrorBody, PayoutItem, PayoutList, PayoutQuery
from terminal.db import get_session, new_session
from terminal.services import payout_log

log = logging.getLogger("terminal")


class PayoutLogQuery(PayoutQuery):
    """Filters, order and cursor of the payout log, and what form it comes in."""

    model_config = ConfigDict(extra="ignore")

    period: str | None = Field(default=None, pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$")
    district: str | None = Field(default=None, max_length=120)
    staff: str | None = Field(default=None, max_length=64)
    channel: Literal["cash", "account"] | None = None
    collector: Literal["beneficiary", "proxy"] | None = None
    beneficiary: str | None = Field(default=None, max_length=32)
    sort: Literal["newest", "oldest", "amount_desc", "amount_asc"] = "newest"
    cursor: str | None = Field(default=None, max_length=100)
    before: str | None = Field(default=None, max_length=100)
    format: Literal["json", "csv", "xlsx"] | None = None


class PayoutLogList(PayoutList):
    """A page of the payout log, with the cursor of the page before it."""

    prev_cursor: str | None = None


ACCEPTED = ["application/json", "text/csv", payout_log.XLSX_MIMETYPE]


@endpoint(
    "/payouts",
    "GET",
    summary=(
        "The payout log, filtered and sorted; with Accept: text/csv (or format=csv) the whole "
        "filtered log as CSV, with the XLSX type (or format=xlsx) as a workbook (auditors)"
    ),
    permission="payout_log",
    query=PayoutLogQuery,
    responses={
        200: (PayoutLogList, "text/csv", payout_log.XLSX_MIMETYPE),
        400: ErrorBody,
        401: ErrorBody,
        403: ErrorBody,
    },
)
def list_payouts() -> Any:
    """List payouts the caller may see, or export them all as CSV or XLSX."""
    query = parse_query(PayoutLogQuery)
    filters = payout_log.PayoutFilter(
        date_from=query.from_,
        date_to=query.to,
        point_code=query.payout_point,
        commune=query.commune,
        status=query.status,
        period=query.period,
        district=query.district,
        staff=query.staff,
        channel=query.channel,
        collector=query.collector,
        beneficiary_code=query.beneficiary,
    )
    fmt = query.format
    if fmt is None:
        best = request.accept_mimetypes.best_match(ACCEPTED)
        fmt = {"text/csv": "csv", payout_log.XLSX_MIMETYPE: "xlsx"}.get(best or "", "json")
    if fmt == "csv":
        app = current_app._get_current_object()  # the generator runs after the request
        rows = payout_log.csv_lines(lambda: new_session(app), g.user, filters)
        log.info("payout log exported as CSV by %s", g.user.username)
        response = Response(rows, mimetype="text/csv")
        response.headers["Content-Disposition"] = 'attachment; filename="payouts.csv"'
        return response
    if fmt == "xlsx":
        handle, _count = payout_log.xlsx_file(get_session(), g.user, filters, actor=g.user.username)
        log.info("payout log exported as XLSX by %s", g.user.username)
        response = Response(payout_log.file_chunks(handle), mimetype=payout_log.XLSX_MIMETYPE)
        response.headers["Content-Disposition"] = 'attachment; filename="payouts.xlsx"'
        return response
    result = payout_log.browse(
        get_session(),
        g.user,
        filters,
        limit=query.limit,
        sort=query.sort,
        after=query.cursor,
        before=query.before,
    )
    items = [PayoutItem(**row) for row in result.items]
    return reply(
        PayoutLogList(items=items, next_cursor=result.next_cursor, prev_cursor=result.prev_cursor)
    )
