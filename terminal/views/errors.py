"""Error answers: a page for people, JSON for the API, never a stack trace."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from terminal.authz import is_api_request
from terminal.db import CommitOutcomeUnknown
from terminal.messages import message_for
from terminal.services.errors import ServiceError, Throttled

log = logging.getLogger("terminal")

HTTP_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "refused",
    429: "too_many_requests",
    500: "system_error",
    503: "unavailable",
}


def http_message(status: int) -> str:
    """Return a short, translated explanation of an HTTP status."""
    messages = {
        400: _("The request could not be understood."),
        401: _("Sign in first."),
        403: _("Your role may not do this."),
        404: _("Not found."),
        405: _("This action is not allowed here."),
        409: _("This conflicts with what is already recorded."),
        413: _("The upload is too large."),
        415: _("Send the request as JSON."),
        429: _("Too many attempts. Wait and try again."),
        500: _("Something went wrong on the terminal. Nothing was changed; try again."),
        503: _("The database is not answering. Nothing was changed; try again shortly."),
    }
    return messages.get(status, _("Something went wrong."))


def outcome_unknown_message(*, api: bool) -> str:
    """Return what to tell a clerk whose payment's COMMIT went unanswered (S07)."""
    if api:
        return _(
            "The database did not confirm the payment: it may or may not be recorded. "
            "Do not hand over cash; send the same request again with the same "
            "Idempotency-Key, or check the payout log."
        )
    return _(
        "Unknown outcome: the database did not confirm whether the payment was recorded. "
        "Do not hand over cash. Send the form again (it cannot pay twice) or check the "
        "payout log."
    )


def json_error(status: int, code: str, message: str, **fields: Any) -> Any:
    """Return the API's error body with a status."""
    response = jsonify({"error": code, "message": message, **fields})
    response.status_code = status
    return response


def _page(status: int, message: str) -> Any:
    """Render the error page."""
    return render_template("error.html", status=status, message=message), status


def register(app: Flask) -> None:
    """Install the handlers."""

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Any:
        status = exc.code or 500
        if is_api_request():
            response = json_error(status, HTTP_CODES.get(status, "error"), http_message(status))
            if status == 405 and exc.get_response().headers.get("Allow"):
                response.headers["Allow"] = exc.get_response().headers["Allow"]
            return response
        return _page(status, http_message(status))

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError) -> Any:
        log.warning("CSRF check failed: endpoint=%s reason=%s", request.endpoint, exc.description)
        return _page(400, _("This form has expired. Go back, reload the page and try again."))

    @app.errorhandler(ServiceError)
    def service_error(exc: ServiceError) -> Any:
        message = message_for(exc)
        if is_api_request():
            response = json_error(exc.status, exc.code, message, **exc.fields)
            if isinstance(exc, Throttled):
                response.headers["Retry-After"] = str(exc.retry_after)
            return response
        return _page(exc.status, message)

    @app.errorhandler(CommitOutcomeUnknown)
    def outcome_unknown(exc: CommitOutcomeUnknown) -> Any:
        # Not "nothing was changed": the COMMIT may have been saved (RELIABILITY S07).
        log.error("commit outcome unknown on %s %s: %s", request.method, request.path, exc)
        if is_api_request():
            return json_error(503, "outcome_unknown", outcome_unknown_message(api=True))
        return _page(503, outcome_unknown_message(api=False))

    @app.errorhandler(OperationalError)
    def database_down(exc: OperationalError) -> Any:
        log.error("database error: %s", exc.orig if exc.orig else exc)
        if is_api_request():
            return json_error(503, "unavailable", http_message(503))
        return _page(503, http_message(503))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Any:
        log.exception("unexpected error on %s %s", request.method, request.path)
        if is_api_request():
            return json_error(500, "system_error", http_message(500))
        return _page(500, http_message(500))
