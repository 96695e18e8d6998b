"""The route guard: one decorator, one check before every request, over the one policy.

Every view is marked with ``@allow(<permission>)`` or ``@public``. The check in
``enforce`` runs before every request and refuses (fail closed) any endpoint that
carries no mark, so a route cannot forget its guard; tests walk the URL map to
prove it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, g, jsonify, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.exceptions import Forbidden

from terminal.policy import POLICY, Permission, may  # noqa: F401  (re-exported)

log = logging.getLogger("terminal.security")

PUBLIC = "public"
F = TypeVar("F", bound=Callable[..., Any])


def allow(permission: str) -> Callable[[F], F]:
    """Mark a view as reachable by the roles holding a permission of POLICY."""
    if permission not in set(Permission):
        raise ValueError(f"unknown permission {permission}")

    def mark(view: F) -> F:
        view._authz = permission  # type: ignore[attr-defined]
        return view

    return mark


def public(view: F) -> F:
    """Mark a view as reachable without signing in."""
    view._authz = PUBLIC  # type: ignore[attr-defined]
    return view


def permission_of(app: Flask, endpoint: str) -> str | None:
    """Return the permission a view is marked with, or None if unmarked."""
    if endpoint == "static":
        return PUBLIC
    view = app.view_functions.get(endpoint)
    return getattr(view, "_authz", None)


def _here() -> str | None:
    """Return the page to come back to after signing in (GET requests only)."""
    if request.method != "GET":
        return None
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def is_api_request() -> bool:
    """Tell whether the request is for the JSON API."""
    return request.path.startswith("/api/")


def enforce() -> Any:
    """Before every request: refuse it unless the view's mark admits the caller."""
    if request.endpoint is None:
        return None  # no such route: the 404/405 handlers answer
    permission = permission_of(current_app, request.endpoint)
    if permission is None:
        log.error("route without an authorisation mark refused: %s", request.endpoint)
        raise Forbidden()
    if permission == PUBLIC:
        return None
    if is_api_request():
        from terminal.api import authenticate_bearer

        user = authenticate_bearer()
        if user is None:
            response = jsonify(
                error="unauthorized", message=_("Sign in first: a valid token is required.")
            )
            response.status_code = 401
            response.headers["WWW-Authenticate"] = 'Bearer realm="payout-terminal"'
            return response
    else:
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=_here(), ended=g.get("session_end_reason")))
        user = current_user._get_current_object()
    g.user = user
    if not may(user, permission):
        log.warning(
            "access denied: user=%s role=%s endpoint=%s",
            user.username,
            user.role.value,
            request.endpoint,
        )
        raise Forbidden()
    return None
