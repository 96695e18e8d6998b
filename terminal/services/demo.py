"""Demo data for a new terminal: the two pilot areas of 2021, their points and users."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.models import PointKind, ReceiptFormat, Role, User
from terminal.services import auth as auth_service
from terminal.services import places

HUONG_THUY = (
    "Phú Bài",
    "Thủy Dương",
    "Thủy Phương",
    "Thủy Châu",
    "Thủy Lương",
    "Thủy Vân",
    "Thủy Thanh",
    "Thủy Bằng",
    "Thủy Tân",
    "Thủy Phù",
    "Phú Sơn",
    "Dương Hòa",
)
PHU_LOC = (
    "Phú Lộc",
    "Lăng Cô",
    "Vinh Mỹ",
    "Vinh Hưng",
    "Vinh Hiền",
    "Giang Hải",
    "Lộc Bình",
    "Lộc Vĩnh",
    "Lộc Tiến",
    "Lộc Thủy",
    "Lộc Trì",
    "Lộc Điền",
    "Lộc An",
    "Lộc Hòa",
    "Lộc Sơn",
    "Lộc Bổn",
    "Xuân Lộc",
)

POINTS = (
    (
        "HTBD",
        "Bưu điện thị xã Hương Thủy",
        PointKind.POST_OFFICE,
        "Hương Thủy",
        HUONG_THUY,
        ReceiptFormat.ROLL_80MM,
    ),
    (
        "PLVT",
        "Điểm chi trả Viettel Pay Phú Lộc",
        PointKind.AGENT,
        "Phú Lộc",
        PHU_LOC,
        ReceiptFormat.ROLL_80MM,
    ),
    (
        "PLTN",
        "Tổ chi trả tại nhà Phú Lộc",
        PointKind.DELIVERY,
        "Phú Lộc",
        PHU_LOC,
        ReceiptFormat.A5,
    ),
)


@dataclass(frozen=True)
class DemoLogin:
    """A demo account to print for a new user of the terminal."""

    username: str
    password: str
    role: str
    point: str | None
    full_name: str


DEMO_LOGINS = (
    DemoLogin("clerk", "clerk-demo-2021", "clerk", "HTBD", "Nguyễn Thị Mai"),
    DemoLogin("agent", "agent-demo-2021", "agent", "PLVT", "Trần Văn Nam"),
    DemoLogin("delivery", "delivery-demo-2021", "delivery", "PLTN", "Lê Thị Thu"),
    DemoLogin("supervisor", "supervisor-demo-2021", "supervisor", "HTBD", "Phạm Văn Hùng"),
    DemoLogin("auditor", "auditor-demo-2021", "auditor", None, "Hoàng Thị Lan"),
    DemoLogin("admin", "admin-demo-2021", "admin", None, "Võ Minh Tuấn"),
)


def is_empty(session: Session) -> bool:
    """Tell whether the database has no users yet."""
    return auth_service.count_users(session) == 0


def has_demo_users(session: Session) -> bool:
    """Tell whether the demo accounts are present."""
    names = [d.username for d in DEMO_LOGINS]
    found = session.scalars(select(User.username).where(User.username.in_(names))).all()
    return len(found) == len(names)


def seed_points_and_users(session: Session) -> list[DemoLogin]:
    """Create the pilot's payout points and one user per role."""
    for code, name, kind, district, communes, fmt in POINTS:
        places.save_point(
            session,
            code=code,
            name=name,
            kind=kind,
            district=district,
            communes=communes,
            receipt_format=fmt,
            actor="seed-demo",
        )
    for login in DEMO_LOGINS:
        auth_service.create_user(
            session,
            username=login.username,
            role=Role(login.role),
            password=login.password,
            full_name=login.full_name,
            point_code=login.point,
            actor="seed-demo",
        )
    return list(DEMO_LOGINS)


def seed(session: Session) -> list[DemoLogin]:
    """Fill an empty database with the demo data; return the logins to print."""
    return seed_points_and_users(session)
