"""Roster imports and payment periods, for administrators.

An upload is checked first (a dry run whose report is shown), then committed
from the same stored file, so what is committed is exactly what was previewed.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _

from terminal.authz import allow
from terminal.clock import VIETNAM
from terminal.db import get_session
from terminal.forms import ActionForm, RosterCommitForm, RosterUploadForm
from terminal.messages import message_for
from terminal.models import RosterImport, utcnow
from terminal.services import roster as roster_service
from terminal.services.errors import ServiceError

bp = Blueprint("roster", __name__, url_prefix="/admin")

UPLOAD_TTL_SECONDS = 6 * 3600
ALLOWED = (".csv", ".xlsx")


def _upload_dir() -> Path:
    """Return the private folder where uploads wait between preview and commit."""
    folder = Path(current_app.instance_path) / "uploads"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    return folder


def _sweep(folder: Path) -> None:
    """Delete uploads nobody committed within the time limit."""
    limit = time.time() - UPLOAD_TTL_SECONDS
    for item in folder.iterdir():
        try:
            if item.stat().st_mtime < limit:
                item.unlink()
        except OSError:
            continue


def _stored(token: str) -> Path | None:
    """Return the stored upload for a token this user made, if it still exists."""
    pending = session.get("roster_upload") or {}
    if not token or pending.get("token") != token:
        return None
    path = _upload_dir() / f"{token}{pending.get('ext', '')}"
    return path if path.is_file() else None


@bp.route("/roster", methods=["GET", "POST"])
@allow("admin")
def upload() -> Any:
    """Upload a roster file and show what importing it would do."""
    form = RosterUploadForm()
    if request.method == "GET":
        form.period.data = roster_service.period_code(utcnow().astimezone(VIETNAM).date())
    report = None
    commit_form = None
    if form.validate_on_submit():
        upload_file = form.file.data
        filename = os.path.basename(upload_file.filename or "")[:200]
        ext = Path(filename).suffix.lower()
        if ext not in ALLOWED:
            flash(_("Choose a .csv or .xlsx file exported from the ministry's system."), "error")
        else:
            folder = _upload_dir()
            _sweep(folder)
            token = secrets.token_urlsafe(16)
            path = folder / f"{token}{ext}"
            upload_file.save(path)
            os.chmod(path, 0o600)
            try:
                report = roster_service.import_roster(
                    get_session(),
                    path,
                    period=form.period.data or "",
                    actor=g.user.username,
                    dry_run=True,
                    filename=filename,
                )
            except ServiceError as exc:
                path.unlink(missing_ok=True)
                flash(message_for(exc), "error")
            else:
                session["roster_upload"] = {"token": token, "ext": ext, "name": filename}
                commit_form = RosterCommitForm(token=token, period=report.period)
    return render_template(
        "roster/upload.html",
        form=form,
        report=report,
        commit_form=commit_form,
        imports=roster_service.list_imports(get_session(), limit=20),
    )


@bp.route("/roster/commit", methods=["POST"])
@allow("admin")
def commit() -> Any:
    """Import the previewed file for real."""
    form = RosterCommitForm()
    if not form.validate_on_submit():
        abort(400)
    path = _stored(form.token.data or "")
    if path is None:
        flash(_("That upload has expired or was already imported. Upload the file again."), "error")
        return redirect(url_for("roster.upload"))
    name = session["roster_upload"].get("name") or path.name
    try:
        report = roster_service.import_roster(
            get_session(),
            path,
            period=form.period.data or "",
            actor=g.user.username,
            filename=name,
        )
    except ServiceError as exc:
        flash(message_for(exc), "error")
        return redirect(url_for("roster.upload"))
    finally:
        session.pop("roster_upload", None)
    path.unlink(missing_ok=True)
    flash(
        _("Imported %(name)s for %(period)s.", name=name, period=report.period),
        "success",
    )
    return redirect(url_for("roster.show_import", import_id=report.import_id))


@bp.route("/roster/imports/<int:import_id>")
@allow("admin")
def show_import(import_id: int) -> Any:
    """Show the stored report of a committed import."""
    record = get_session().get(RosterImport, import_id)
    if record is None:
        abort(404)
    detail = json.loads(record.report or "{}")
    return render_template("roster/import.html", record=record, detail=detail)


@bp.route("/periods")
@allow("admin")
def periods() -> Any:
    """List the payment periods with what is due, paid and cancelled in each."""
    return render_template(
        "roster/periods.html",
        rows=roster_service.list_periods(get_session()),
        form=ActionForm(),
    )


@bp.route("/periods/<code>/close", methods=["POST"])
@allow("admin")
def close_period(code: str) -> Any:
    """Close a period."""
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        roster_service.close_period(get_session(), code, actor_id=g.user.id, actor=g.user.username)
    except ServiceError as exc:
        flash(message_for(exc), "error")
    else:
        flash(_("Period %(code)s closed.", code=code), "success")
    return redirect(url_for("roster.periods"))
