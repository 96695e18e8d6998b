"""Sign in, sign out and the page language."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user

from terminal.authz import allow, public
from terminal.config import LOCALES
from terminal.db import get_session
from terminal.forms import LanguageForm, LoginForm
from terminal.messages import message_for
from terminal.services import auth as auth_service
from terminal.services.errors import Throttled, Unauthorized

bp = Blueprint("auth", __name__)

END_REASONS = {
    "idle_timeout": _l("You were signed out after 15 minutes without activity."),
    "session_expired": _l("Your session has ended. Sign in again."),
    "account_disabled": _l("Your account has been disabled or changed. Sign in again."),
    "ended": _l("Your session has ended. Sign in again."),
}


def safe_next(target: str | None) -> str | None:
    """Return target if it is a path on this site, else None (no open redirects).

    Control characters are refused too: CR or LF in a Location header would split
    the response (werkzeug refuses them with an error, which would be a 500).
    """
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(not char.isprintable() for char in target):
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def client_ip() -> str | None:
    """Return the caller's address as the server saw it (never a forwarded header)."""
    return request.remote_addr


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> Any:
    """Show the sign-in form and sign the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("home.index"))
    form = LoginForm()
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next")) or ""
    error = None
    if form.validate_on_submit():
        try:
            user = auth_service.authenticate(
                get_session(),
                username=form.username.data or "",
                password=form.password.data or "",
                channel="page",
                ip=client_ip(),
            )
        except (Unauthorized, Throttled) as exc:
            error = message_for(exc)
        else:
            lang = session.get("lang")
            # A new session at login: nothing from before signing in carries over.
            session.clear()
            if lang:
                session["lang"] = lang
            session["sid"] = auth_service.start_login_session(get_session(), user, ip=client_ip())
            login_user(user, remember=False)
            return redirect(safe_next(form.next.data) or url_for("home.index"))
    elif request.method == "POST":
        error = _("Enter your username and password.")
    reason = request.args.get("ended")
    notice = str(END_REASONS[reason]) if reason in END_REASONS else None
    status = 200 if error is None else 401
    return render_template("auth/login.html", form=form, error=error, notice=notice), status


@bp.route("/logout", methods=["POST"])
@allow("signed_in")
def logout() -> Any:
    """Sign out: the session ends on the server, so a copied cookie is worthless."""
    auth_service.end_login_session(get_session(), session.get("sid"))
    logout_user()
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You have signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/lang", methods=["POST"])
@public
def set_language() -> Any:
    """Switch the page language between Vietnamese and English."""
    form = LanguageForm()
    if form.validate_on_submit() and form.lang.data in LOCALES:
        session["lang"] = form.lang.data
    return redirect(safe_next(form.next.data) or url_for("home.index"))
