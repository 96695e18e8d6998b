"""The two verbs that write synthetic data: ``generate`` for benchmarks, ``demo_roster``
for the pilot's demo. Each is one transaction closed by one audit event.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

from sqlalchemy.orm import Session

from terminal.db import refresh_statistics, write_transaction
from terminal.models import AuditAction
from terminal.services import places as place_service
from terminal.services.audit import record_event
from terminal.services.counter import today_local
from terminal.services.errors import InvalidInput
from terminal.services.roster import period_code, period_start
from terminal.synthetic.loading import (
    PAYOUT_TABLES,
    ROSTER_TABLES,
    PayoutWriter,
    RosterWriter,
    commune_slots,
    indexes_built_after,
    next_code,
    period_codes,
    period_refs,
)
from terminal.synthetic.people import synthetic_people
from terminal.synthetic.places import (
    PILOT_DISTRICTS,
    Commune,
    districts_arg,
    ensure_points,
    ensure_staff,
    plan_areas,
    serving_points,
)

__all__ = ["GenerateReport", "demo_roster", "generate"]


@dataclass(frozen=True)
class GenerateReport:
    """What a generation wrote, and how long it took."""

    beneficiaries: int
    proxies: int
    entitlements: int
    payouts: int
    districts: int  # districts the people live in
    communes: int  # communes the people live in
    points: int  # payout points serving those communes
    seconds: float
    periods: tuple[str, ...] = ()
    first_code: str | None = None
    last_code: str | None = None
    data_errors: int = 0  # people with a contradictory CCCD, each opened as a follow-up case


def generate(
    session: Session,
    *,
    beneficiaries: int,
    periods: int = 1,
    seed: int = 2021,
    progress: Callable[[int], None] | None = None,
    first_period: str | None = None,
) -> GenerateReport:
    """Write synthetic beneficiaries with `periods` months of history, for benchmarks.

    The months are the `periods` consecutive ones ending with `first_period` (default:
    this month). Every month but the last is paid (a payout, its line and a gapless receipt
    per active person); the last stays due. Existing communes are filled first, synthetic
    ones ("Xã Số 001-01" in "Huyện Số 001") added while there are fewer than one per ~2,000
    people. Communes without a payout point, and (when anything is paid) the staff user of
    each point, are set up first by their own services, which commit and audit them; then
    everything else is one transaction, closed by one audit event.
    """
    if beneficiaries < 1:
        raise InvalidInput("generate at least one beneficiary", code="count_invalid")
    if periods < 1:
        raise InvalidInput("generate at least one period", code="periods_invalid")
    started = time.perf_counter()
    last = first_period or period_code(today_local())
    codes = period_codes(last, periods)

    communes = plan_areas(session, beneficiaries)
    points = ensure_points(session, communes)
    # create_user commits on its own, so staff exists before the big transaction starts.
    staff = ensure_staff(session, points.values()) if periods > 1 else {}

    with write_transaction(session):
        refs = period_refs(session, codes)
        code_start = next_code(session, 1_000_001)
        writer = RosterWriter(
            session,
            communes=communes,
            periods=refs,
            slots=commune_slots(communes, points, beneficiaries),
            seed=seed,
        )
        people = synthetic_people(
            beneficiaries,
            # Mixed with the first code, so that a second run adds other people, not twins.
            seed=seed * 10**8 + code_start,
            districts=districts_arg(communes),
            code_start=code_start,
            today=period_start(refs[0].code),
        )
        with indexes_built_after(session, ROSTER_TABLES):
            writer.write_all(people, progress)
        payouts = 0
        if periods > 1:
            assert writer.first_id is not None
            with indexes_built_after(session, PAYOUT_TABLES):
                payer = PayoutWriter(
                    session,
                    points=points,
                    staff=staff,
                    beneficiary_ids=(writer.first_id, writer.last_id),
                    seed=seed,
                )
                for ref in refs[:-1]:
                    payer.pay(ref)
                payer.finish()
            payouts = payer.payouts
        report = GenerateReport(
            beneficiaries=writer.beneficiaries,
            proxies=writer.proxies,
            entitlements=writer.entitlements,
            payouts=payouts,
            districts=len({c.district_id for c in communes}),
            communes=len(communes),
            points=len({p.id for p in points.values()}),
            seconds=0.0,
            periods=tuple(codes),
            first_code=writer.first_code,
            last_code=writer.last_code,
            data_errors=writer.data_errors,
        )
        _record(session, report, actor="generate", object_id="synthetic", seed=seed)
    refresh_statistics(session)
    return _timed(report, started)


def demo_roster(
    session: Session, *, period: str, scale: float = 1.0, seed: int = 2021
) -> GenerateReport:
    """Write the 2021 pilot's beneficiaries and one open period of due entitlements.

    Hương Thủy: 4,716 people, 43.5 % on VietinBank accounts, the rest in cash at the post
    office; Phú Lộc: 8,364, all on Viettel Pay. Both counts are multiplied by `scale`
    (at least one person per district). The districts are normally there already (the
    demo's payout points made them); any missing commune is created.
    """
    today = period_start(period)
    if not scale > 0 or math.isinf(scale):
        raise InvalidInput("scale must be a positive number", code="scale_invalid")
    started = time.perf_counter()
    with write_transaction(session):
        pilots = []
        for pilot in PILOT_DISTRICTS:
            district = place_service.get_or_create_district(session, pilot.name)
            communes = [
                Commune(district.id, district.name, area.id, area.name)
                for area in (
                    place_service.get_or_create_commune(session, district, name)
                    for name in pilot.communes
                )
            ]
            pilots.append((pilot, district.name, communes))
        all_communes = [c for _, _, communes in pilots for c in communes]
        refs = period_refs(session, [period_code(today)])
        code_start = next_code(session, 1_000_001)
        writer = RosterWriter(session, communes=all_communes, periods=refs)
        with indexes_built_after(session, ROSTER_TABLES):
            for index, (pilot, district_name, communes) in enumerate(pilots):
                count = max(1, round(pilot.beneficiaries * scale))
                people = synthetic_people(
                    count,
                    # A stream per district: scaling one never reshuffles the other's people.
                    seed=seed * 100 + index,
                    districts=[(district_name, [c.commune for c in communes])],
                    code_start=code_start,
                    today=today,
                    mixes={district_name: pilot.mix},
                )
                writer.write_all(people)
                code_start += count
        points = serving_points(session, [c.commune_id for c in all_communes])
        report = GenerateReport(
            beneficiaries=writer.beneficiaries,
            proxies=writer.proxies,
            entitlements=writer.entitlements,
            payouts=0,
            districts=len(pilots),
            communes=len(all_communes),
            points=len({p.id for p in points.values()}),
            seconds=0.0,
            periods=(refs[0].code,),
            first_code=writer.first_code,
            last_code=writer.last_code,
            data_errors=writer.data_errors,
        )
        _record(session, report, actor="seed-demo", object_id="demo", seed=seed)
    return _timed(report, started)


def _record(
    session: Session, report: GenerateReport, *, actor: str, object_id: str, seed: int
) -> None:
    """Append the one audit event of a generation, with its counts."""
    data = asdict(report)
    del data["seconds"]  # not known yet, and no business of the audit trail
    data["seed"] = seed
    record_event(
        session,
        actor=actor,
        action=AuditAction.DATA_GENERATED,
        object_type="database",
        object_id=object_id,
        data=data,
    )


def _timed(report: GenerateReport, started: float) -> GenerateReport:
    """Return the report with the seconds the whole generation took."""
    return replace(report, seconds=time.perf_counter() - started)
