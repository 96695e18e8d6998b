"""The public receipt check: ``GET /r/<token>``, what a receipt's QR code opens."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, current_app, render_template

from terminal.authz import public
from terminal.db import get_session
from terminal.extensions import limiter
from terminal.services import receipts

bp = Blueprint("receipts", __name__)

CHECK_LIMIT = "30 per minute"


@bp.route("/r/<path:token>")
@public
@limiter.limit(CHECK_LIMIT)
def check(token: str) -> Any:
    """Say whether a receipt is genuine, reversed or not genuine."""
    result = receipts.check_token(get_session(), current_app, token)
    status = 200 if result.valid else 404
    return render_template("receipts/check.html", result=result), status
