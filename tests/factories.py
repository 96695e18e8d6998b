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


def make_world(session: Any) -> World:
    """Build the standard test world."""
    a = make_point(
        session, "HTBD", district="Hương Thủy", communes=("Thủy Dương", "Thủy Vân", "Phú Bài")
    )
    b = make_point(
        session, "PLVT", district="Phú Lộc", communes=("Lăng Cô", "Vinh Mỹ"), kind="agent"
    )
    world = World(point_a=a, point_b=b)
    for role in ROLES:
        point = "HTBD" if role in POINT_ROLES else None
        world.users[role] = make_user(session, f"{role}1", role, point=point)
    for role in POINT_ROLES:
        world.users_b[role] = make_user(session, f"{role}b", role, point="PLVT")
    return world
