"""Builders of test data: plain functions over the service layer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from terminal.models import Role, User
from terminal.services import auth as auth_service
from terminal.services import places

PASSWORD = "correct-horse-42"

ROLES = ("clerk", "agent", "delivery", "supervisor", "auditor", "admin")
POINT_ROLES = ("clerk", "agent", "delivery", "supervisor")


def make_point(
    session: Any,
    code: str = "HTBD",
    *,
    district: str = "Hương Thủy",
    communes: tuple[str, ...] = ("Thủy Dương", "Thủy Vân", "Phú Bài"),
    kind: str = "post_office",
    name: str | None = None,
    receipt_format: str = "80mm",
) -> Any:
    """Create a payout point."""
    point, _ = places.save_point(
        session,
        code=code,
        name=name or f"Bưu điện {district} {code}",
        kind=kind,
        district=district,
        communes=communes,
        receipt_format=receipt_format,
        actor="test",
    )
    return point


def make_user(
    session: Any,
    username: str,
    role: str | Role,
    *,
    point: str | None = None,
    password: str = PASSWORD,
    full_name: str | None = None,
) -> User:
    """Create a user."""
    return auth_service.create_user(
        session,
        username=username,
        role=role,
        password=password,
        full_name=full_name or f"Người dùng {username.rstrip('0123456789')}",
        point_code=point,
        actor="test",
    )


@dataclass
class World:
    """Two points in two districts and one user per role (staff at point A)."""

    point_a: Any
    point_b: Any
    users: dict[str, User] = field(default_factory=dict)
    users_b: dict[str, User] = field(default_factory=dict)


# The world's two points: code, district, communes (in this order: communes[0] is used).
WORLD_POINTS = (
    ("HTBD", "Hương Thủy", ("Thủy Dương", "Thủy Vân", "Phú Bài"), "post_office"),
    ("PLVT", "Phú Lộc", ("Lăng Cô", "Vinh Mỹ"), "agent"),
)


def make_world(session: Any) -> World:
    """Build the standard test world."""
    a, b = (
        make_point(session, code, district=district, communes=communes, kind=kind)
        for code, district, communes, kind in WORLD_POINTS
    )
    world = World(point_a=a, point_b=b)
    for role in ROLES:
        point = "HTBD" if role in POINT_ROLES else None
        world.users[role] = make_user(session, f"{role}1", role, point=point)
    for role in POINT_ROLES:
        world.users_b[role] = make_user(session, f"{role}b", role, point="PLVT")
    return world


def load_world(session: Any) -> World | None:
    """Return the standard world from the database (tests get it copied in), or None."""
    from sqlalchemy import select
    from sqlalchemy.orm.attributes import set_committed_value

    from terminal.models import PayoutPoint

    codes = [code for code, *_ in WORLD_POINTS]
    points = {
        p.code: p for p in session.scalars(select(PayoutPoint).where(PayoutPoint.code.in_(codes)))
    }
    names = [f"{role}1" for role in ROLES] + [f"{role}b" for role in POINT_ROLES]
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(names)))}
    # End the read transaction, as make_world's last commit did; nothing is expired.
    session.commit()
    if len(points) < len(codes) or len(users) < len(names):
        return None
    for code, _, communes, _ in WORLD_POINTS:
        # The database orders them by name; make_world gave them in this order.
        order = {name: n for n, name in enumerate(communes)}
        listed = sorted(points[code].communes, key=lambda c: order.get(c.name, len(order)))
        set_committed_value(points[code], "communes", listed)
    return World(
        point_a=points["HTBD"],
        point_b=points["PLVT"],
        users={role: users[f"{role}1"] for role in ROLES},
        users_b={role: users[f"{role}b"] for role in POINT_ROLES},
    )


def make_beneficiary(
    session: Any,
    code: str = "TTH0000001",
    *,
    commune: Any = None,
    full_name: str = "Lê Thị Hương",
    born: Any = None,
    birth_year: int | None = None,
    gender: str = "female",
    category: str = "elderly_80",
    id_number: str | None = "046153060816",
    phone: str | None = "0928816302",
    method: str = "cash",
    provider: str = "post",
    monthly: int = 540_000,
    status: str = "active",
    proxy: dict[str, Any] | None = None,
    periods: tuple[tuple[str, int], ...] = (("2021-10", 0),),
    account_no: str | None = None,
) -> Any:
    """Create a beneficiary with (optionally) a proxy and due entitlements per period."""
    from datetime import date

    from sqlalchemy import select

    from terminal.db import write_transaction
    from terminal.models import Beneficiary, Entitlement, Period, Proxy
    from terminal.text import name_keys

    born = born if born is not None else (date(1953, 10, 12) if birth_year is None else None)
    name_key, given_key = name_keys(full_name)
    with write_transaction(session):
        person = Beneficiary(
            code=code,
            full_name=full_name,
            name_key=name_key,
            given_key=given_key,
            date_of_birth=born,
            birth_year=birth_year or born.year,
            gender=gender,
            category=category,
            id_number=id_number,
            phone=phone,
            commune_id=commune.id,
            village="Thôn 2",
            payment_method=method,
            provider=provider,
            account_no=account_no or ("0465623510" if method == "account" else None),
            monthly_vnd=monthly,
            status=status,
        )
        session.add(person)
        session.flush()
        if proxy is not None:
            session.add(
                Proxy(
                    beneficiary_id=person.id,
                    full_name=proxy.get("full_name", "Ngô Thị Dũng"),
                    id_number=proxy.get("id_number", "046195867017"),
                    relationship_label=proxy.get("relationship", "Con dâu"),
                    is_guardian=proxy.get("is_guardian", False),
                    valid_from=proxy.get("valid_from", date(2021, 1, 1)),
                    valid_until=proxy.get("valid_until", date(2030, 12, 31)),
                )
            )
        for period_code, arrears in periods:
            period = session.scalar(select(Period).where(Period.code == period_code))
            if period is None:
                period = Period(code=period_code)
                session.add(period)
                session.flush()
            session.add(
                Entitlement(
                    beneficiary_id=person.id,
                    period_id=period.id,
                    monthly_vnd=monthly,
                    arrears_vnd=arrears,
                    amount_vnd=monthly + arrears,
                )
            )
    session.refresh(person)
    return person


def set_float(session: Any, point_code: str, amount: int = 100_000_000) -> None:
    """Record today's cash float of a point (as its supervisor would)."""
    from sqlalchemy import select

    from terminal.models import PayoutPoint, User
    from terminal.services.cash import set_cash_float

    point = session.scalar(select(PayoutPoint).where(PayoutPoint.code == point_code))
    supervisor = session.scalar(
        select(User).where(User.role == "supervisor", User.payout_point_id == point.id)
    )
    set_cash_float(session, supervisor, advance_vnd=amount)
