"""A small world of two districts paid through the real services, and an independent count."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from functools import partial
from typing import Any

from sqlalchemy import select, update

from terminal.db import write_transaction
from terminal.models import (
    Area,
    Beneficiary,
    Entitlement,
    EntitlementStatus,
    Payout,
    PayoutLine,
    Period,
)
from terminal.services import payouts, verifications
from terminal.services.payouts import PayoutOrder, reverse_payout
from tests.factories import make_beneficiary, set_float

PERIOD = "2021-10"
EARLIER = "2021-09"
# What happens to each person, in turn: every case of the report appears in each commune.
CASES = (
    "paid",
    "unpaid",
    "paid_proxy",
    "paid_both_periods",
    "reversed",
    "repaid",
    "cancelled",
    "earlier_only",
    "paid",
    "home",
    "stopped",
)


@dataclass
class Built:
    """Who is in the world and what happened to each (code -> case)."""

    cases: dict[str, str] = field(default_factory=dict)
    communes: dict[str, str] = field(default_factory=dict)


def _id(n: int) -> str:
    """Return the n-th person's (or proxy's) 12-digit ID number."""
    return f"0461530{n:05d}"


def build(session: Any, world: Any, people: int = 44) -> Built:
    """Create people in both points' communes and pay, reverse and cancel through the services."""
    set_float(session, "HTBD")
    set_float(session, "PLVT")
    staff = {
        "HTBD": (world.users["clerk"], world.users["supervisor"]),
        "PLVT": (world.users_b["clerk"], world.users_b["supervisor"]),
    }
    communes = [(world.point_a.code, c) for c in world.point_a.communes] + [
        (world.point_b.code, c) for c in world.point_b.communes
    ]
    built = Built()
    for n in range(people):
        point, commune = communes[n % len(communes)]
        case = CASES[n % len(CASES)]
        account = n % 4 == 1
        proxied = case == "paid_proxy" or n % 3 == 0
        code = f"TTH{n:07d}"
        person = make_beneficiary(
            session,
            code,
            commune=commune,
            full_name=f"Nguyễn Văn {chr(65 + n % 26)}",
            id_number=_id(n),
            phone=None,
            method="account" if account else "cash",
            provider="viettel_pay" if account else "post",
            monthly=540_000 + 1000 * n,
            periods=((EARLIER, 0), (PERIOD, 0)),
            proxy={"full_name": f"Lê Thị {n}", "id_number": _id(50_000 + n)} if proxied else None,
            status="deceased" if case == "stopped" and n % 2 else "active",
        )
        built.cases[code] = case
        built.communes[code] = commune.name
        clerk, supervisor = staff[point]
        ids = _entitlements(session, person)
        via_proxy = case == "paid_proxy" or (proxied and n % 2 == 0)
        collector_id = _id(50_000 + n) if via_proxy else _id(n)
        channel = "account" if account else "cash"

        pay = partial(_pay, session, clerk, code, collector_id, channel=channel)

        if case in ("paid", "paid_proxy", "home"):
            payout_id = pay((ids[PERIOD],))
            if case == "home":
                _set_channel_home(session, payout_id)
        elif case == "paid_both_periods":
            pay((ids[EARLIER], ids[PERIOD]))
        elif case == "reversed":
            reverse_payout(session, supervisor, pay((ids[PERIOD],)), reason="Trả nhầm người")
        elif case == "repaid":
            reverse_payout(session, supervisor, pay((ids[PERIOD],)), reason="Sai số tiền")
            pay((ids[PERIOD],))
        elif case == "cancelled":
            _cancel(session, ids[PERIOD])
        elif case == "earlier_only":
            pay((ids[EARLIER],))
        elif case == "stopped" and not n % 2:
            # Left off the month's list: the import cancels the entitlement, status stays.
            _cancel(session, ids[PERIOD])
    return built


def _entitlements(session: Any, person: Any) -> dict[str, int]:
    """Return a person's entitlement ids by period code."""
    rows = session.execute(
        select(Period.code, Entitlement.id)
        .join(Period, Period.id == Entitlement.period_id)
        .where(Entitlement.beneficiary_id == person.id)
    )
    return dict(rows.all())


def _pay(
    session: Any, clerk: Any, code: str, id_number: str, ids: tuple[int, ...], *, channel: str
) -> int:
    """Verify the collector and pay entitlements through the one payment path."""
    verification = verifications.verify_collector(
        session, clerk, beneficiary_code=code, id_number=id_number
    ).verification.id
    outcome = payouts.pay(
        session,
        clerk,
        PayoutOrder(
            verification_id=verification,
            entitlement_ids=ids,
            channel=channel,
            provider_ref="VTP-" + uuid.uuid4().hex[:10] if channel == "account" else None,
        ),
        key=str(uuid.uuid4()),
        verify_url=lambda payout: f"http://test/r/{payout.id}",
    )
    assert outcome.status == 201, outcome.body
    return outcome.body["payout_id"]


def _set_channel_home(session: Any, payout_id: int) -> None:
    """Make a payout one of a home-delivery team's (paid in cash at home)."""
    with write_transaction(session):
        session.execute(update(Payout).where(Payout.id == payout_id).values(channel="cash_home"))


def _cancel(session: Any, entitlement_id: int) -> None:
    """Cancel an entitlement as a roster import does for a stopped or missing person."""
    with write_transaction(session):
        session.execute(
            update(Entitlement)
            .where(Entitlement.id == entitlement_id)
            .values(status=EntitlementStatus.CANCELLED)
        )


# ---- the independent count: plain Python over the raw rows ---------------------------


def raw_tables(session: Any) -> dict[str, list[Any]]:
    """Read every row the report depends on, unjoined."""
    session.rollback()
    tables = {
        "areas": Area.__table__,
        "people": Beneficiary.__table__,
        "entitlements": Entitlement.__table__,
        "periods": Period.__table__,
        "lines": PayoutLine.__table__,
        "payouts": Payout.__table__,
    }
    return {name: list(session.execute(select(table))) for name, table in tables.items()}


def expected_coverage(
    raw: dict[str, list[Any]], group_by: str, communes: set[int] | None = None
) -> dict[str, dict[str, Any]]:
    """Count coverage by hand: per area name, each figure, and 'total'."""
    areas = {a.id: a for a in raw["areas"]}
    people = {p.id: p for p in raw["people"]}
    period_id = next(p.id for p in raw["periods"] if p.code == PERIOD)
    payouts_by_id = {p.id: p for p in raw["payouts"]}
    live = {}
    for line in raw["lines"]:
        payout = payouts_by_id[line.payout_id]
        if line.reversed_at is None and payout.status == "completed":
            live[line.entitlement_id] = (line, payout)
    figures: dict[str, dict[str, Any]] = defaultdict(lambda: defaultdict(int))
    for entitlement in raw["entitlements"]:
        if entitlement.period_id != period_id or entitlement.status == "cancelled":
            continue
        person = people[entitlement.beneficiary_id]
        if communes is not None and person.commune_id not in communes:
            continue
        commune = areas[person.commune_id]
        area = commune.name if group_by == "commune" else areas[commune.parent_id].name
        for key in (area, "total"):
            row = figures[key]
            row["beneficiaries"] += 1
            row["amount_due"] += entitlement.amount_vnd
            if entitlement.id in live:
                line, payout = live[entitlement.id]
                row["paid"] += 1
                row["amount_paid"] += line.amount_vnd
                row["account" if payout.channel == "account" else "cash"] += 1
                row["via_proxy"] += payout.collector_type == "proxy"
    result = {}
    for key, row in figures.items():
        pct = Decimal(row["paid"] * 100) / row["beneficiaries"] if row["beneficiaries"] else 0
        result[key] = {
            **{k: row[k] for k in ("beneficiaries", "paid", "amount_due", "amount_paid")},
            **{k: row[k] for k in ("cash", "account", "via_proxy")},
            "paid_pct": float(Decimal(pct).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)),
        }
    return result
