"""Administration: users and payout points."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from wtforms.fields.choices import SelectChoice

from terminal.authz import allow
from terminal.db import get_session
from terminal.forms import FORMAT_LABELS, KIND_LABELS, ROLE_LABELS, PointForm, UserForm
from terminal.messages import message_for
from terminal.models import Role, User
from terminal.services import auth as auth_service
from terminal.services import places
from terminal.services.errors import ServiceError

bp = Blueprint("admin", __name__, url_prefix="/admin")


def _point_choices() -> list[SelectChoice]:
    """Return the payout points as form choices, with 'none' first."""
    choices = [SelectChoice("", _("— none (auditor, administrator) —"))]
    choices += [
        SelectChoice(p.code, f"{p.code} — {p.name}") for p in places.list_points(get_session())
    ]
    return choices


@bp.route("/users")
@allow("admin")
def users() -> Any:
    """List every user."""
    from sqlalchemy import select

    rows = get_session().scalars(select(User).order_by(User.username)).all()
    return render_template("admin/users.html", users=rows, role_labels=ROLE_LABELS)


@bp.route("/users/new", methods=["GET", "POST"])
@allow("admin")
def new_user() -> Any:
    """Create a user."""
    form = UserForm()
    form.point.choices = _point_choices()
    if form.validate_on_submit():
        try:
            user = auth_service.create_user(
                get_session(),
                username=form.username.data or "",
                full_name=form.full_name.data,
                role=form.role.data or "",
                point_code=form.point.data or None,
                password=form.password.data or "",
                actor=g.user.username,
            )
        except ServiceError as exc:
            flash(message_for(exc), "error")
        else:
            flash(_("User %(name)s created.", name=user.username), "success")
            return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=None)


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@allow("admin")
def edit_user(user_id: int) -> Any:
    """Change a user's name, role, point, password or access."""
    user = get_session().get(User, user_id)
    if user is None:
        abort(404)
    form = UserForm(obj=None if request.method == "POST" else user)
    del form.username  # a username never changes
    form.point.choices = _point_choices()
    if request.method == "GET":
        form.role.data = user.role.value
        form.point.data = user.payout_point.code if user.payout_point else ""
        form.active.data = user.active
    if form.validate_on_submit():
        if user.id == g.user.id and (not form.active.data or form.role.data != Role.ADMIN.value):
            flash(
                _("You cannot disable your own account or remove your own administrator role."),
                "error",
            )
        else:
            try:
                auth_service.update_user(
                    get_session(),
                    user.id,
                    actor=g.user.username,
                    full_name=form.full_name.data,
                    role=form.role.data,
                    point_code=form.point.data or "",
                    active=bool(form.active.data),
                    password=form.password.data or None,
                )
            except ServiceError as exc:
                flash(message_for(exc), "error")
            else:
                flash(_("User %(name)s saved.", name=user.username), "success")
                return redirect(url_for("admin.users"))
    return render_template("admin/user_form.html", form=form, user=user)


@bp.route("/points")
@allow("admin")
def points() -> Any:
    """List every payout point."""
    return render_template(
        "admin/points.html",
        points=places.list_points(get_session()),
        kind_labels=KIND_LABELS,
        format_labels=FORMAT_LABELS,
    )


def _commune_names(text: str) -> list[str]:
    """Split the communes field on new lines and semicolons."""
    return [part for part in re.split(r"[;\n\r]+", text or "") if part.strip()]


@bp.route("/points/new", methods=["GET", "POST"])
@allow("admin")
def new_point() -> Any:
    """Create a payout point."""
    return _save_point(None)


@bp.route("/points/<code>", methods=["GET", "POST"])
@allow("admin")
def edit_point(code: str) -> Any:
    """Edit a payout point."""
    try:
        point = places.get_point(get_session(), code)
    except ServiceError:
        abort(404)
    return _save_point(point)


def _save_point(point: Any) -> Any:
    """Show and handle the point form for a new or existing point."""
    form = PointForm()
    if request.method == "GET" and point is not None:
        form.code.data = point.code
        form.name.data = point.name
        form.kind.data = point.kind.value
        form.district.data = point.district.name
        form.communes.data = "\n".join(c.name for c in point.communes)
        form.receipt_format.data = point.receipt_format.value
        form.active.data = point.active
    if form.validate_on_submit():
        try:
            saved, _created = places.save_point(
                get_session(),
                code=point.code if point is not None else (form.code.data or ""),
                name=form.name.data or "",
                kind=form.kind.data or "",
                district=form.district.data or "",
                communes=_commune_names(form.communes.data or ""),
                receipt_format=form.receipt_format.data,
                active=bool(form.active.data),
                create_only=point is None,
                actor=g.user.username,
            )
        except ServiceError as exc:
            flash(message_for(exc), "error")
        else:
            flash(_("Payout point %(code)s saved.", code=saved.code), "success")
            return redirect(url_for("admin.points"))
    return render_template("admin/point_form.html", form=form, point=point)
