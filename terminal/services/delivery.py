"""Home delivery: tablets, routes that reserve entitlements, and the offline sync.

A supervisor registers a tablet (``Device``) for a delivery user of the point and
gives that user a route: people of a period whose due entitlements are then
reserved (``Entitlement.reserved_route_id``), so no counter pays them while the
tablet may. The tablet downloads the route with salted hashes of the ID numbers
(never the numbers), pays offline, and later sends each payout with a reference
it made (``client_ref``).

``sync_payout`` applies each synced payout exactly once: the item's reference is
claimed first in the write transaction (a unique index, so two syncs racing with
one item meet there and the second answers ``duplicate``), the entitlements are
locked, and the payout goes through ``payouts.write_payout``, the one payout
writer behind the unique index on live payout lines. An entitlement paid
elsewhere meanwhile is never paid twice: the item answers ``conflict`` and a
``possible_double_payment`` case opens for recovery. Every answer is kept with
its reference, so a tablet that lost an answer gets the same one again.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload

from terminal.clock import local_date, to_local
from terminal.db import begin_write, commit_or_unknown, write_transaction
from terminal.models import (
    Area,
    AuditAction,
    Beneficiary,
    Channel,
    CollectorType,
    DeliveryRoute,
    Device,
    Entitlement,
    EntitlementStatus,
    FailureReason,
    HomePayout,
    PaymentMethod,
    Payout,
    Period,
    PeriodStatus,
    Proxy,
    Role,
    RouteStop,
    SyncedItem,
    SyncStatus,
    User,
    Verification,
    VerificationMethod,
    Visit,
    VisitOutcome,
    utcnow,
)
from terminal.policy import commune_scope, require, sees_point
from terminal.security import digest, new_secret
from terminal.services.audit import record_event
from terminal.services.auth import normalize_username
from terminal.services.cash import hold_point
from terminal.services.errors import InvalidInput, NotFound, Refused
from terminal.services.failures import add_failure
from terminal.services.payouts import PayoutFacts, write_payout
from terminal.text import clean_text

log = logging.getLogger("terminal")

DEVICE_DAYS = 30
ROUTE_DAYS = 14
MAX_ROUTE_PEOPLE = 500
MAX_SYNC_ITEMS = 50
# "A person absent after repeated visits is told to collect at the post office."
ABSENT_VISITS_MAKING_A_CASE = 2
MAX_SIGNATURE_BYTES = 256 * 1024
# A tablet's clock may run a little fast; a payout stamped further ahead is refused.
CLOCK_SKEW = timedelta(minutes=10)
OLDEST_SYNC = timedelta(days=60)
CLIENT_REF_RE = re.compile(r"^[A-Za-z0-9._:-]{16,64}$")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class ReservedElsewhere(Refused):
    """A person of the route is already reserved on another delivery user's route."""

    code = "route_people_invalid"


# ---- devices ---------------------------------------------------------------------


@dataclass(frozen=True)
class IssuedDevice:
    """A registered tablet and its token (shown once, stored only as a hash)."""

    device: Device
    token: str


def _delivery_user(session: Session, supervisor: User, username: str) -> User:
    """Return a delivery user of the supervisor's point, or refuse."""
    name = normalize_username(username if isinstance(username, str) else "")
    user = session.scalar(select(User).where(User.username == name)) if name else None
    if user is None or user.payout_point_id != supervisor.payout_point_id:
        raise NotFound("no such user at this point", code="user_not_found")
    if user.role is not Role.DELIVERY:
        raise Refused("this user is not home-delivery staff", code="not_delivery_user")
    if not user.active:
        raise Refused("this user is disabled", code="user_disabled")
    return user


def register_device(
    session: Session, supervisor: User, *, name: str, username: str
) -> IssuedDevice:
    """Register a tablet for a delivery user of the supervisor's point; return its token."""
    require(supervisor, "supervise")
    label = clean_text(name if isinstance(name, str) else "")
    if not 1 <= len(label) <= 80:
        raise InvalidInput("name the tablet (1-80 characters)", code="device_name_invalid")
    user = _delivery_user(session, supervisor, username)
    token = new_secret()
    with write_transaction(session):
        device = Device(
            name=label,
            user_id=user.id,
            point_id=user.payout_point_id,
            token_hash=digest(token),
            created_by_id=supervisor.id,
            expires_at=utcnow() + timedelta(days=DEVICE_DAYS),
        )
        session.add(device)
        session.flush()
        record_event(
            session,
            actor=supervisor.username,
            action=AuditAction.DEVICE_REGISTERED,
            object_type="device",
            object_id=device.id,
            data={
                "name": label,
                "user": user.username,
                "expires_at": device.expires_at.isoformat(),
            },
        )
    log.info("device registered: id=%s user=%s", device.id, user.username)
    return IssuedDevice(device=device, token=token)


def _visible_device(session: Session, user: User, device_id: int) -> Device:
    """Return a device of the user's point, or NotFound (another point's looks missing)."""
    device = session.get(Device, device_id) if 1 <= device_id < 2**62 else None
    if device is None or not sees_point(user, device.point_id):
        raise NotFound("no such device", code="device_not_found")
    return device


def revoke_device(session: Session, user: User, device_id: int, *, own: bool = False) -> None:
    """Revoke a tablet's token at once (a lost tablet); revoking twice is harmless.

    ``own`` is a tablet signing itself out with its own token.
    """
    if not own:
        require(user, "supervise")
    with write_transaction(session):
        device = _visible_device(session, user, device_id)
        if device.revoked_at is not None:
            return
        device.revoked_at = utcnow()
        device.revoked_by_id = user.id
        record_event(
            session,
            actor=user.username,
            action=AuditAction.DEVICE_REVOKED,
            object_type="device",
            object_id=device.id,
            data={"name": device.name, "user": device.user.username, "own": own},
        )
    log.info("device revoked: id=%s", device_id)


def list_devices(session: Session, user: User) -> list[Device]:
    """Return the tablets of the user's point, newest first."""
    require(user, "supervise")
    return list(
        session.scalars(
            select(Device)
            .where(Device.point_id == user.payout_point_id)
            .order_by(Device.created_at.desc(), Device.id.desc())
        )
    )


def device_for_token(session: Session, token: str) -> Device | None:
    """Return the live device of a bearer token, or None.

    Revoked or expired tablets, and tablets whose user was disabled, moved to
    another point or given another role, are refused at once.
    """
    if not token or len(token) > 200:
        return None
    device = session.scalar(select(Device).where(Device.token_hash == digest(token)))
    if device is None or device.revoked_at is not None or device.expires_at <= utcnow():
        return None
    user = device.user
    if not user.active or user.role is not Role.DELIVERY or user.payout_point_id != device.point_id:
        return None
    return device


def device_state(device: Device) -> str:
    """Return a tablet's state: active, revoked or expired."""
    if device.revoked_at is not None:
        return "revoked"
    return "expired" if device.expires_at <= utcnow() else "active"


# ---- routes ----------------------------------------------------------------------


@dataclass(frozen=True)
class RouteAssigned:
    """A route given to a delivery user: how many people and entitlements it holds now."""

    route: DeliveryRoute
    people: int
    reserved: int


def _open_period(session: Session, code: str) -> Period:
    """Return an open period by its code, or refuse."""
    if not isinstance(code, str) or not re.fullmatch(r"\d{4}-\d{2}", code):
        raise InvalidInput("the period is written YYYY-MM", code="period_invalid")
    period = session.scalar(select(Period).where(Period.code == code))
    if period is None:
        raise NotFound("no such period", code="period_not_found")
    if period.status is not PeriodStatus.OPEN:
        raise Refused("this period is closed", code="period_closed")
    return period


def _codes(codes: Iterable[Any]) -> list[str]:
    """Return the beneficiary codes asked for, once each, or refuse a bad list."""
    if isinstance(codes, str) or not isinstance(codes, list | tuple):
        raise InvalidInput("beneficiary_codes is a list of codes", code="invalid_request")
    cleaned = []
    for code in codes:
        if not isinstance(code, str) or not 1 <= len(code.strip()) <= 32:
            raise InvalidInput("each beneficiary code is 1-32 characters", code="invalid_request")
        cleaned.append(code.strip())
    cleaned = list(dict.fromkeys(cleaned))
    if not cleaned:
        raise InvalidInput("choose at least one person", code="route_people_required")
    if len(cleaned) > MAX_ROUTE_PEOPLE:
        raise InvalidInput(f"at most {MAX_ROUTE_PEOPLE} people on a route", code="route_too_large")
    return cleaned


def _due_until(period: Period) -> Any:
    """Return the filter of entitlements a route pays: due, this period or earlier."""
    return (
        Entitlement.status == EntitlementStatus.DUE,
        Entitlement.period_id.in_(select(Period.id).where(Period.code <= period.code)),
    )


def assign_route(
    session: Session,
    supervisor: User,
    *,
    username: str,
    period: str,
    beneficiary_codes: Iterable[Any],
) -> RouteAssigned:
    """Give people of a period to a delivery user and reserve their due entitlements.

    All or nothing: a person who cannot go on the route (unknown here, paid by
    account, inactive, nothing due, on another delivery user's route) refuses the
    whole request with every problem listed. Giving the same user more people of
    the same period adds them to the route they already carry.
    """
    require(supervisor, "supervise")
    codes = _codes(beneficiary_codes)
    user = _delivery_user(session, supervisor, username)
    the_period = _open_period(session, period)
    communes = commune_scope(session, supervisor) or []
    begin_write(session)
    try:
        # One route per user and period: two supervisors assigning at once queue here.
        session.execute(select(User.id).where(User.id == user.id).with_for_update())
        people = {
            b.code: b
            for b in session.scalars(
                select(Beneficiary).where(
                    Beneficiary.code.in_(codes), Beneficiary.commune_id.in_(communes)
                )
            )
        }
        route = session.scalar(
            select(DeliveryRoute)
            .where(
                DeliveryRoute.user_id == user.id,
                DeliveryRoute.period_id == the_period.id,
                DeliveryRoute.expires_at > utcnow(),
            )
            .order_by(DeliveryRoute.id.desc())
            .limit(1)
        )
        ids = [p.id for p in people.values()]
        due = list(
            session.scalars(
                select(Entitlement)
                .where(Entitlement.beneficiary_id.in_(ids), *_due_until(the_period))
                .order_by(Entitlement.id)
                .with_for_update(of=Entitlement)
            )
        )
        by_person: dict[int, list[Entitlement]] = {}
        for entitlement in due:
            by_person.setdefault(entitlement.beneficiary_id, []).append(entitlement)
        problems = []
        for code in codes:
            person = people.get(code)
            problem = _route_problem(session, person, by_person, route)
            if problem is not None:
                problems.append({"code": code, "problem": problem})
        if problems:
            raise Refused(
                "some people cannot go on this route; nothing was changed",
                code="route_people_invalid",
                problems=problems,
            )
        if route is None:
            route = DeliveryRoute(
                point_id=user.payout_point_id,
                user_id=user.id,
                period_id=the_period.id,
                salt=secrets.token_hex(16),
                created_by_id=supervisor.id,
                expires_at=utcnow() + timedelta(days=ROUTE_DAYS),
            )
            session.add(route)
            session.flush()
        stops = {s.beneficiary_id: s for s in route.stops}
        reserved = []
        for code in codes:
            person = people[code]
            stop = stops.get(person.id)
            if stop is None:
                session.add(RouteStop(route_id=route.id, beneficiary_id=person.id))
            elif stop.released_at is not None:
                stop.released_at = None
                stop.released_by_id = None
            for entitlement in by_person[person.id]:
                if entitlement.reserved_route_id != route.id:
                    entitlement.reserved_route_id = route.id
                    reserved.append(entitlement.id)
        session.flush()
        record_event(
            session,
            actor=supervisor.username,
            action=AuditAction.ROUTE_ASSIGNED,
            object_type="route",
            object_id=route.id,
            data={
                "user": user.username,
                "period": the_period.code,
                "people": codes,
                "entitlement_ids": reserved,
            },
        )
        session.commit()
    except BaseException:
        session.rollback()
        raise
    session.refresh(route)
    people_now = sum(1 for s in route.stops if s.released_at is None)
    log.info("route assigned: id=%s people=%s reserved=%s", route.id, len(codes), len(reserved))
    return RouteAssigned(route=route, people=people_now, reserved=len(reserved))


def _route_problem(
    session: Session,
    person: Beneficiary | None,
    by_person: dict[int, list[Entitlement]],
    route: DeliveryRoute | None,
) -> str | None:
    """Return why a person cannot go on a route, or None."""
    if person is None:
        return "not_found"
    if person.payment_method is not PaymentMethod.CASH:
        return "paid_by_account"
    if person.status.value != "active":
        return "inactive"
    entitlements = by_person.get(person.id, [])
    if not entitlements:
        return "nothing_due"
    for entitlement in entitlements:
        if entitlement.held_by_withdrawal_id is not None:
            return "withdrawal_open"
        theirs = entitlement.reserved_route_id
        if theirs is not None and (route is None or theirs != route.id):
            other = session.get(DeliveryRoute, theirs)
            if other is not None and other.expires_at > utcnow():
                return "on_another_route"
    return None


def _visible_route(session: Session, user: User, route_id: int) -> DeliveryRoute:
    """Return a route of the user's point, or NotFound."""
    route = session.get(DeliveryRoute, route_id) if 1 <= route_id < 2**62 else None
    if route is None or not sees_point(user, route.point_id):
        raise NotFound("no such route", code="route_not_found")
    return route


def release_person(session: Session, supervisor: User, route_id: int, code: str) -> None:
    """Take a person off a route: their entitlements may be paid anywhere again."""
    require(supervisor, "supervise")
    begin_write(session)
    try:
        route = _visible_route(session, supervisor, route_id)
        stop = session.scalar(
            select(RouteStop)
            .join(Beneficiary, Beneficiary.id == RouteStop.beneficiary_id)
            .where(RouteStop.route_id == route.id, Beneficiary.code == code)
        )
        if stop is None:
            raise NotFound("this person is not on the route", code="route_person_not_found")
        if stop.released_at is None:
            _release(session, route, stop, actor=supervisor, reason="supervisor")
        session.commit()
    except BaseException:
        session.rollback()
        raise


def _release(
    session: Session, route: DeliveryRoute, stop: RouteStop, *, actor: User, reason: str
) -> list[int]:
    """Release a stop inside the caller's write transaction; return the freed entitlements."""
    freed = list(
        session.scalars(
            update(Entitlement)
            .where(
                Entitlement.beneficiary_id == stop.beneficiary_id,
                Entitlement.reserved_route_id == route.id,
            )
            .values(reserved_route_id=None, updated_at=utcnow())
            .returning(Entitlement.id)
        )
    )
    stop.released_at = utcnow()
    stop.released_by_id = actor.id
    record_event(
        session,
        actor=actor.username,
        action=AuditAction.ROUTE_RELEASED,
        object_type="route",
        object_id=route.id,
        data={"beneficiary": stop.beneficiary.code, "entitlement_ids": freed, "reason": reason},
    )
    return freed


def list_routes(session: Session, user: User) -> list[DeliveryRoute]:
    """Return the routes of the supervisor's point, newest first."""
    require(user, "supervise")
    return list(
        session.scalars(
            select(DeliveryRoute)
            .where(DeliveryRoute.point_id == user.payout_point_id)
            .order_by(DeliveryRoute.created_at.desc(), DeliveryRoute.id.desc())
            .limit(200)
        )
    )


def get_route(session: Session, user: User, route_id: int) -> DeliveryRoute:
    """Return a route the supervisor may see."""
    require(user, "supervise")
    return _visible_route(session, user, route_id)


def route_candidates(
    session: Session, supervisor: User, period: str, *, limit: int = 1000
) -> list[tuple[Beneficiary, list[Entitlement]]]:
    """Return the cash-paid people of the point's communes with something due up to a
    period and not on any route: who a supervisor may put on a route."""
    require(supervisor, "supervise")
    the_period = _open_period(session, period)
    communes = commune_scope(session, supervisor) or []
    rows = session.execute(
        select(Beneficiary, Entitlement)
        .join(Entitlement, Entitlement.beneficiary_id == Beneficiary.id)
        .where(
            Beneficiary.commune_id.in_(communes),
            Beneficiary.payment_method == PaymentMethod.CASH,
            Beneficiary.status == "active",
            or_(
                Entitlement.reserved_route_id.is_(None),
                Entitlement.reserved_route_id.in_(
                    select(DeliveryRoute.id).where(DeliveryRoute.expires_at <= utcnow())
                ),
            ),
            Entitlement.held_by_withdrawal_id.is_(None),
            *_due_until(the_period),
        )
        .order_by(Beneficiary.village, Beneficiary.name_key, Beneficiary.id, Entitlement.id)
        .limit(limit * 4)
    ).all()
    grouped: dict[int, tuple[Beneficiary, list[Entitlement]]] = {}
    for person, entitlement in rows:
        grouped.setdefault(person.id, (person, []))[1].append(entitlement)
    return list(grouped.values())[:limit]


def route_people(session: Session, route: DeliveryRoute) -> list[dict[str, Any]]:
    """Return each person of a route with what they are owed and what came of it."""
    out = []
    for stop in route.stops:
        person = stop.beneficiary
        entitlements = list(
            session.scalars(
                select(Entitlement)
                .where(
                    Entitlement.beneficiary_id == person.id,
                    Entitlement.period_id.in_(
                        select(Period.id).where(Period.code <= route.period.code)
                    ),
                    Entitlement.status != EntitlementStatus.CANCELLED,
                )
                .order_by(Entitlement.period_id)
            )
        )
        visits = list(
            session.scalars(
                select(Visit)
                .where(Visit.beneficiary_id == person.id, Visit.route_id == route.id)
                .order_by(Visit.at)
            )
        )
        out.append(
            {
                "stop": stop,
                "person": person,
                "entitlements": entitlements,
                "visits": visits,
                "due_vnd": sum(
                    e.amount_vnd
                    for e in entitlements
                    if e.status is EntitlementStatus.DUE and e.reserved_route_id == route.id
                ),
            }
        )
    return out


def id_hash(salt: str, id_number: str | None) -> str | None:
    """Return the hex SHA-256 of salt + ID number, as the tablet computes it."""
    if not id_number:
        return None
    return hashlib.sha256((salt + id_number).encode()).hexdigest()


def current_route(session: Session, device: Device) -> dict[str, Any]:
    """Return the device user's current route as the tablet stores it (API.md).

    Only people still on the route, their due entitlements reserved by it, and ID
    numbers as salted hashes: the full numbers never leave the server.
    """
    now = utcnow()
    route = session.scalar(
        select(DeliveryRoute)
        .where(DeliveryRoute.user_id == device.user_id, DeliveryRoute.expires_at > now)
        .order_by(DeliveryRoute.created_at.desc(), DeliveryRoute.id.desc())
        .limit(1)
    )
    if route is None:
        raise NotFound("no route is assigned to this tablet's user", code="no_route")
    today = local_date(now)
    stops = list(
        session.scalars(
            select(RouteStop)
            .where(RouteStop.route_id == route.id, RouteStop.released_at.is_(None))
            .options(selectinload(RouteStop.beneficiary).selectinload(Beneficiary.proxies))
            .order_by(RouteStop.id)
        )
    )
    ids = [s.beneficiary_id for s in stops]
    entitlements: dict[int, list[dict[str, Any]]] = {}
    for entitlement_id, person_id, code, amount in session.execute(
        select(Entitlement.id, Entitlement.beneficiary_id, Period.code, Entitlement.amount_vnd)
        .join(Period, Period.id == Entitlement.period_id)
        .where(
            Entitlement.beneficiary_id.in_(ids),
            Entitlement.reserved_route_id == route.id,
            Entitlement.status == EntitlementStatus.DUE,
        )
        .order_by(Period.code)
    ):
        entitlements.setdefault(person_id, []).append(
            {"id": entitlement_id, "period": code, "amount": amount}
        )
    communes = dict(
        session.execute(
            select(Area.id, Area.name).where(Area.id.in_({s.beneficiary.commune_id for s in stops}))
        ).all()
    )
    people = []
    for stop in stops:
        person = stop.beneficiary
        people.append(
            {
                "code": person.code,
                "full_name": person.full_name,
                "village": person.village,
                "commune": communes.get(person.commune_id, ""),
                "address": person.address,
                "year_of_birth": person.birth_year,
                "entitlements": entitlements.get(person.id, []),
                "id_hash": id_hash(route.salt, person.id_number),
                "proxies": [
                    {
                        "id": proxy.id,
                        "full_name": proxy.full_name,
                        "relationship": proxy.relationship_label,
                        "id_hash": id_hash(route.salt, proxy.id_number),
                        "valid_from": proxy.valid_from.isoformat(),
                        "valid_until": proxy.valid_until.isoformat() if proxy.valid_until else None,
                    }
                    for proxy in person.proxies
                    if proxy.revoked_at is None
                    and (proxy.valid_until is None or proxy.valid_until >= today)
                ],
            }
        )
    return {
        "route_id": route.id,
        "period": route.period.code,
        "salt": route.salt,
        "expires_at": to_local(route.expires_at).isoformat(),
        "user": {"username": device.user.username, "full_name": device.user.full_name},
        "point": {"code": device.point.code, "name": device.point.name},
        "people": people,
    }


# ---- sync ------------------------------------------------------------------------


class ItemRejected(Exception):
    """A synced item the server refuses for good: its code, and who went unpaid."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        reason: FailureReason = FailureReason.DATA_ERROR,
        person_id: int | None = None,
        entitlement_id: int | None = None,
        fields: list[dict[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason
        self.person_id = person_id
        self.entitlement_id = entitlement_id
        self.fields = fields


@dataclass(frozen=True)
class SyncContext:
    """Who is syncing, read once per request (a write's BEGIN expires loaded objects)."""

    device_id: int
    user_id: int
    username: str
    point_id: int
    point_code: str
    receipt_format: Any
    communes: tuple[int, ...]


def sync_context(session: Session, device: Device) -> SyncContext:
    """Return the facts of a syncing device that every item needs."""
    user = device.user
    return SyncContext(
        device_id=device.id,
        user_id=user.id,
        username=user.username,
        point_id=device.point_id,
        point_code=device.point.code,
        receipt_format=device.point.receipt_format,
        communes=tuple(commune_scope(session, user) or ()),
    )


def touch_device(session: Session, device_id: int) -> None:
    """Note when a tablet last synced."""
    with write_transaction(session):
        session.execute(update(Device).where(Device.id == device_id).values(last_seen_at=utcnow()))


def _ref_of(item: Any) -> str | None:
    """Return an item's client_ref if it is a usable one."""
    ref = item.get("client_ref") if isinstance(item, dict) else None
    return ref if isinstance(ref, str) and CLIENT_REF_RE.fullmatch(ref) else None


def _known(session: Session, item: Any) -> tuple[str, dict[str, Any] | None]:
    """Return an item's client_ref, and the answer it gets at once if it has one.

    A client_ref that cannot be stored is rejected; one already answered gets its
    first answer again as ``duplicate``.
    """
    ref = _ref_of(item)
    if ref is None:
        given = item.get("client_ref") if isinstance(item, dict) else None
        return "", _answer(
            given if isinstance(given, str) and len(given) <= 64 else None,
            SyncStatus.REJECTED,
            error="client_ref_invalid",
            message="client_ref must be 16-64 letters, digits or . _ : -",
        )
    return ref, _replay(session, ref)


def _answer(ref: Any, status: SyncStatus, **fields: Any) -> dict[str, Any]:
    """Return one item's answer, leaving out empty fields."""
    return {
        "client_ref": ref,
        "status": status.value,
        **{k: v for k, v in fields.items() if v is not None},
    }


def _replay(session: Session, ref: str) -> dict[str, Any] | None:
    """Return the first answer given to a client_ref as a ``duplicate``, if it has one."""
    row = session.scalar(select(SyncedItem).where(SyncedItem.client_ref == ref))
    if row is None:
        return None
    first = json.loads(row.result)
    return {**first, "status": SyncStatus.DUPLICATE.value, "first_status": first.get("status")}


def _when(value: Any, field: str) -> datetime:
    """Return an item's ISO 8601 time with its offset, in UTC, or reject it."""
    if not isinstance(value, str) or len(value) > 40:
        raise ItemRejected(f"{field}_invalid", f"{field} must be an ISO 8601 time with offset")
    try:
        moment = datetime.fromisoformat(value)
        if moment.tzinfo is None:
            raise ItemRejected(f"{field}_invalid", f"{field} needs its UTC offset")
        moment = moment.astimezone(UTC)
    except (ValueError, OverflowError):  # year 1 or 9999 with an offset overflows
        raise ItemRejected(
            f"{field}_invalid", f"{field} must be an ISO 8601 time with offset"
        ) from None
    now = utcnow()
    if moment > now + CLOCK_SKEW:
        raise ItemRejected(
            f"{field}_invalid", f"{field} is in the future; check the tablet's clock"
        )
    if moment < now - OLDEST_SYNC:
        raise ItemRejected(f"{field}_invalid", f"{field} is more than 60 days old")
    return moment


def _position(item: dict[str, Any]) -> tuple[float | None, float | None]:
    """Return the optional position of an item, or reject a bad one."""
    lat, lon = item.get("lat"), item.get("lon")
    if lat is None and lon is None:
        return None, None
    for value, limit in ((lat, 90), (lon, 180)):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or abs(value) > limit
        ):
            raise ItemRejected("position_invalid", "lat and lon are degrees, given together")
    return float(lat), float(lon)


def _signature(value: Any) -> bytes | None:
    """Return the signature PNG's bytes, or reject what is not a PNG."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_SIGNATURE_BYTES * 4 // 3 + 64:
        raise ItemRejected("signature_invalid", "the signature is not a PNG image of up to 256 KB")
    text = value.split(",", 1)[1] if value.startswith("data:image/png;base64,") else value
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ItemRejected("signature_invalid", "the signature is not base64") from None
    if not data.startswith(PNG_MAGIC) or len(data) > MAX_SIGNATURE_BYTES:
        raise ItemRejected("signature_invalid", "the signature is not a PNG image of up to 256 KB")
    return data


def _person(session: Session, ctx: SyncContext, code: Any) -> Beneficiary:
    """Return the beneficiary of an item within the device's communes, or reject it."""
    if not isinstance(code, str) or not 1 <= len(code) <= 32:
        raise ItemRejected("beneficiary_not_found", "no such beneficiary")
    person = session.scalar(select(Beneficiary).where(Beneficiary.code == code))
    if person is None or person.commune_id not in ctx.communes:
        raise ItemRejected("beneficiary_not_found", "no such beneficiary")
    return person


def _route_of(session: Session, ctx: SyncContext, person_id: int) -> DeliveryRoute | None:
    """Return the device user's latest route that holds a person."""
    return session.scalar(
        select(DeliveryRoute)
        .join(RouteStop, RouteStop.route_id == DeliveryRoute.id)
        .where(DeliveryRoute.user_id == ctx.user_id, RouteStop.beneficiary_id == person_id)
        .order_by(DeliveryRoute.id.desc())
        .limit(1)
    )


def sync(
    session: Session,
    device: Device,
    *,
    payouts: list[Any],
    visits: list[Any],
    verify_url: Callable[[Payout], str],
    on_applied: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Apply a tablet's queued payouts and visits, each exactly once; answer each.

    Each item is its own transaction, so one refused item never holds back the
    rest. ``on_applied`` gets each new payout's id after its commit (the receipt
    PDF is drawn then).
    """
    if not isinstance(payouts, list) or not isinstance(visits, list):
        raise InvalidInput("payouts and visits are lists", code="invalid_request")
    if len(payouts) > MAX_SYNC_ITEMS or len(visits) > MAX_SYNC_ITEMS:
        raise InvalidInput(
            f"send at most {MAX_SYNC_ITEMS} payouts and {MAX_SYNC_ITEMS} visits at once",
            code="sync_too_large",
        )
    ctx = sync_context(session, device)
    results = []
    for item in payouts:
        answer = sync_payout(session, ctx, item, verify_url=verify_url)
        results.append(answer)
        if answer["status"] in ("applied", "conflict") and answer.get("payout_id") and on_applied:
            on_applied(answer["payout_id"])
    visit_results = [sync_visit(session, ctx, item) for item in visits]
    touch_device(session, ctx.device_id)
    return {"results": results, "visits": visit_results}


def _claimed(session: Session, ctx: SyncContext, ref: str, kind: str) -> SyncedItem | None:
    """Claim a client_ref for this transaction, or return None if another holds it.

    The unique index decides: a second sync of the same item waits here for the
    first to commit (PostgreSQL) or runs after it (SQLite's write lock), then finds it.
    """
    row = SyncedItem(
        client_ref=ref,
        kind=kind,
        device_id=ctx.device_id,
        user_id=ctx.user_id,
        status=SyncStatus.REJECTED,
        result="{}",
    )
    session.add(row)
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        return None
    return row


def sync_payout(
    session: Session,
    ctx: SyncContext,
    item: Any,
    *,
    verify_url: Callable[[Payout], str],
) -> dict[str, Any]:
    """Apply one synced payout exactly once and return its answer."""
    ref, early = _known(session, item)
    if early is not None:
        return early
    for _attempt in range(3):
        begin_write(session)
        try:
            claim = _claimed(session, ctx, ref, "payout")
            if claim is None:
                session.rollback()
                return _replay(session, ref) or _answer(ref, SyncStatus.REJECTED, error="retry")
            try:
                answer = _apply_payout(session, ctx, ref, item, verify_url)
            except ItemRejected as rejected:
                answer = _reject(session, ctx, ref, rejected, channel=Channel.CASH_HOME)
            claim.status = SyncStatus(answer["status"])
            claim.payout_id = answer.get("payout_id")
            claim.failure_id = answer.get("failure_id")
            claim.result = json.dumps(answer, ensure_ascii=False, sort_keys=True)
            commit_or_unknown(session)  # a lost answer: outcome unknown (S07)
        except IntegrityError as exc:
            session.rollback()
            if "payout_lines" not in str(exc.orig) and "uq_payout_lines" not in str(exc.orig):
                raise
            continue  # another payout won an entitlement after all: look again
        except BaseException:
            session.rollback()
            raise
        log.info("sync item %s: %s", answer["status"], answer.get("payout_id"))
        return answer
    return _answer(ref, SyncStatus.REJECTED, error="retry", message="try again")


def _reject(
    session: Session,
    ctx: SyncContext,
    ref: str,
    rejected: ItemRejected,
    *,
    channel: Channel | None,
) -> dict[str, Any]:
    """Open the case of a refused item (someone may have been paid) and answer it."""
    failure = add_failure(
        session,
        user=session.get(User, ctx.user_id),
        reason=rejected.reason,
        detail_code="delivery.sync_rejected",
        params={"client_ref": ref, "error": rejected.code},
        beneficiary_id=rejected.person_id,
        entitlement_id=rejected.entitlement_id,
        channel=channel,
        escalated=True,
        point_id=ctx.point_id,
    )
    return _answer(
        ref,
        SyncStatus.REJECTED,
        error=rejected.code,
        message=rejected.message,
        failure_id=failure.id,
        fields=rejected.fields,
    )


def _proxy_for(
    session: Session, person: Beneficiary, item: dict[str, Any], paid_at: datetime
) -> Proxy | None:
    """Return the collecting proxy, checked for the moment of payment, or reject.

    A proxy revoked after the tablet paid them was authorised when it counted.
    """
    collector = item.get("collector")
    if collector == "beneficiary":
        if item.get("proxy_id") is not None:
            raise ItemRejected("proxy_invalid", "a beneficiary collecting names no proxy")
        return None
    if collector != "proxy":
        raise ItemRejected("collector_invalid", "collector is beneficiary or proxy")
    proxy_id = item.get("proxy_id")
    proxy = (
        session.get(Proxy, proxy_id)
        if isinstance(proxy_id, int) and not isinstance(proxy_id, bool) and 1 <= proxy_id < 2**62
        else None
    )
    revoked = proxy is not None and proxy.revoked_at is not None and proxy.revoked_at <= paid_at
    if proxy is None or proxy.beneficiary_id != person.id or revoked:
        raise ItemRejected(
            "proxy_not_authorized",
            "this proxy may not collect for this beneficiary",
            reason=FailureReason.PROXY_NOT_AUTHORIZED,
            person_id=person.id,
        )
    day = local_date(paid_at)
    if day < proxy.valid_from or (proxy.valid_until is not None and day > proxy.valid_until):
        raise ItemRejected(
            "proxy_expired",
            "the proxy's authorisation was not valid on the day of payment",
            reason=FailureReason.PROXY_EXPIRED,
            person_id=person.id,
        )
    return proxy


def _entitlement_ids(item: dict[str, Any]) -> tuple[int, ...]:
    """Return an item's entitlement ids, once each, or reject a bad list."""
    raw = item.get("entitlement_ids")
    if not isinstance(raw, list) or not 1 <= len(raw) <= 60:
        raise ItemRejected("entitlements_invalid", "entitlement_ids lists 1 to 60 ids")
    if any(isinstance(i, bool) or not isinstance(i, int) or not 1 <= i < 2**62 for i in raw):
        raise ItemRejected("entitlements_invalid", "entitlement ids are positive integers")
    return tuple(dict.fromkeys(raw))


def _apply_payout(
    session: Session,
    ctx: SyncContext,
    ref: str,
    item: Any,
    verify_url: Callable[[Payout], str],
) -> dict[str, Any]:
    """Apply a claimed payout inside the write transaction; return its answer."""
    if not isinstance(item, dict):
        raise ItemRejected("invalid_item", "each payout is a JSON object")
    unknown = set(item) - {
        "client_ref",
        "beneficiary_code",
        "entitlement_ids",
        "collector",
        "proxy_id",
        "verified_by",
        "paid_at",
        "signature_png",
        "lat",
        "lon",
    }
    if unknown:
        raise ItemRejected("invalid_item", "unknown fields: " + ", ".join(sorted(unknown))[:200])
    person = _person(session, ctx, item.get("beneficiary_code"))
    ids: tuple[int, ...] = ()
    try:
        ids = _entitlement_ids(item)
        paid_at = _when(item.get("paid_at"), "paid_at")
        method = item.get("verified_by")
        if method not in ("id_number", "id_qr"):
            raise ItemRejected("verified_by_invalid", "verified_by is id_number or id_qr")
        proxy = _proxy_for(session, person, item, paid_at)
        signature = _signature(item.get("signature_png"))
        lat, lon = _position(item)
        # Only the people a supervisor gave this user (released since or not): a device
        # token pays nobody else, whatever it sends.
        route = _route_of(session, ctx, person.id)
        if route is None:
            raise ItemRejected("not_on_route", "this person is not on this tablet's route")
    except ItemRejected as rejected:
        # The case names what the tablet says it paid, so no payout settles it unseen.
        rejected.person_id = person.id
        rejected.entitlement_id = rejected.entitlement_id or (ids[0] if ids else None)
        raise
    rows = {
        e.id: e
        for e in session.scalars(
            select(Entitlement)
            .where(Entitlement.id.in_(ids))
            .with_for_update(of=Entitlement)
            .execution_options(populate_existing=True)
        )
    }
    payable: dict[int, int] = {}
    paid_elsewhere: list[int] = []
    for entitlement_id in ids:
        entitlement = rows.get(entitlement_id)
        if entitlement is None or entitlement.beneficiary_id != person.id:
            raise ItemRejected(
                "entitlement_not_found",
                "no such entitlement for this beneficiary",
                person_id=person.id,
            )
        if entitlement.status is EntitlementStatus.CANCELLED:
            raise ItemRejected(
                "entitlement_not_due",
                "this entitlement was cancelled",
                person_id=person.id,
                entitlement_id=entitlement_id,
            )
        if entitlement.period.code > route.period.code:
            raise ItemRejected(
                "entitlement_not_on_route",
                "this entitlement is of a later period than the route",
                person_id=person.id,
                entitlement_id=entitlement_id,
            )
        if entitlement.status is EntitlementStatus.PAID or entitlement.held_by_withdrawal_id:
            paid_elsewhere.append(entitlement_id)
        else:
            payable[entitlement_id] = entitlement.amount_vnd
    payout_id = receipt_no = verify = None
    if payable:
        payout_id, receipt_no, verify = _write_home_payout(
            session, ctx, ref, person, proxy, method, payable, paid_at, route,
            signature, lat, lon, verify_url,
        )  # fmt: skip
    if not paid_elsewhere:
        return _answer(
            ref,
            SyncStatus.APPLIED,
            payout_id=payout_id,
            receipt_no=receipt_no,
            receipt_verify_url=verify,
            amount=sum(payable.values()),
        )
    failure = _conflict_case(session, ctx, ref, person, paid_elsewhere, rows, payout_id, paid_at)
    return _answer(
        ref,
        SyncStatus.CONFLICT,
        payout_id=payout_id,
        receipt_no=receipt_no,
        receipt_verify_url=verify,
        amount=sum(payable.values()) if payable else None,
        failure_id=failure,
        error="possible_double_payment",
        message="paid elsewhere meanwhile: a follow-up case is open to recover the money",
        entitlement_ids=paid_elsewhere,
    )


def _write_home_payout(
    session: Session,
    ctx: SyncContext,
    ref: str,
    person: Beneficiary,
    proxy: Proxy | None,
    method: str,
    amounts: dict[int, int],
    paid_at: datetime,
    route: DeliveryRoute | None,
    signature: bytes | None,
    lat: float | None,
    lon: float | None,
    verify_url: Callable[[Payout], str],
) -> tuple[int, str, str]:
    """Write the payout of a synced item: its verification, payout, details and visit."""
    collector = CollectorType.PROXY if proxy else CollectorType.BENEFICIARY
    verified = VerificationMethod(method)
    verification = Verification(
        beneficiary_id=person.id,
        collector_type=collector,
        proxy_id=proxy.id if proxy else None,
        method=verified,
        user_id=ctx.user_id,
        point_id=ctx.point_id,
        created_at=paid_at,
        expires_at=paid_at,
    )
    session.add(verification)
    session.flush()
    # The verification is told in the payout's own event: taking the audit chain's
    # head before the receipt counter would invert the counter payment's lock order.
    hold_point(session, ctx.point_id)  # a day's closing counts it or it comes after
    signature_sha = hashlib.sha256(signature).hexdigest() if signature else None
    payout, body = write_payout(
        session,
        PayoutFacts(
            point_id=ctx.point_id,
            point_code=ctx.point_code,
            receipt_format=ctx.receipt_format,
            user_id=ctx.user_id,
            username=ctx.username,
            verification_id=verification.id,
            person_id=person.id,
            beneficiary_code=person.code,
            full_name=person.full_name,
            collector_type=collector,
            proxy_id=proxy.id if proxy else None,
            proxy_name=proxy.full_name if proxy else None,
            channel=Channel.CASH_HOME,
            provider_ref=None,
            amounts=amounts,
            audit_extra={
                "client_ref": ref,
                "device_id": ctx.device_id,
                "route_id": route.id if route else None,
                "verified_by": verified.value,
                "verification_id": verification.id,
                "offline": True,
                "signature_sha256": signature_sha,
            },
        ),
        paid_at,
        verify_url,
    )
    session.execute(update(Payout).where(Payout.id == payout.id).values(client_ref=ref))
    session.add(
        HomePayout(
            payout_id=payout.id,
            device_id=ctx.device_id,
            route_id=route.id if route else None,
            verified_by=verified,
            signature_png=signature,
            signature_sha256=signature_sha,
            lat=lat,
            lon=lon,
        )
    )
    session.add(
        Visit(
            client_ref=ref,
            route_id=route.id if route else None,
            beneficiary_id=person.id,
            period_id=route.period_id if route else None,
            user_id=ctx.user_id,
            device_id=ctx.device_id,
            outcome=VisitOutcome.PAID,
            at=paid_at,
            lat=lat,
            lon=lon,
            payout_id=payout.id,
        )
    )
    session.flush()
    return payout.id, body["receipt_no"], body["receipt_verify_url"]


def _conflict_case(
    session: Session,
    ctx: SyncContext,
    ref: str,
    person: Beneficiary,
    paid_elsewhere: list[int],
    rows: dict[int, Entitlement],
    payout_id: int | None,
    paid_at: datetime,
) -> int:
    """Open the ``possible_double_payment`` case of a synced payout; return its id."""
    amount = sum(rows[i].amount_vnd for i in paid_elsewhere)
    failure = add_failure(
        session,
        user=session.get(User, ctx.user_id),
        reason=FailureReason.POSSIBLE_DOUBLE_PAYMENT,
        detail_code="delivery.possible_double_payment",
        params={
            "client_ref": ref,
            "amount": amount,
            "entitlement_ids": ", ".join(str(i) for i in paid_elsewhere),
            "paid_at": to_local(paid_at).strftime("%d/%m/%Y %H:%M"),
        },
        beneficiary_id=person.id,
        entitlement_id=paid_elsewhere[0],
        channel=Channel.CASH_HOME,
        escalated=True,
        point_id=ctx.point_id,
    )
    record_event(
        session,
        actor=ctx.username,
        action=AuditAction.SYNC_CONFLICT,
        object_type="failure",
        object_id=failure.id,
        data={
            "client_ref": ref,
            "beneficiary": person.code,
            "entitlement_ids": paid_elsewhere,
            "amount_vnd": amount,
            "payout_id": payout_id,
            "device_id": ctx.device_id,
        },
    )
    log.warning("possible double payment: case=%s", failure.id)
    return failure.id


def sync_visit(session: Session, ctx: SyncContext, item: Any) -> dict[str, Any]:
    """Record one synced visit exactly once and return its answer."""
    ref, early = _known(session, item)
    if early is not None:
        return early
    begin_write(session)
    try:
        claim = _claimed(session, ctx, ref, "visit")
        if claim is None:
            session.rollback()
            return _replay(session, ref) or _answer(ref, SyncStatus.REJECTED, error="retry")
        try:
            answer = _apply_visit(session, ctx, ref, item)
        except ItemRejected as rejected:
            answer = _answer(
                ref, SyncStatus.REJECTED, error=rejected.code, message=rejected.message
            )
        claim.status = SyncStatus(answer["status"])
        claim.failure_id = answer.get("failure_id")
        claim.result = json.dumps(answer, ensure_ascii=False, sort_keys=True)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return answer


_VISIT_CASES = {
    VisitOutcome.REFUSED: (FailureReason.OTHER, "delivery.refused"),
    VisitOutcome.DECEASED: (FailureReason.RECIPIENT_DECEASED, "delivery.deceased"),
}


def _apply_visit(session: Session, ctx: SyncContext, ref: str, item: Any) -> dict[str, Any]:
    """Record a claimed visit inside the write transaction; open its case if it needs one."""
    if not isinstance(item, dict):
        raise ItemRejected("invalid_item", "each visit is a JSON object")
    unknown = set(item) - {"client_ref", "beneficiary_code", "outcome", "at", "note", "lat", "lon"}
    if unknown:
        raise ItemRejected("invalid_item", "unknown fields: " + ", ".join(sorted(unknown))[:200])
    person = _person(session, ctx, item.get("beneficiary_code"))
    try:
        outcome = VisitOutcome(item.get("outcome"))
    except ValueError:
        outcome = None
    if outcome is None or outcome is VisitOutcome.PAID:
        raise ItemRejected("outcome_invalid", "outcome is absent, refused or deceased")
    at = _when(item.get("at"), "at")
    # Lock order everywhere: entitlements before the audit chain's head. A second absence
    # releases the person's reserved entitlements after its events, so take them first.
    session.execute(
        select(Entitlement.id)
        .where(Entitlement.beneficiary_id == person.id, Entitlement.status == EntitlementStatus.DUE)
        .order_by(Entitlement.id)
        .with_for_update()
    )
    note = item.get("note")
    if note is not None and not isinstance(note, str):
        raise ItemRejected("note_invalid", "the note is text")
    note = clean_text(note or "")[:500]
    lat, lon = _position(item)
    route = _route_of(session, ctx, person.id)
    visit = Visit(
        client_ref=ref,
        route_id=route.id if route else None,
        beneficiary_id=person.id,
        period_id=route.period_id if route else None,
        user_id=ctx.user_id,
        device_id=ctx.device_id,
        outcome=outcome,
        at=at,
        note=note,
        lat=lat,
        lon=lon,
    )
    session.add(visit)
    session.flush()
    record_event(
        session,
        actor=ctx.username,
        action=AuditAction.VISIT_RECORDED,
        object_type="visit",
        object_id=visit.id,
        data={
            "beneficiary": person.code,
            "outcome": outcome.value,
            "route_id": visit.route_id,
            "device_id": ctx.device_id,
        },
    )
    user = session.get(User, ctx.user_id)
    case = None
    failure_id = None
    if outcome is VisitOutcome.ABSENT:
        absences = session.scalar(
            select(func.count(Visit.id)).where(
                Visit.beneficiary_id == person.id,
                Visit.outcome == VisitOutcome.ABSENT,
                Visit.period_id == visit.period_id
                if visit.period_id is not None
                else Visit.period_id.is_(None),
            )
        )
        # Paid at home after this visit (a queue synced late, payouts first): no case.
        paid_since = session.scalar(
            select(func.count(Visit.id)).where(
                Visit.beneficiary_id == person.id,
                Visit.outcome == VisitOutcome.PAID,
                Visit.at >= at,
            )
        )
        if absences == ABSENT_VISITS_MAKING_A_CASE and not paid_since:
            # No entitlement named: the person's next payout anywhere settles the case.
            failure = add_failure(
                session,
                user=user,
                reason=FailureReason.RECIPIENT_ABSENT,
                detail_code="delivery.absent_visits",
                params={"visits": absences},
                beneficiary_id=person.id,
                channel=Channel.CASH_HOME,
                escalated=True,
                point_id=ctx.point_id,
            )
            failure_id = failure.id
            case = "collect_at_post_office"
            stop = (
                session.scalar(
                    select(RouteStop).where(
                        RouteStop.route_id == route.id,
                        RouteStop.beneficiary_id == person.id,
                        RouteStop.released_at.is_(None),
                    )
                )
                if route
                else None
            )
            if stop is not None:
                _release(session, route, stop, actor=user, reason="absent")
    elif outcome in _VISIT_CASES:
        reason, code = _VISIT_CASES[outcome]
        failure = add_failure(
            session,
            user=user,
            reason=reason,
            detail_code=code,
            params={"note": note[:200]} if note else None,
            beneficiary_id=person.id,
            channel=Channel.CASH_HOME,
            escalated=True,
            point_id=ctx.point_id,
        )
        failure_id = failure.id
    visit.failure_id = failure_id
    return _answer(ref, SyncStatus.APPLIED, visit_id=visit.id, failure_id=failure_id, case=case)


def visits_of(session: Session, person_id: int, *, limit: int = 20) -> list[Visit]:
    """Return a person's latest home visits (the counter shows them)."""
    return list(
        session.scalars(
            select(Visit)
            .where(Visit.beneficiary_id == person_id)
            .order_by(Visit.at.desc(), Visit.id.desc())
            .limit(limit)
        )
    )


def reservation_of(session: Session, person_id: int) -> DeliveryRoute | None:
    """Return the route that reserves any of a person's due entitlements, if one does."""
    return session.scalar(
        select(DeliveryRoute)
        .join(Entitlement, Entitlement.reserved_route_id == DeliveryRoute.id)
        .where(
            Entitlement.beneficiary_id == person_id,
            Entitlement.status == EntitlementStatus.DUE,
            DeliveryRoute.expires_at > utcnow(),
        )
        .limit(1)
    )


# ---- reads for the supervisors' pages (terminal/views/delivery.py) ---------------


def delivery_users(session: Session, supervisor: User) -> list[User]:
    """Return the active delivery users of the supervisor's point, by name."""
    require(supervisor, "supervise")
    return list(
        session.scalars(
            select(User)
            .where(
                User.payout_point_id == supervisor.payout_point_id,
                User.role == Role.DELIVERY,
                User.active.is_(True),
            )
            .order_by(User.full_name, User.username)
        )
    )


def route_counts(session: Session, routes: Iterable[DeliveryRoute]) -> dict[int, dict[str, int]]:
    """Return per route the people still on it and how many were paid or found absent."""
    routes = list(routes)
    counts = {
        r.id: {
            "people": sum(1 for s in r.stops if s.released_at is None),
            "released": sum(1 for s in r.stops if s.released_at is not None),
            "paid": 0,
            "absent": 0,
        }
        for r in routes
    }
    if counts:
        rows = session.execute(
            select(Visit.route_id, Visit.outcome, func.count(func.distinct(Visit.beneficiary_id)))
            .where(
                Visit.route_id.in_(list(counts)),
                Visit.outcome.in_([VisitOutcome.PAID, VisitOutcome.ABSENT]),
            )
            .group_by(Visit.route_id, Visit.outcome)
        )
        for route_id, outcome, people in rows:
            counts[route_id][VisitOutcome(outcome).value] = people
    return counts


def receipt_numbers(session: Session, payout_ids: Iterable[int]) -> dict[int, str]:
    """Return the receipt number of each payout (a route page links the home payouts)."""
    from terminal.models import Receipt

    ids = sorted({i for i in payout_ids if i is not None})
    if not ids:
        return {}
    return dict(
        session.execute(
            select(Receipt.payout_id, Receipt.receipt_no).where(Receipt.payout_id.in_(ids))
        ).all()
    )


def held_for_delivery(session: Session, person_id: int) -> set[int]:
    """Return a person's due entitlements that a live route reserves (not the counter's)."""
    return set(
        session.scalars(
            select(Entitlement.id)
            .join(DeliveryRoute, DeliveryRoute.id == Entitlement.reserved_route_id)
            .where(
                Entitlement.beneficiary_id == person_id,
                Entitlement.status == EntitlementStatus.DUE,
                DeliveryRoute.expires_at > utcnow(),
            )
        )
    )
