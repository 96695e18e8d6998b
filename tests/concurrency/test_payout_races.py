"""Never paid twice, under real concurrency: processes against a served terminal.

8 worker processes, released together by a barrier, each try to pay the same 20
entitlements through the JSON API of a gunicorn server with 4 workers, on the
suite's database (SQLite, or PostgreSQL with TERMINAL_TEST_DATABASE_URL). Run
again with the application's "already paid?" check switched off, so only the
database's partial unique index guards (RELIABILITY S01, S02).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import uuid

import pytest
from sqlalchemy import func, select

from terminal.models import AuditEvent, Entitlement, Payout, PayoutLine, Receipt
from terminal.services.audit import verify_chain
from tests.concurrency.office_clerks import call
from tests.conftest import SECRET
from tests.factories import PASSWORD, make_beneficiary, make_point, make_user, set_float
from tests.servers import free_port, served

WORKERS = 8
ENTITLEMENTS = 20


@pytest.fixture
def race_server(db_url, tmp_path):
    """Serve the terminal with 4 gunicorn workers; yield its base URL.

    The database's own guard (the partial unique index) is proved without the
    application's check by tests/services/test_payment_path.py, which inserts a
    second live line directly: no production switch turns a money check off.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
    )
    with served(env, port=free_port(), workers=4) as server:
        yield server.base
    log = server.log()
    # No request may have hit "database is locked" or a stack trace.
    assert "database is locked" not in log
    assert "Traceback" not in log, log[-3000:]


@pytest.fixture
def owed(session):
    """20 beneficiaries of point HTBD with one due entitlement each, and 8 clerks."""
    point = make_point(session, "HTBD")
    make_user(session, "sup", "supervisor", point="HTBD")
    for n in range(WORKERS):
        make_user(session, f"clerk{n}", "clerk", point="HTBD")
    people = [
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=point.communes[0],
            id_number=f"0461600{n:05d}",
            full_name="Nguyễn Văn An",
        )
        for n in range(ENTITLEMENTS)
    ]
    set_float(session, "HTBD", 10**12)
    return people


def _worker(base: str, username: str, codes: list[str], barrier, results) -> None:
    """Try to pay every beneficiary's entitlements, in a random order."""
    status, body = call(
        base, "POST", "/api/v1/tokens", {"username": username, "password": PASSWORD}
    )
    token = body["token"]
    plan = []
    for code in codes:
        detail = call(base, "GET", f"/api/v1/beneficiaries/{code}", token=token)[1]
        plan.append((code, detail["entitlements"][0]["id"], "046" + code[-9:]))
    random.Random(username).shuffle(plan)
    outcomes = []
    barrier.wait()
    for code, entitlement_id, _ in plan:
        number = f"0461600{int(code[3:]):05d}"
        status, body = call(
            base,
            "POST",
            "/api/v1/verifications",
            {"beneficiary_code": code, "collector": "beneficiary", "id_number": number},
            token=token,
        )
        if status != 201:
            outcomes.append(("verify", status, body.get("error")))
            continue
        status, body = call(
            base,
            "POST",
            "/api/v1/payouts",
            {
                "verification_id": body["verification_id"],
                "entitlement_ids": [entitlement_id],
                "channel": "cash",
            },
            token=token,
            key=str(uuid.uuid4()),
        )
        outcomes.append(("pay", status, body.get("error") or body.get("receipt_no")))
    results.put(outcomes)


def _run_workers(base: str, codes: list[str]) -> list[tuple]:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_worker, args=(base, f"clerk{n}", codes, barrier, results))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    collected = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return [item for worker in collected for item in worker]


@pytest.mark.slow
def test_eight_processes_pay_twenty_entitlements_exactly_once(race_server, owed, session):
    outcomes = _run_workers(race_server, [p.code for p in owed])
    statuses = [status for kind, status, _ in outcomes if kind == "pay"]
    assert all(kind == "pay" for kind, _s, _e in outcomes), outcomes
    assert statuses.count(201) == ENTITLEMENTS
    assert statuses.count(409) == WORKERS * ENTITLEMENTS - ENTITLEMENTS
    assert not [s for s in statuses if s >= 500]
    assert {e for kind, s, e in outcomes if s == 409} == {"already_paid"}
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == ENTITLEMENTS
    live = select(func.count(PayoutLine.id)).where(PayoutLine.reversed_at.is_(None))
    assert session.scalar(live) == ENTITLEMENTS
    assert (
        session.scalar(select(func.count(Entitlement.id)).where(Entitlement.status == "paid"))
        == ENTITLEMENTS
    )
    seqs = sorted(session.scalars(select(Receipt.seq)))
    assert seqs == list(range(1, ENTITLEMENTS + 1))  # gapless receipt numbers
    recorded = select(func.count(AuditEvent.seq)).where(AuditEvent.action == "payout.recorded")
    assert session.scalar(recorded) == ENTITLEMENTS
    assert verify_chain(session).ok


def _replayer(base: str, body: dict, key: str, token: str, barrier, results) -> None:
    barrier.wait()
    results.put(call(base, "POST", "/api/v1/payouts", body, token=token, key=key))


@pytest.mark.slow
def test_idempotent_replay_under_concurrency_pays_once(race_server, owed, session):
    base = race_server
    token = call(base, "POST", "/api/v1/tokens", {"username": "clerk0", "password": PASSWORD})[1][
        "token"
    ]
    code = owed[0].code
    detail = call(base, "GET", f"/api/v1/beneficiaries/{code}", token=token)[1]
    verification = call(
        base,
        "POST",
        "/api/v1/verifications",
        {"beneficiary_code": code, "collector": "beneficiary", "id_number": "046160000000"},
        token=token,
    )[1]
    body = {
        "verification_id": verification["verification_id"],
        "entitlement_ids": [detail["entitlements"][0]["id"]],
        "channel": "cash",
    }
    key = str(uuid.uuid4())
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    results = context.Queue()
    processes = [
        context.Process(target=_replayer, args=(base, body, key, token, barrier, results))
        for _ in range(WORKERS)
    ]
    for process in processes:
        process.start()
    answers = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    statuses = [status for status, _ in answers]
    assert not [s for s in statuses if s >= 500], answers
    assert set(statuses) <= {201, 409}
    assert all(b.get("error") == "request_in_progress" for s, b in answers if s == 409)
    receipts = {b["receipt_no"] for s, b in answers if s == 201}
    assert len(receipts) == 1
    final_status, final_body = call(base, "POST", "/api/v1/payouts", body, token=token, key=key)
    assert final_status == 201 and final_body["receipt_no"] in receipts
    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == 1
