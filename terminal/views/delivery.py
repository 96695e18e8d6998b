"""Home delivery for supervisors: routes of people to pay at home, and the tablets.

A supervisor gives a delivery user of the point a route (people of an open period,
chosen village by village), follows what came of each visit, returns a person to
the counter, and registers or revokes the tablets. Thin views over
``services.delivery``; the tablet itself talks to the API (``/tablet/``).
"""

from __future__ import annotations

import base64
import io
import secrets
from dataclasses import dataclass, field
from typing import Any

import qrcode
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from qrcode.constants import ERROR_CORRECT_M
from qrcode.image.svg import SvgPathImage
from wtforms import HiddenField, SelectField, StringField
from wtforms.validators import DataRequired, Length, Optional

from terminal.authz import allow
from terminal.clock import utcnow
from terminal.db import get_session
from terminal.forms import ActionForm
from terminal.messages import MESSAGES, message_for
from terminal.models import Beneficiary, Entitlement, Period, User, VisitOutcome
from terminal.services import counter, delivery
from terminal.services.daybook import open_periods
from terminal.services.errors import ServiceError
from terminal.text import fold

bp = Blueprint("delivery", __name__, url_prefix="/delivery")

# The registration forms already answered in this browser session: a reload of the
# pairing page sends its form again, and must neither register a second tablet nor
# show a token twice.
USED_DEVICE_FORMS = "delivery_device_forms"
# A posted route form carries at most this many people (the service allows fewer).
MAX_POSTED_PEOPLE = 2 * delivery.MAX_ROUTE_PEOPLE


class RouteForm(FlaskForm):
    """Give people of a period to a delivery user: who delivers, who is ticked, a filter."""

    period = HiddenField(validators=[DataRequired(), Length(max=7)])
    username = SelectField(
        _l("Home-delivery staff"), validate_choice=False, render_kw={"data-testid": "route-user"}
    )
    q = StringField(_l("Find by name or code"), validators=[Optional(), Length(max=100)])


class DeviceForm(FlaskForm):
    """Register a tablet for a delivery user; the one-time key makes a reload harmless."""

    name = StringField(
        _l("Name of the tablet"),
        validators=[DataRequired(), Length(max=80)],
        description=_l("As written on its label, e.g. Tablet 2 – Thủy Dương."),
        render_kw={"data-testid": "device-name", "maxlength": 80},
    )
    username = SelectField(
        _l("Home-delivery staff"), validate_choice=False, render_kw={"data-testid": "device-user"}
    )
    form_key = HiddenField(validators=[DataRequired(), Length(max=64)])


# ---- the point's routes and tablets ----------------------------------------------


@bp.route("/")
@allow("supervise")
def index() -> Any:
    """List the point's routes and tablets."""
    session = get_session()
    routes = delivery.list_routes(session, g.user)
    return render_template(
        "delivery/index.html",
        routes=routes,
        counts=delivery.route_counts(session, routes),
        devices=delivery.list_devices(session, g.user),
        device_state=delivery.device_state,
        now=utcnow(),
    )


# ---- a new route -------------------------------------------------------------------


@dataclass
class Candidate:
    """A person who may go on a route, with what they are owed up to the period."""

    person: Beneficiary
    entitlements: list[Entitlement]

    @property
    def total_vnd(self) -> int:
        """Return what the person is owed, earlier months included."""
        return sum(e.amount_vnd for e in self.entitlements)


@dataclass
class Village:
    """The candidates of one village of one commune that the filter shows."""

    key: str
    name: str
    commune: str
    shown: list[Candidate] = field(default_factory=list)


def _villages(candidates: list[tuple[Beneficiary, list[Entitlement]]], query: str) -> list[Village]:
    """Group the candidates by commune and village, keeping those the filter matches."""
    villages: dict[str, Village] = {}
    wanted = fold(query)
    for person, entitlements in candidates:
        # Many communes have a "Thôn 2": a village is known by its commune too.
        key = f"{person.commune_id}:{person.village or ''}"
        village = villages.get(key)
        if village is None:
            village = villages[key] = Village(
                key=key, name=person.village or "", commune=person.commune.name
            )
        if not wanted or wanted in person.name_key or wanted.upper() in person.code:
            village.shown.append(Candidate(person, entitlements))
    return sorted(villages.values(), key=lambda v: (fold(v.commune), fold(v.name)))


def _posted_codes() -> list[str]:
    """Return the beneficiary codes ticked in the posted form, once each, in order."""
    codes = [c.strip() for c in request.form.getlist("people")[:MAX_POSTED_PEOPLE]]
    return list(dict.fromkeys(c for c in codes if 1 <= len(c) <= 32))


def _chosen_period(asked: str | None, periods: list[Period]) -> str:
    """Return the period asked for if it is open, else the latest open one."""
    codes = [p.code for p in periods]
    if asked in codes:
        return str(asked)
    return codes[0] if codes else ""


def _problem_text(problem: str) -> str:
    """Return why a person cannot go on a route, in the page's language."""
    message = MESSAGES.get(f"route_people_invalid.{problem}")
    return str(message) if message is not None else problem


def _route_form(users: list[User]) -> RouteForm:
    """Return the route form with the point's delivery users to choose from."""
    form = RouteForm()
    form.username.choices = [(u.username, f"{u.full_name} ({u.username})") for u in users]
    return form


def _new_route_page(
    form: RouteForm,
    periods: list[Period],
    selected: set[str],
    *,
    toggle: str | None = None,
    problems: dict[str, str] | None = None,
    status: int = 200,
) -> Any:
    """Render the people of the chosen period by village, the ticked ones ticked."""
    session = get_session()
    candidates: list[tuple[Beneficiary, list[Entitlement]]] = []
    if form.period.data:
        try:
            candidates = delivery.route_candidates(session, g.user, form.period.data)
        except ServiceError as error:
            flash(message_for(error), "error")
            status = max(status, error.status)
    problems = problems or {}
    known = {person.code for person, _due in candidates}
    # Only people who may still go on a route stay ticked: one taken meanwhile, or a
    # code that was never offered, is dropped (and listed with its problem above).
    selected = {c for c in selected if c in known and c not in problems}
    villages = _villages(candidates, form.q.data or "")
    for village in villages:
        if village.key == toggle:
            shown = {c.person.code for c in village.shown}
            selected = selected - shown if shown <= selected else selected | shown
    shown_codes = {c.person.code for v in villages for c in v.shown}
    names = {person.code: person.full_name for person, _due in candidates}
    for code in list(problems)[:50]:
        if code not in names:
            try:
                names[code] = counter.get_beneficiary(session, g.user, code).full_name
            except ServiceError:
                names[code] = ""
    return (
        render_template(
            "delivery/new_route.html",
            form=form,
            periods=periods,
            villages=[v for v in villages if v.shown],
            candidates=len(candidates),
            selected=selected,
            hidden_selected=sorted(selected - shown_codes),
            problems=[
                {"code": code, "name": names.get(code, ""), "text": _problem_text(problem)}
                for code, problem in problems.items()
            ],
            problem_of={code: _problem_text(problem) for code, problem in problems.items()},
            max_people=delivery.MAX_ROUTE_PEOPLE,
        ),
        status,
    )


@bp.route("/routes/new", methods=["GET", "POST"])
@allow("supervise")
def new_route() -> Any:
    """Choose a delivery user, a period and the people, village by village; give the route.

    The page works without JavaScript: "select the whole village" and the filter
    are submit buttons that show the page again with the ticks kept; only "Create
    the route" changes anything.
    """
    session = get_session()
    periods = open_periods(session)
    users = delivery.delivery_users(session, g.user)
    form = _route_form(users)
    if request.method == "GET":
        form.period.data = _chosen_period(request.args.get("period"), periods)
        asked_user = request.args.get("user")
        form.username.data = asked_user or (users[0].username if users else "")
        form.q.data = (request.args.get("q") or "")[:100]
        return _new_route_page(form, periods, set())
    if not form.validate_on_submit():
        flash(_("Check the form."), "error")
        return _new_route_page(form, periods, set(_posted_codes()), status=400)
    codes = _posted_codes()
    if request.form.get("action") != "create":
        # A village's button or the filter: show the page again, nothing changes.
        return _new_route_page(form, periods, set(codes), toggle=request.form.get("village"))
    try:
        assigned = delivery.assign_route(
            session,
            g.user,
            username=form.username.data or "",
            period=form.period.data or "",
            beneficiary_codes=codes,
        )
    except ServiceError as error:
        flash(message_for(error), "error")
        problems = {
            str(p.get("code")): str(p.get("problem"))
            for p in error.fields.get("problems", [])
            if isinstance(p, dict)
        }
        return _new_route_page(form, periods, set(codes), problems=problems, status=error.status)
    flash(
        _(
            "Route #%(id)s of %(name)s: %(people)s people on it, %(reserved)s periods reserved "
            "for home delivery.",
            id=assigned.route.id,
            name=assigned.route.user.full_name,
            people=assigned.people,
            reserved=assigned.reserved,
        ),
        "success",
    )
    return redirect(url_for("delivery.route", route_id=assigned.route.id), code=303)


# ---- one route -----------------------------------------------------------------------


def _status_of(row: dict[str, Any], receipts: dict[int, str]) -> dict[str, Any]:
    """Return what became of a person of a route: badges, receipts, whether to release."""
    visits = row["visits"]
    outcomes = [v.outcome for v in visits]
    paid = [
        {"payout_id": v.payout_id, "receipt_no": receipts.get(v.payout_id, f"#{v.payout_id}")}
        for v in visits
        if v.outcome is VisitOutcome.PAID and v.payout_id
    ]
    absent = outcomes.count(VisitOutcome.ABSENT)
    return {
        **row,
        "paid": paid,
        "absent": absent,
        "refused": outcomes.count(VisitOutcome.REFUSED),
        "deceased": VisitOutcome.DECEASED in outcomes,
        "released": row["stop"].released_at is not None,
        "waiting": not visits and row["stop"].released_at is None,
    }


@bp.route("/routes/<int:route_id>")
@allow("supervise")
def route(route_id: int) -> Any:
    """Show a route: each person, what is still due, the visits, and the release button."""
    session = get_session()
    the_route = delivery.get_route(session, g.user, route_id)
    rows = delivery.route_people(session, the_route)
    receipts = delivery.receipt_numbers(
        session, [v.payout_id for row in rows for v in row["visits"] if v.payout_id]
    )
    people = [_status_of(row, receipts) for row in rows]
    return render_template(
        "delivery/route.html",
        route=the_route,
        people=people,
        on_route=sum(1 for p in people if not p["released"]),
        paid=sum(1 for p in people if p["paid"]),
        due_vnd=sum(p["due_vnd"] for p in people),
        expired=the_route.expires_at <= utcnow(),
        form=ActionForm(),
    )


@bp.route("/routes/<int:route_id>/people/<code>/release", methods=["POST"])
@allow("supervise")
def release(route_id: int, code: str) -> Any:
    """Return a person to the counter: their periods may be paid anywhere again."""
    if not ActionForm().validate_on_submit():
        abort(400)
    session = get_session()
    the_route = delivery.get_route(session, g.user, route_id)
    code = code[:32]
    name = next(
        (s.beneficiary.full_name for s in the_route.stops if s.beneficiary.code == code), ""
    )
    try:
        delivery.release_person(session, g.user, route_id, code)
    except ServiceError as error:
        flash(message_for(error), "error")
        return redirect(url_for("delivery.route", route_id=route_id), code=303)
    message = _(
        "%(name)s (%(code)s) is returned to the counter: the counter may pay them now.",
        name=name,
        code=code,
    )
    flash(message, "success")
    return redirect(url_for("delivery.route", route_id=route_id), code=303)


# ---- tablets -------------------------------------------------------------------------


def _device_form(users: list[User]) -> DeviceForm:
    """Return the registration form with the point's delivery users and a fresh key."""
    form = DeviceForm()
    form.username.choices = [(u.username, f"{u.full_name} ({u.username})") for u in users]
    if request.method == "GET":
        form.form_key.data = secrets.token_urlsafe(18)
    return form


def _devices_page(form: DeviceForm, status: int = 200) -> Any:
    """Render the point's tablets with the registration form."""
    if request.method == "POST":
        form.form_key.data = secrets.token_urlsafe(18)  # a refused form is a new one
    return (
        render_template(
            "delivery/devices.html",
            devices=delivery.list_devices(get_session(), g.user),
            device_state=delivery.device_state,
            form=form,
            days=delivery.DEVICE_DAYS,
        ),
        status,
    )


@bp.route("/devices")
@allow("supervise")
def devices() -> Any:
    """List the point's tablets, with the form to register one."""
    users = delivery.delivery_users(get_session(), g.user)
    return _devices_page(_device_form(users))


def qr_image(text: str, *, about_px: int = 320) -> tuple[str, int]:
    """Return a QR code of the text as an SVG data: URI, and its size on screen.

    A data: URI because the CSP allows data: images and nothing inline; the size
    gives every module whole pixels, so no module edge is blurred for the camera.
    """
    qr = qrcode.QRCode(border=4, error_correction=ERROR_CORRECT_M, image_factory=SvgPathImage)
    qr.add_data(text)
    qr.make(fit=True)
    buffer = io.BytesIO()
    qr.make_image().save(buffer)
    modules = qr.modules_count + 2 * qr.border
    size = modules * max(3, about_px // modules)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii"), size


@bp.route("/devices", methods=["POST"])
@allow("supervise")
def register_device() -> Any:
    """Register a tablet and show its pairing code once (the server keeps only a hash)."""
    session = get_session()
    form = _device_form(delivery.delivery_users(session, g.user))
    if not form.validate_on_submit():
        flash(_("Check the form."), "error")
        return _devices_page(form, 400)
    used = [k for k in cookie.get(USED_DEVICE_FORMS, []) if isinstance(k, str)]
    if form.form_key.data in used:
        flash(
            _(
                "This tablet is already registered; its pairing code was shown only once. "
                "If it was not scanned, revoke the tablet and register it again."
            ),
            "warning",
        )
        return redirect(url_for("delivery.devices"), code=303)
    try:
        issued = delivery.register_device(
            session, g.user, name=form.name.data or "", username=form.username.data or ""
        )
    except ServiceError as error:
        flash(message_for(error), "error")
        return _devices_page(form, error.status)
    cookie[USED_DEVICE_FORMS] = [*used, form.form_key.data][-20:]
    link = f"{current_app.config['PUBLIC_URL'].rstrip('/')}/tablet/#pair={issued.token}"
    qr, qr_size = qr_image(link)
    response = make_response(
        render_template(
            "delivery/paired.html",
            device=issued.device,
            link=link,
            token=issued.token,
            qr=qr,
            qr_size=qr_size,
        )
    )
    # The token is in this page alone: neither a cache nor the back button may keep it.
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/devices/<int:device_id>/revoke", methods=["POST"])
@allow("supervise")
def revoke_device(device_id: int) -> Any:
    """Revoke a tablet (lost, broken, handed back): its token stops working at once."""
    if not ActionForm().validate_on_submit():
        abort(400)
    session = get_session()
    delivery.revoke_device(session, g.user, device_id)
    name = next((d.name for d in delivery.list_devices(session, g.user) if d.id == device_id), "")
    flash(_("Tablet “%(name)s” is revoked: its token no longer works.", name=name), "success")
    return redirect(url_for("delivery.devices"), code=303)
