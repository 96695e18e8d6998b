"""Checks every request passes before any view: bounded ids in URLs, no NUL characters.

A 65-bit id or a NUL reaches the database as an error (SQLite cannot bind the
integer; PostgreSQL refuses NUL in text), which would be a 500. Both are malformed
requests: they get a 404 (no such object) or a 400 here, in one place for every route.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Flask, request
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from terminal.models.base import MAX_ID


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` limited to ASCII digits and a 64-bit value: beyond, no route matches."""

    regex = r"[0-9]+"

    def __init__(
        self,
        map: Any,
        fixed_digits: int = 0,
        min: int | None = None,
        max: int | None = MAX_ID,
        signed: bool = False,
    ) -> None:
        bound = MAX_ID if max is None or max > MAX_ID else max
        super().__init__(map, fixed_digits, min, bound, signed)


def _has_nul(value: Any) -> bool:
    """Tell whether a JSON value holds a NUL character in any string, key or value."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(item) for item in value)
    return False


def refuse_nul_characters() -> None:
    """Refuse a request with a NUL character in its path, query, form fields or JSON body.

    Uploaded files and other bodies are left alone: a spreadsheet may hold NUL bytes.
    """
    if "\x00" in request.path or any(
        _has_nul(key) or _has_nul(values) for key, values in request.args.lists()
    ):
        raise BadRequest()
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return
    if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        if any(_has_nul(key) or _has_nul(values) for key, values in request.form.lists()):
            raise BadRequest()
        return
    if not (request.is_json or request.path.startswith("/api/")):
        return
    raw = request.get_data(cache=True)
    if not raw:
        return
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        return  # not JSON (a raw NUL included): the view's own parsing refuses it
    if _has_nul(body):
        raise BadRequest()


def init_app(app: Flask) -> None:
    """Bound the URL map's integers (before routes are added) and check every request."""
    app.url_map.converters["int"] = BoundedIntConverter
    app.before_request(refuse_nul_characters)
