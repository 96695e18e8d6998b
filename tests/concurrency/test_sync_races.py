"""A tablet that syncs twice, at once, never pays twice: processes against a served terminal.

A route of 20 people; one tablet's queue of 20 payouts is sent by 6 processes at
the same moment (a tablet retrying while an earlier sync is still running, the
answer of which it lost) to a gunicorn server with 4 workers, on the suite's
database (SQLite, or PostgreSQL with TERMINAL_TEST_DATABASE_URL). Then the same
with counter clerks paying the same people (released from the route) at the same
moment: each entitlement is paid once, and every tablet item that lost is a
``possible_double_payment`` case (DESIGN rule 1: "a tablet that syncs twice").
"""

from __future__ import annotations

import multiprocessing
import os
import random
import secrets
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from terminal.models import AuditEvent, Entitlement, Failure, Payout, PayoutLine, Receipt
from terminal.services.audit import verify_chain
from tests.concurrency.test_payout_races import call
from tests.conftest import SECRET
from tests.factories import PASSWORD, make_beneficiary, make_point, make_user, set_float
from tests.servers import free_port, served

SENDERS = 6
PEOPLE = 20
VN = timezone(timedelta(hours=7))


@pytest.fixture
def sync_server(db_url, tmp_path):
    """Serve the terminal with 4 gunicorn workers; yield its base URL."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
    )
    with served(env, port=free_port(), workers=4) as server:
        yield server.base
    log = server.log()
    assert "database is locked" not in log
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def route_world(session, sync_server):
    """20 people on a delivery route, a registered tablet, and 2 clerks; return the queue."""
    point = make_point(session, "HTBD")
    make_user(session, "sup", "supervisor", point="HTBD")
    make_user(session, "giao", "delivery", point="HTBD")
    for n in range(2):
        make_user(session, f"clerk{n}", "clerk", point="HTBD")
    codes = [
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=point.communes[0],
            id_number=f"0461600{n:05d}",
            full_name="Nguyễn Văn An",
        ).code
        for n in range(PEOPLE)
    ]
    set_float(session, "HTBD", 10**12)
    base = sync_server
    sup = call(base, "POST", "/api/v1/tokens", {"username": "sup", "password": PASSWORD})[1]
    sup = sup["token"]
    device = call(
        base, "POST", "/api/v1/devices", {"name": "Tablet", "username": "giao"}, token=sup
    )[1]
    created = call(
        base,
        "POST",
        "/api/v1/routes",
        {"username": "giao", "period": "2021-10", "beneficiary_codes": codes},
        token=sup,
    )[1]
    route = call(base, "GET", "/api/v1/routes/current", token=device["token"])[1]
    paid_at = (datetime.now(VN) - timedelta(minutes=30)).isoformat(timespec="seconds")
    queue = [
        {
            "client_ref": "race-" + secrets.token_hex(10),
            "beneficiary_code": person["code"],
            "entitlement_ids": [e["id"] for e in person["entitlements"]],
            "collector": "beneficiary",
            "verified_by": "id_number",
            "paid_at": paid_at,
        }
        for person in route["people"]
    ]
    return {
        "base": base,
        "sup": sup,
        "device": device["token"],
        "route_id": created["route_id"],
        "queue": queue,
    }


def _sender(base: str, token: str, queue: list, seed: int, barrier, results) -> None:
    """Send the tablet's whole queue, in an order of its own, in two batches."""
    items = list(queue)
    random.Random(seed).shuffle(items)
    barrier.wait()
    answers = []
    for batch in (items[:10], items[10:]):
        status, body = call(base, "POST", "/api/v1/sync", {"payouts": batch}, token=token)
        answers.append((status, body))
    results.put(("tablet", answers))


def _clerk(base: str, username: str, codes: list[str], barrier, results) -> None:
    """Pay the people at the counter, in an order of its own."""
    token = call(base, "POST", "/api/v1/tokens", {"username": username, "password": PASSWORD})[1][
        "token"
    ]
    plan = []
    for code in codes:
        detail = call(base, "GET", f"/api/v1/beneficiaries/{code}", token=token)[1]
        plan.append((code, detail["entitlements"][0]["id"]))
    random.Random(username).shuffle(plan)
    barrier.wait()
    outcomes = []
    for code, entitlement_id in plan:
        number = f"0461600{int(code[3:]):05d}"
        verified = call(
            base,
            "POST",
            "/api/v1/verifications",
            {"beneficiary_code": code, "collector": "beneficiary", "id_number": number},
            token=token,
        )[1]
        status, body = call(
            base,
            "POST",
            "/api/v1/payouts",
            {
                "verification_id": verified["verification_id"],
                "entitlement_ids": [entitlement_id],
                "channel": "cash",
            },
            token=token,
            key=str(uuid.uuid4()),
        )
        outcomes.append((status, body.get("error")))
    results.put(("clerk", outcomes))


def _run(targets: list[tuple]) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(targets))
    results = context.Queue()
    processes = [
        context.Process(target=target, args=(*args, barrier, results)) for target, args in targets
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return collected


def _check_money(session) -> None:
    """Each entitlement paid at most once, gapless receipts, an intact audit chain."""
    session.rollback()
    live = session.execute(
        select(PayoutLine.entitlement_id, func.count())
        .where(PayoutLine.reversed_at.is_(None))
        .group_by(PayoutLine.entitlement_id)
        .having(func.count() > 1)
    ).all()
    assert live == []
    payouts = session.scalar(select(func.count(Payout.id)))
    seqs = sorted(session.scalars(select(Receipt.seq)))
    assert seqs == list(range(1, payouts + 1))
    recorded = select(func.count(AuditEvent.seq)).where(AuditEvent.action == "payout.recorded")
    assert session.scalar(recorded) == payouts
    assert verify_chain(session).ok


@pytest.mark.slow
def test_six_concurrent_syncs_of_one_queue_pay_each_person_once(route_world, session):
    world = route_world
    collected = _run(
        [
            (_sender, (world["base"], world["device"], world["queue"], seed))
            for seed in range(SENDERS)
        ]
    )
    by_ref: dict[str, list[dict]] = {}
    for _kind, answers in collected:
        for status, body in answers:
            assert status == 200, body
            for result in body["results"]:
                by_ref.setdefault(result["client_ref"], []).append(result)
    assert len(by_ref) == PEOPLE
    for ref, results in by_ref.items():
        statuses = sorted(r["status"] for r in results)
        assert statuses == ["applied"] + ["duplicate"] * (SENDERS - 1), (ref, statuses)
        assert len({r["payout_id"] for r in results}) == 1
        assert len({r["receipt_no"] for r in results}) == 1
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == PEOPLE
    assert (
        session.scalar(select(func.count(Entitlement.id)).where(Entitlement.status == "paid"))
        == PEOPLE
    )
    _check_money(session)


@pytest.mark.slow
def test_tablet_and_counter_racing_for_released_people_pay_once(route_world, session):
    world = route_world
    codes = [item["beneficiary_code"] for item in world["queue"]]
    for code in codes:
        status, _ = call(
            world["base"],
            "DELETE",
            f"/api/v1/routes/{world['route_id']}/people/{code}",
            token=world["sup"],
        )
        assert status == 204
    collected = _run(
        [
            (_sender, (world["base"], world["device"], world["queue"], 1)),
            (_sender, (world["base"], world["device"], world["queue"], 2)),
            (_clerk, (world["base"], "clerk0", codes)),
            (_clerk, (world["base"], "clerk1", codes)),
        ]
    )
    tablet: dict[str, set[str]] = {}
    counter_paid = 0
    for kind, answers in collected:
        if kind == "tablet":
            for status, body in answers:
                assert status == 200, body
                for result in body["results"]:
                    tablet.setdefault(result["client_ref"], set()).add(
                        result.get("first_status", result["status"])
                    )
        else:
            assert not [s for s, _ in answers if s >= 500], answers
            assert {e for s, e in answers if s != 201} <= {"already_paid"}
            counter_paid += sum(1 for s, _ in answers if s == 201)
    # Each tablet item has one outcome, whichever sender saw it first.
    assert all(len(outcomes) == 1 for outcomes in tablet.values()), tablet
    applied = sum(1 for o in tablet.values() if o == {"applied"})
    conflicts = sum(1 for o in tablet.values() if o == {"conflict"})
    assert applied + conflicts == PEOPLE
    assert applied + counter_paid == PEOPLE  # everyone paid exactly once
    session.rollback()
    cases = select(func.count(Failure.id)).where(Failure.reason == "possible_double_payment")
    assert session.scalar(cases) == conflicts
    assert session.scalar(select(func.count(Payout.id))) == PEOPLE
    _check_money(session)
