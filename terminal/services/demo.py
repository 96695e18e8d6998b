"""Demo data for a new terminal: the two pilot areas of 2021, their points and users."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from terminal.db import refresh_statistics
from terminal.models import PointKind, ReceiptFormat, Role, User
from terminal.services import auth as auth_service
from terminal.services import places
from terminal.synthetic import PILOT_DISTRICTS

# The pilot's communes, as the synthetic roster knows them.
HUONG_THUY, PHU_LOC = (district.communes for district in PILOT_DISTRICTS)

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
    # The home-delivery team's head: registers its tablets and gives out routes.
    DemoLogin("delivery-lead", "delivery-lead-demo-2021", "supervisor", "PLTN", "Đặng Văn Lực"),
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
            # The README's demo logins (<username>-demo-2021) hold the username: allowed
            # here only, where the whole database is demo data.
            demo_account=True,
        )
    return list(DEMO_LOGINS)


DEMO_FLOAT_VND = 500_000_000


def seed(session: Session, *, scale: float = 1.0) -> list[DemoLogin]:
    """Fill an empty database with the demo data; return the logins to print.

    The pilot's points and users, its synthetic roster with an open period for this
    month, and today's cash advance at every demo point.
    """
    from terminal.clock import today_local
    from terminal.services.roster import period_code
    from terminal.synthetic import demo_roster

    logins = seed_points_and_users(session)
    demo_roster(session, period=period_code(today_local()), scale=scale)
    keep_home_delivery_on_cash(session)
    ensure_demo_floats(session)
    refresh_statistics(session)
    return logins


HOME_DELIVERY_DEMO_PEOPLE = 40


def keep_home_delivery_on_cash(session: Session) -> int:
    """Put some of Phú Lộc's oldest people without a phone on cash (demo only).

    The pilot paid Phú Lộc wholly through accounts, but DESIGN.md's people aged 80
    and over with no phone stay on cash and are paid at home: the demo's delivery
    team (PLTN) needs them to have a route to give. Returns how many were moved.
    """
    from terminal.db import write_transaction
    from terminal.models import Area, AuditAction, Beneficiary, Category, PaymentMethod, Provider
    from terminal.services.audit import record_event

    with write_transaction(session):
        ids = list(
            session.scalars(
                select(Beneficiary.id)
                .join(Area, Area.id == Beneficiary.commune_id)
                .where(
                    Area.name.in_(PHU_LOC),
                    Beneficiary.category == Category.ELDERLY_80,
                    Beneficiary.payment_method == PaymentMethod.ACCOUNT,
                )
                .order_by(Beneficiary.phone.is_not(None), Beneficiary.birth_year, Beneficiary.id)
                .limit(HOME_DELIVERY_DEMO_PEOPLE)
            )
        )
        if not ids:
            return 0
        session.execute(
            update(Beneficiary)
            .where(Beneficiary.id.in_(ids))
            .values(payment_method=PaymentMethod.CASH, provider=Provider.POST, account_no=None)
        )
        record_event(
            session,
            actor="seed-demo",
            action=AuditAction.DATA_GENERATED,
            object_type="beneficiary",
            object_id=0,
            data={"home_delivery_cash": len(ids)},
        )
    return len(ids)


def ensure_demo_floats(session: Session) -> int:
    """Give every demo point today's cash advance if it has none (demo only)."""
    from terminal.clock import today_local
    from terminal.db import write_transaction
    from terminal.models import CashFloat, PayoutPoint
    from terminal.services.cash import write_cash_float

    today = today_local()
    supervisor = session.scalar(select(User).where(User.username == "supervisor"))
    if supervisor is None:
        return 0
    added = 0
    with write_transaction(session):
        for code, *_rest in POINTS:
            point = session.scalar(select(PayoutPoint).where(PayoutPoint.code == code))
            if point is None:
                continue
            exists = session.scalar(
                select(CashFloat.id).where(
                    CashFloat.point_id == point.id, CashFloat.business_date == today
                )
            )
            if exists is not None:
                continue
            write_cash_float(
                session,
                None,
                point_id=point.id,
                day=today,
                advance_vnd=DEMO_FLOAT_VND,
                recorded_by=supervisor,
                actor="seed-demo",
            )
            added += 1
    return added
