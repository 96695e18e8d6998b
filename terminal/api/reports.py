"""``/api/v1/reports``: a period's coverage, and its return file (API.md, "Audit and reports").

Coverage is for auditors (every commune) and supervisors (their point's communes);
the return file holds personal data and is for auditors only (DESIGN rule 8). The
meaning of every figure and status is in ``terminal.services.reports``.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, request
from pydantic import BaseModel, ConfigDict, Field

from terminal.api import endpoint, parse_query, reply
from terminal.api.schemas import ErrorBody
from terminal.db import get_session, new_session
from terminal.services import payout_log, reports

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


class CoverageQuery(BaseModel):
    """Which period, grouped by what."""

    model_config = ConfigDict(extra="ignore")

    period: str = Field(default="", max_length=20, description="YYYY-MM, e.g. 2021-10")
    group_by: str = Field(default="district", max_length=20, description="district or commune")


class CoverageFigures(BaseModel):
    """One area's figures (or every area's together, in ``total``)."""

    area: str = Field(description="the district's or commune's name; 'total' in the total")
    district: str | None = Field(
        default=None, description="the commune's district when grouped by commune"
    )
    beneficiaries: int = Field(description="people with a not-cancelled entitlement of the period")
    paid: int = Field(description="of them, paid by a completed payout (not reversed)")
    paid_pct: float = Field(description="paid / beneficiaries in %, one decimal; 0 when none")
    amount_due: int = Field(description="đồng of the period's entitlements not cancelled")
    amount_paid: int = Field(description="đồng paid for them")
    cash: int = Field(description="paid people paid in cash (counter or home)")
    account: int = Field(description="paid people paid by account withdrawal")
    via_proxy: int = Field(description="paid people whose money a proxy collected")


class CoverageBody(BaseModel):
    """A period's coverage by area."""

    period: str
    group_by: str
    rows: list[CoverageFigures]
    total: CoverageFigures


class ReturnFileQuery(BaseModel):
    """Which period, in which format (``Accept`` decides when ``format`` is left out)."""

    model_config = ConfigDict(extra="ignore")

    period: str = Field(default="", max_length=20, description="YYYY-MM, e.g. 2021-10")
    format: str | None = Field(default=None, max_length=10, description="csv or xlsx")


@endpoint(
    "/reports/coverage",
    "GET",
    summary="A period's coverage by district or commune: paid, amounts, channels, proxies",
    permission="audit",
    query=CoverageQuery,
    responses={200: CoverageBody, **ERRORS},
)
def get_coverage() -> Any:
    """Return the coverage of a period within the caller's communes."""
    query = parse_query(CoverageQuery)
    report = reports.coverage(get_session(), g.user, period=query.period, group_by=query.group_by)
    return reply(
        CoverageBody(
            period=report.period,
            group_by=report.group_by,
            rows=[CoverageFigures(**row.as_dict()) for row in report.rows],
            total=CoverageFigures(**report.total.as_dict()),
        )
    )


def _wanted_format(explicit: str | None) -> str:
    """Return the format asked by ``format``, else by ``Accept`` (CSV unless XLSX is asked)."""
    if explicit:
        return explicit.strip().lower()
    best = request.accept_mimetypes.best_match(["text/csv", reports.XLSX_MIMETYPE])
    return "xlsx" if best == reports.XLSX_MIMETYPE else "csv"


@endpoint(
    "/reports/period",
    "GET",
    summary="A period's return file for the ministry: one row per entitlement (auditors)",
    permission="export",
    query=ReturnFileQuery,
    responses={200: ("text/csv", reports.XLSX_MIMETYPE), **ERRORS},
)
def get_return_file() -> Any:
    """Stream a period's return file as CSV, or send it as XLSX; the export is audited."""
    query = parse_query(ReturnFileQuery)
    fmt = _wanted_format(query.format)
    session = get_session()
    spec = reports.return_file(
        session,
        g.user,
        actor=g.user.username,
        period=query.period,
        fmt=fmt,
        max_xlsx_rows=payout_log.WEB_XLSX_MAX_ROWS,
    )
    return return_file_response(session, spec, fmt)


def return_file_response(session: Any, spec: reports.ReturnFile, fmt: str) -> Response:
    """Answer with a checked return file as an attachment (CSV streamed)."""
    app = current_app._get_current_object()  # the CSV generator runs after the request
    body = reports.return_file_stream(lambda: new_session(app), session, spec, fmt)
    mimetype = reports.XLSX_MIMETYPE if fmt == "xlsx" else "text/csv"
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="chi-tra-{spec.period}.{fmt}"'
    return response
