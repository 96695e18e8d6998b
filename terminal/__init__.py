"""The payout-point terminal: a Flask app for paying social-assistance allowances."""

from __future__ import annotations

import logging
import sys
from typing import Any

from flask import Flask, g, request, session
from flask_login import current_user

from terminal import authz, db, formatting, labels, request_checks, server_timing
from terminal.config import LOCALES, install_proxy_fix, load_settings
from terminal.extensions import babel, csrf, limiter, login_manager
from terminal.paths import resource_dir
from terminal.security import RedactingFilter

__all__ = ["create_app"]

CSP = (
    "default-src 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'; "
    "form-action 'self'; img-src 'self' data:"
)


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build the terminal: settings, database, extensions, blueprints, headers."""
    app = Flask(
        __name__,
        template_folder=str(resource_dir("templates")),
        static_folder=str(resource_dir("static")),
        instance_relative_config=True,
    )
    load_settings(app, config)
    install_proxy_fix(app)
    configure_logging(app)
    request_checks.init_app(app)  # first: it bounds <int:...> before any route is added
    db.init_app(app)
    register_extensions(app)
    register_blueprints(app)
    register_hooks(app)
    register_errors(app)
    register_commands(app)
    formatting.init_app(app)
    labels.init_app(app)
    return app


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A stream handler writing to whatever ``sys.stderr`` is at the time of each record."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, _value: Any) -> None:
        pass


def configure_logging(app: Flask) -> None:
    """Send the terminal's logs to stderr with personal data and secrets redacted."""
    logger = logging.getLogger("terminal")
    logger.setLevel(app.config["LOG_LEVEL"])
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    # gunicorn's loggers too: served without our AccessLogger class (a gunicorn started
    # by hand), the access log still loses ID numbers and forged line breaks.
    for name in ("terminal.security", "gunicorn.access", "gunicorn.error"):
        other = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in other.filters):
            other.addFilter(RedactingFilter())
    if not logger.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(RedactingFilter())
        logger.addHandler(handler)
        logger.propagate = False


def select_locale() -> str:
    """Pick the page language: the user's choice, else Vietnamese."""
    from flask import current_app, has_request_context

    if not has_request_context():  # the command line speaks the terminal's language
        return current_app.config["DEFAULT_LOCALE"]
    chosen = session.get("lang")
    if chosen in LOCALES:
        return chosen
    if request.path.startswith("/api/"):
        match = request.accept_languages.best_match(LOCALES)
        if match:
            return match
    return current_app.config["DEFAULT_LOCALE"]


def register_extensions(app: Flask) -> None:
    """Attach login, CSRF and translations."""
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None  # our own message, translated, in the view
    login_manager.session_protection = None  # our server-side sessions do better
    login_manager.user_loader(_load_user)
    csrf.init_app(app)
    limiter.init_app(app)
    babel.init_app(
        app, locale_selector=select_locale, default_translation_directories="translations"
    )


def _load_user(user_id: str) -> Any:
    """Return the user of this browser's login session if it is still live."""
    from datetime import timedelta

    from terminal.services.auth import load_session_user

    user, why = load_session_user(
        db.get_session(),
        session.get("sid"),
        idle=timedelta(minutes=app_config("IDLE_TIMEOUT_MINUTES")),
        max_age=timedelta(hours=app_config("SESSION_MAX_HOURS")),
    )
    if user is None or str(user.id) != user_id:
        if why:
            g.session_end_reason = why
        session.pop("sid", None)
        return None
    return user


def app_config(name: str) -> Any:
    """Return a setting of the current app."""
    from flask import current_app

    return current_app.config[name]


def register_blueprints(app: Flask) -> None:
    """Register every blueprint, one per domain."""
    from terminal import api
    from terminal.views import (
        admin,
        audit,
        auth,
        counter,
        daybook,
        delivery,
        followup,
        health,
        home,
        receipts,
        reports,
        roster,
        samples,
        tablet,
        trail,
        withdrawals,
    )

    blueprints = (
        auth.bp,
        home.bp,
        counter.bp,
        followup.bp,
        audit.bp,
        daybook.bp,
        delivery.bp,
        withdrawals.bp,
        receipts.bp,
        admin.bp,
        roster.bp,
        reports.bp,
        samples.bp,
        trail.bp,
        tablet.bp,
        health.bp,
    )
    for blueprint in (*blueprints, api.bp):
        app.register_blueprint(blueprint)
    csrf.exempt(api.bp)  # the API authenticates by bearer token, never by cookie


def register_hooks(app: Flask) -> None:
    """Guard every request and set the security headers of every response."""
    if app.config.get("SERVER_TIMING"):
        server_timing.init_app(app)
    app.before_request(authz.enforce)

    @app.after_request
    def security_headers(response):  # type: ignore[no-untyped-def]
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.endpoint != "static":
            # Pages and API answers carry personal data: never keep them in a cache.
            headers["Cache-Control"] = "no-store"
            headers["Pragma"] = "no-cache"
        if app.config["SESSION_COOKIE_SECURE"]:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        return response

    @app.context_processor
    def globals_for_templates() -> dict[str, Any]:
        from terminal.forms import ROLE_LABELS

        return {
            "may": lambda permission: authz.may(
                current_user if current_user.is_authenticated else None, permission
            ),
            "current_locale": select_locale(),
            "role_label": lambda role: ROLE_LABELS.get(role, role),
        }


def register_errors(app: Flask) -> None:
    """Answer errors with a page or a JSON body, never a stack trace."""
    from terminal.views.errors import register

    register(app)


def register_commands(app: Flask) -> None:
    """Add the payout-terminal commands to the app's CLI."""
    from terminal.cli import commands

    for command in commands:
        app.cli.add_command(command)
