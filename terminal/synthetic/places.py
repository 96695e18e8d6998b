"""Where synthetic people live and how they are paid: the pilot's districts, and the areas,
payout points and staff that a generation needs, set up through their own services.
"""

from __future__ import annotations

import math
import secrets
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.db import write_transaction
from terminal.models import (
    Area,
    AreaLevel,
    PayoutPoint,
    PointKind,
    Provider,
    Role,
    User,
    point_communes,
)
from terminal.services import auth as auth_service
from terminal.services import places as place_service
from terminal.services.errors import InvalidInput
from terminal.synthetic.names import nfc
from terminal.text import fold

__all__ = ["PILOT_DISTRICTS", "PaymentMix", "PilotDistrict"]

PEOPLE_PER_COMMUNE = 2_000  # the pilot's communes hold 1,000-3,000 beneficiaries each
COMMUNES_PER_DISTRICT = 15

# ---- the pilot's districts and how they pay ----------------------------------------------


@dataclass(frozen=True)
class PaymentMix:
    """How one district pays: the share paid into accounts, and through which providers."""

    account_share: float  # 0.0-1.0 of the district's beneficiaries
    account_provider: Provider
    cash_provider: Provider = Provider.POST

    def __post_init__(self) -> None:
        """Refuse a share that is not a fraction."""
        if not 0.0 <= self.account_share <= 1.0:
            raise ValueError("account_share must be between 0 and 1")


@dataclass(frozen=True)
class PilotDistrict:
    """A district of the 2021 pilot with its communes and its published figures."""

    name: str
    communes: tuple[str, ...]
    beneficiaries: int
    mix: PaymentMix


PILOT_DISTRICTS: tuple[PilotDistrict, ...] = (
    PilotDistrict(
        name="Hương Thủy",
        communes=nfc(
            [
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
            ]
        ),
        beneficiaries=4_716,
        # October 2021: 2,053 of 4,716 paid through VietinBank accounts, the rest in cash
        # by the provincial post office.
        mix=PaymentMix(2_053 / 4_716, Provider.VIETINBANK),
    ),
    PilotDistrict(
        name="Phú Lộc",
        communes=nfc(
            [
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
            ]
        ),
        beneficiaries=8_364,
        # September 2021: all 8,364 paid through Viettel Pay accounts.
        mix=PaymentMix(1.0, Provider.VIETTEL_PAY),
    ),
)
_PILOT_MIX = {fold(d.name): d.mix for d in PILOT_DISTRICTS}


def default_mix(district: str, index: int) -> PaymentMix:
    """Return the payment mix of a district the caller said nothing about."""
    pilot = _PILOT_MIX.get(fold(district))
    if pilot is not None:
        return pilot
    # Elsewhere half are on accounts; alternate the two pilot banks between districts.
    provider = Provider.VIETTEL_PAY if index % 2 == 0 else Provider.VIETINBANK
    return PaymentMix(0.5, provider)


# ---- areas, points and staff -------------------------------------------------------------


@dataclass(frozen=True)
class Commune:
    """A commune people are written into, with its district."""

    district_id: int
    district: str
    commune_id: int
    commune: str


@dataclass(frozen=True)
class Point:
    """The payout point that pays a commune's people."""

    id: int
    code: str
    kind: PointKind
    receipt_format: str


def communes_in_use(session: Session) -> list[Commune]:
    """Return every commune with its district, in the order they were created."""
    district = Area.__table__.alias("district")
    commune = Area.__table__.alias("commune")
    rows = session.execute(
        select(district.c.id, district.c.name, commune.c.id, commune.c.name)
        .join(commune, commune.c.parent_id == district.c.id)
        .where(
            district.c.level == AreaLevel.DISTRICT.value,
            commune.c.level == AreaLevel.COMMUNE.value,
        )
        .order_by(district.c.id, commune.c.id)
    ).all()
    return [Commune(*row) for row in rows]


def plan_areas(session: Session, beneficiaries: int) -> list[Commune]:
    """Return the communes to fill: every existing one, plus synthetic ones if too few."""
    wanted = math.ceil(beneficiaries / PEOPLE_PER_COMMUNE)
    with write_transaction(session):
        communes = communes_in_use(session)
        known = {c.commune_id for c in communes}
        number = 0
        district: Area | None = None
        while len(communes) < wanted:
            d_no, c_no = divmod(number, COMMUNES_PER_DISTRICT)
            if c_no == 0 or district is None:
                district = place_service.get_or_create_district(session, f"Huyện Số {d_no + 1:03d}")
            area = place_service.get_or_create_commune(
                session, district, f"Xã Số {d_no + 1:03d}-{c_no + 1:02d}"
            )
            if area.id not in known:  # made by an earlier run: already counted
                known.add(area.id)
                communes.append(Commune(district.id, district.name, area.id, area.name))
            number += 1
    # Keep each district's communes together: people are written district by district.
    return sorted(communes, key=lambda c: (c.district_id, c.commune_id))


def serving_points(session: Session, commune_ids: Sequence[int]) -> dict[int, Point]:
    """Return, per commune, the point that pays it: active first, counters before teams."""
    best: dict[int, tuple[tuple[bool, bool, int], Point]] = {}
    table = PayoutPoint.__table__
    for start in range(0, len(commune_ids), 5_000):
        chunk = commune_ids[start : start + 5_000]
        rows = session.execute(
            select(
                point_communes.c.commune_id,
                table.c.id,
                table.c.code,
                table.c.kind,
                table.c.receipt_format,
                table.c.active,
            )
            .join(table, table.c.id == point_communes.c.point_id)
            .where(point_communes.c.commune_id.in_(chunk))
        ).all()
        for commune_id, point_id, code, kind, fmt, active in rows:
            rank = (not active, kind == PointKind.DELIVERY, point_id)
            if commune_id not in best or rank < best[commune_id][0]:
                best[commune_id] = (rank, Point(point_id, code, PointKind(kind), str(fmt)))
    return {commune_id: point for commune_id, (_rank, point) in best.items()}


def ensure_points(session: Session, communes: Sequence[Commune]) -> dict[int, Point]:
    """Return the point of every commune, creating one synthetic point per district if none."""
    points = serving_points(session, [c.commune_id for c in communes])
    unserved: dict[int, list[Commune]] = defaultdict(list)
    for c in communes:
        if c.commune_id not in points:
            unserved[c.district_id].append(c)
    if not unserved:
        return points
    synthetic = session.execute(
        select(PayoutPoint.id, PayoutPoint.code, PayoutPoint.district_id).where(
            PayoutPoint.code.like("G%")
        )
    ).all()
    numbered = [(int(code[1:]), pid, did) for pid, code, did in synthetic if code[1:].isdigit()]
    next_number = max((n for n, _, _ in numbered), default=0) + 1
    own = {}
    for _number, point_id, district_id in sorted(numbered, reverse=True):
        own[district_id] = point_id  # the lowest-numbered G point of a district wins
    for district_id, missing in unserved.items():
        district_name = missing[0].district
        names = [c.commune for c in missing]
        if district_id in own:
            # An earlier run's point for this district: it takes on the new communes too.
            existing = session.get(PayoutPoint, own[district_id])
            assert existing is not None
            code, name, kind = existing.code, existing.name, existing.kind
            names = [a.name for a in existing.communes] + names
        else:
            code, name, kind = f"G{next_number:03d}", f"Điểm chi trả {district_name}", None
            next_number += 1
        point, _created = place_service.save_point(
            session,
            code=code,
            name=name,
            kind=kind or PointKind.POST_OFFICE,
            district=district_name,
            communes=names,
            actor="generate",
        )
        ref = Point(point.id, point.code, point.kind, point.receipt_format.value)
        for c in missing:
            points[c.commune_id] = ref
    return points


_STAFF_ROLE = {
    PointKind.POST_OFFICE: Role.CLERK,
    PointKind.AGENT: Role.AGENT,
    PointKind.DELIVERY: Role.DELIVERY,
}


def ensure_staff(session: Session, points: Iterable[Point]) -> dict[int, int]:
    """Return a synthetic staff user per point (gen.<code>), creating the missing ones."""
    staff = {}
    for point in sorted(set(points), key=lambda p: p.id):
        username = f"gen.{point.code.lower()}"
        found = session.execute(
            select(User.id, User.payout_point_id).where(User.username == username)
        ).first()
        if found is not None:
            if found.payout_point_id != point.id:
                raise InvalidInput(
                    f"user {username} exists but does not belong to point {point.code}",
                    code="synthetic_user_conflict",
                )
            staff[point.id] = found.id
            continue
        user = auth_service.create_user(
            session,
            username=username,
            role=_STAFF_ROLE[point.kind],
            # Nobody signs in as this user: the password is random and never shown.
            password=secrets.token_urlsafe(24),
            full_name="Nhân viên dữ liệu mẫu",
            point_code=point.code,
            actor="generate",
        )
        staff[point.id] = user.id
    return staff


def districts_arg(communes: Sequence[Commune]) -> list[tuple[str, list[str]]]:
    """Return the communes grouped by district, as synthetic_people takes them."""
    grouped: list[tuple[str, list[str]]] = []
    for c in communes:
        if not grouped or grouped[-1][0] != c.district:
            grouped.append((c.district, []))
        grouped[-1][1].append(c.commune)
    return grouped
