"""Payment verification by sampling: draw a sample, call or visit, record each answer.

Auditors only (``Permission.SAMPLE``). Thin views over ``services.sampling``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, g, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from terminal.authz import allow
from terminal.db import get_session
from terminal.messages import message_for
from terminal.models import PaymentSample
from terminal.services import sampling
from terminal.services.audit import record_export
from terminal.services.errors import ServiceError

bp = Blueprint("samples", __name__, url_prefix="/samples")

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


class DrawForm(FlaskForm):
    """Draw a sample: a period, a point or a commune, a size or a percentage."""

    period = SelectField(_l("Payment period"), validate_choice=False)
    point = SelectField(_l("Payout point"), validate_choice=False)
    commune = SelectField(_l("or commune"), validate_choice=False)
    size = StringField(_l("Number of payouts"), validators=[Optional(), Length(max=9)])
    percent = StringField(_l("or percentage"), validators=[Optional(), Length(max=9)])
    seed = StringField(
        _l("Seed (to redraw a sample; leave empty)"),
        validators=[Optional(), Length(max=64)],
    )


class AnswerForm(FlaskForm):
    """What the person says: one of three buttons, an amount for 'another amount', a note."""

    answer = StringField(validators=[Optional(), Length(max=20)])
    reported = StringField(_l("Amount received"), validators=[Optional(), Length(max=40)])
    note = TextAreaField(_l("Note"), validators=[Optional(), Length(max=500)])


def _draw_form() -> DrawForm:
    """Return the draw form with the periods, points and communes to choose from."""
    form = DrawForm()
    options = sampling.choices(get_session())
    form.period.choices = options["periods"]
    form.point.choices = [("", "—")] + options["points"]
    form.commune.choices = [("", "—")] + options["communes"]
    return form


def _list_page(form: DrawForm, status: int = 200) -> Any:
    """Render the list of samples with the draw form."""
    samples = sampling.list_samples(get_session(), g.user)
    return (
        render_template(
            "samples/index.html", samples=samples, form=form, max_size=sampling.MAX_SIZE
        ),
        status,
    )


@bp.route("/")
@allow("sample")
def index() -> Any:
    """List the samples drawn, with their progress, and the form to draw a new one."""
    return _list_page(_draw_form())


@bp.route("/", methods=["POST"])
@allow("sample")
def draw() -> Any:
    """Draw a sample and open it."""
    form = _draw_form()
    if not form.validate_on_submit():
        flash(_("Check the form."), "error")
        return _list_page(form, 400)
    try:
        sample = sampling.draw_sample(
            get_session(),
            g.user,
            period=form.period.data or "",
            point_code=form.point.data or None,
            commune=form.commune.data or None,
            size=form.size.data or None,
            percent=form.percent.data or None,
            seed=form.seed.data or None,
        )
    except ServiceError as error:
        flash(message_for(error), "error")
        return _list_page(form, error.status)
    flash(_("Sample #%(id)s drawn.", id=sample.id), "success")
    return redirect(url_for("samples.show", sample_id=sample.id), code=303)


def _sample_page(sample: PaymentSample, form: AnswerForm, status: int = 200) -> Any:
    """Render a sample's payouts with an answer form for each unanswered one."""
    session = get_session()
    return (
        render_template(
            "samples/show.html",
            sample=sample,
            summary=sampling.summary_of(session, g.user, sample),
            rows=sampling.rows(session, g.user, sample),
            form=form,
        ),
        status,
    )


@bp.route("/<int:sample_id>")
@allow("sample")
def show(sample_id: int) -> Any:
    """Show a sample: who to reach, what they were paid, what they said."""
    sample = sampling.get_sample(get_session(), g.user, sample_id)
    return _sample_page(sample, AnswerForm(formdata=None))


@bp.route("/<int:sample_id>/items/<int:item_id>", methods=["POST"])
@allow("sample")
def answer(sample_id: int, item_id: int) -> Any:
    """Record one person's answer; anything but 'in full' opens a follow-up case."""
    session = get_session()
    sample = sampling.get_sample(session, g.user, sample_id)
    form = AnswerForm()
    if not form.validate_on_submit():
        flash(_("Check the form."), "error")
        return _sample_page(sample, form, 400)
    try:
        item = sampling.record_answer(
            session,
            g.user,
            item_id=item_id,
            sample_id=sample_id,
            answer=form.answer.data or None,
            reported_vnd=form.reported.data or None,
            note=form.note.data or None,
        )
    except ServiceError as error:
        flash(message_for(error), "error")
        sample = sampling.get_sample(session, g.user, sample_id)
        return _sample_page(sample, form, error.status)
    if item.failure_id:
        flash(_("Answer saved; follow-up case #%(id)s opened.", id=item.failure_id), "success")
    else:
        flash(_("Answer saved."), "success")
    return redirect(url_for("samples.show", sample_id=sample_id, _anchor=f"item-{item_id}"), 303)


@bp.route("/<int:sample_id>.csv", defaults={"fmt": "csv"})
@bp.route("/<int:sample_id>.xlsx", defaults={"fmt": "xlsx"})
@allow("sample")
def export(sample_id: int, fmt: str) -> Any:
    """Download the sample with its answers (the export is recorded in the audit trail)."""
    session = get_session()
    sample = sampling.get_sample(session, g.user, sample_id)
    body, count = sampling.export(session, g.user, sample, fmt)
    record_export(
        session,
        actor=g.user.username,
        kind="sample",
        fmt=fmt,
        filters={"sample_id": sample_id},
        rows=count,
    )
    response = Response(body, mimetype=XLSX if fmt == "xlsx" else "text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="sample-{sample_id}.{fmt}"'
    return response
