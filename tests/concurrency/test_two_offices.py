"""Never paid twice across offices: two terminal servers paying against one PostgreSQL.

Two post offices of one province, HTBD and HTPB, each run their own terminal (own
process, port, receipts folder and staff) on the same PostgreSQL database, and both
serve the commune of Thủy Dương, so its people may collect at either. 8 client
processes, 4 per office, released together by a barrier, make 200 payout attempts on
50 entitlements: every entitlement is tried twice at each office. Run again with the
application's "already paid?" check taken out of the served code (a launcher patches
it before gunicorn forks; no production switch turns a money check off), so only the
database's partial unique index on live payout lines guards (RELIABILITY S01).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from terminal.models import (
    AuditEvent,
    Entitlement,
    EntitlementStatus,
    Payout,
    PayoutLine,
    PayoutPoint,
    Receipt,
)
from terminal.services.audit import verify_chain
from tests.concurrency.office_clerks import clerk
from tests.conftest import PG_URL, SECRET
from tests.factories import PASSWORD, make_beneficiary, make_point, make_user, set_float
from tests.servers import SCRIPT, free_port

pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="two offices share one PostgreSQL database (S01): set TERMINAL_TEST_DATABASE_URL; "
    "SQLite is one file on one machine, raced by tests/concurrency/test_payout_races.py",
)

OFFICES = ("HTBD", "HTPB")
CLIENTS_PER_OFFICE = 4
PEOPLE = 50
SHARED_COMMUNE = "Thủy Dương"

# Served with the "already paid?" check of lock_payable removed: the rows are still
# locked, but a paid one is written over, so the partial unique index must refuse it.
UNCHECKED_LAUNCHER = """
import sys
import terminal.services.payouts as payouts

def lock_unchecked(session, ids, person_id):
    conn = session.connection()
    return {row.id: row for row in conn.execute(payouts._LOCK_ENTITLEMENTS, {"ids": ids})}

payouts.lock_payable = lock_unchecked
print("already-paid check switched off", file=sys.stderr, flush=True)
from terminal.cli import main
sys.argv = ["payout-terminal", *sys.argv[1:]]
main()
"""


@contextmanager
def offices(
    envs: dict[str, dict[str, str]], *, check_off: bool
) -> Iterator[dict[str, tuple[str, Path]]]:
    """Serve each office's terminal (2 workers each, started together) until the block
    ends; yield each office's base URL and log file."""
    started: dict[str, tuple[subprocess.Popen[bytes], str, Path]] = {}
    try:
        for code, env in envs.items():
            port = free_port()
            command = [sys.executable, "-c", UNCHECKED_LAUNCHER] if check_off else [str(SCRIPT)]
            command += ["serve", "--port", str(port), "--workers", "2"]
            with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
                process = subprocess.Popen(
                    command, env=env, stdout=log, stderr=log, start_new_session=True
                )
            started[code] = (process, f"http://127.0.0.1:{port}", Path(log.name))
        deadline = time.monotonic() + 60
        for process, base, log_path in started.values():
            while True:
                try:
                    urllib.request.urlopen(base + "/login", timeout=2).read()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        raise AssertionError(
                            f"office did not start: {log_path.read_text()[-2000:]}"
                        ) from None
                    time.sleep(0.2)
        yield {code: (base, log_path) for code, (_, base, log_path) in started.items()}
    finally:
        # Killed, master and workers: the race is over and every payout committed, and a
        # graceful stop spends seconds in each worker's final garbage collection.
        for process, _, _ in started.values():
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def province(session):
    """Two offices serving Thủy Dương, 4 clerks each, 50 people there owed one allowance."""
    first = make_point(session, "HTBD", communes=(SHARED_COMMUNE, "Thủy Vân"))
    second = make_point(session, "HTPB", communes=(SHARED_COMMUNE, "Phú Bài"))
    commune = next(c for c in first.communes if c.name == SHARED_COMMUNE)
    assert commune.id in {c.id for c in second.communes}  # one commune, served twice
    for code in OFFICES:
        make_user(session, f"sup{code.lower()}", "supervisor", point=code)
        for n in range(CLIENTS_PER_OFFICE):
            make_user(session, f"clerk{code.lower()}{n}", "clerk", point=code)
        set_float(session, code, 10**12)
    people = []
    for n in range(PEOPLE):
        id_number = f"0461600{n:05d}"
        person = make_beneficiary(
            session, f"TTH{n:07d}", commune=commune, id_number=id_number, full_name="Trần Thị Bình"
        )
        owed = session.scalar(select(Entitlement.id).where(Entitlement.beneficiary_id == person.id))
        people.append((person.code, id_number, owed))
    return people


def _race(bases: dict[str, str], people: list[tuple[str, str, int]]) -> list[tuple]:
    """Run 8 clerks, 4 per office; each person is tried by two clerks at each office."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(len(OFFICES) * CLIENTS_PER_OFFICE)
    results = context.Queue()
    processes = []
    for code in OFFICES:
        for n in range(CLIENTS_PER_OFFICE):
            plan = [p for i, p in enumerate(people) if i % 2 == n % 2]
            username = f"clerk{code.lower()}{n}"
            processes.append(
                context.Process(
                    target=clerk,
                    args=(bases[code], username, PASSWORD, plan, barrier, results),
                )
            )
    for process in processes:
        process.start()
    collected = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    return [item for clerk in collected for item in clerk]


@pytest.mark.slow
@pytest.mark.parametrize("check_off", [False, True], ids=["app-check", "db-guard-only"])
def test_two_offices_pay_fifty_entitlements_exactly_once(
    province, session, db_url, tmp_path, check_off
):
    folders = {code: tmp_path / f"receipts-{code}" for code in OFFICES}
    envs = {}
    for code in OFFICES:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
        env.update(
            TERMINAL_DATABASE_URL=db_url,
            TERMINAL_SECRET_KEY=SECRET,
            TERMINAL_RECEIPTS_DIR=str(folders[code]),
        )
        envs[code] = env
    started = time.monotonic()
    with offices(envs, check_off=check_off) as served:
        bases = {code: base for code, (base, _) in served.items()}
        assert len(set(bases.values())) == len(OFFICES)  # own processes, own ports
        racing = time.monotonic()
        outcomes = _race(bases, province)
        raced = time.monotonic()
    print(
        f"\ntwo offices: started in {racing - started:.1f} s, raced in {raced - racing:.1f} s,"
        f" stopped in {time.monotonic() - raced:.1f} s"
    )
    logs = {code: log for code, (_, log) in served.items()}
    for code in OFFICES:
        log = logs[code].read_text(errors="replace")
        assert "Traceback" not in log, log[-3000:]
        assert ("already-paid check switched off" in log) is check_off

    assert len(outcomes) == 200
    assert all(kind == "pay" for kind, *_ in outcomes), Counter(o[:3] for o in outcomes)
    statuses = Counter(status for _, status, _, _ in outcomes)
    assert statuses == {201: PEOPLE, 409: 200 - PEOPLE}, statuses
    assert {e for _, s, e, _ in outcomes if s == 409} == {"already_paid"}
    receipt_nos = [e for _, s, e, _ in outcomes if s == 201]
    assert len(set(receipt_nos)) == PEOPLE
    assert all(printed for _, s, _, printed in outcomes if s == 201)

    session.rollback()
    assert session.scalar(select(func.count(Payout.id))) == PEOPLE
    live = select(PayoutLine.entitlement_id).where(PayoutLine.reversed_at.is_(None))
    paid_ids = list(session.scalars(live))
    assert len(paid_ids) == len(set(paid_ids)) == PEOPLE  # 0 duplicate rows
    paid = select(func.count(Entitlement.id)).where(Entitlement.status == EntitlementStatus.PAID)
    assert session.scalar(paid) == PEOPLE
    stored = list(session.scalars(select(Receipt.receipt_no)))
    assert sorted(stored) == sorted(receipt_nos)  # every 201's receipt, each number once
    for code in OFFICES:
        point_id = session.scalar(select(PayoutPoint.id).where(PayoutPoint.code == code))
        rows = session.execute(
            select(Receipt.receipt_no, Receipt.seq).where(Receipt.point_id == point_id)
        ).all()
        # Each office numbers its own receipts, without gaps, and prints them into its
        # own folder only.
        assert sorted(seq for _, seq in rows) == list(range(1, len(rows) + 1))
        files = sorted(path.stem for path in folders[code].rglob("*.pdf"))
        assert files == sorted(no for no, _ in rows)
    assert sum(len(list(folders[c].rglob("*.pdf"))) for c in OFFICES) == PEOPLE
    recorded = select(func.count(AuditEvent.seq)).where(AuditEvent.action == "payout.recorded")
    assert session.scalar(recorded) == PEOPLE
    assert verify_chain(session).ok
    # Which guard refused: with the check on, no losing attempt got as far as inserting
    # a payout; with it off, every attempt inserted one and the index refused 150.
    sequence = session.scalar(text("SELECT pg_get_serial_sequence('payouts', 'id')"))
    used = session.scalar(text(f"SELECT last_value FROM {sequence}"))
    assert used == (200 if check_off else PEOPLE)
