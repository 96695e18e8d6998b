"""Randomised soak: 8 clients pay, read, reverse and verify while a nemesis strikes.

A real server (``payout-terminal serve``, gunicorn, 2 workers) on the suite's database.
8 client threads, each with its own clerk's token, run a seeded mix: payouts with an
Idempotency-Key (retried with the same key after a network error or a 5xx), searches,
the payout log, receipt PDFs and receipt checks, identity checks (right and wrong ID
numbers), and supervisors' reversals, which make entitlements due again. For the
first 60 % of the run a nemesis kills the whole server with SIGKILL and starts it
again, and on PostgreSQL also terminates the server's backends (``pg_terminate_backend``
on the test database, only connections carrying this run's application name); the
last 40 % runs without it, and the server's memory is sampled then (RELIABILITY S10).

What counts as a failure, precisely: an answer of 500 or more, or no answer (refused
or dropped connection, timeout). It is allowed only when the request overlaps a
nemesis window: from just before a SIGKILL until the restarted server answers, or
from just before ``pg_terminate_backend`` until it returned. The client then repeats
the same request (a payout with the same key) until it gets a definite answer (below
500, and not ``request_in_progress``); a failure outside every window, or one never
resolved, is a violation. Checked every few seconds and at the end, in one snapshot
of the database: no entitlement with two live payout lines; an entitlement is paid
exactly when it has one live line of its amount; Σ due = Σ paid + Σ unpaid; every
payout answered 201 is there with its receipt number and amount, and nothing else
is; every reversal answered 200 is reversed; one audit event per payout and per
reversal; the audit chain verifies. Memory: the server's RSS (master and workers,
from /proc), after a quarter of warm-up, has a last-quarter median at most 1.5 times
its first-quarter median.

TERMINAL_SOAK_SEED replays a run's choices (the seed is printed, and named in every
failure); TERMINAL_SOAK_SECONDS sets its length: 36 s by default, 3600 s under
TERMINAL_SOAK=1 (``make soak``). Run alone to read its figures:

    .venv/bin/python -m pytest tests/soak -n0 -s
    TERMINAL_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test \\
        .venv/bin/python -m pytest tests/soak -n0 -s
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

from terminal.clock import today_local
from terminal.db import make_engine
from terminal.models import (
    AuditEvent,
    Entitlement,
    EntitlementStatus,
    Payout,
    PayoutLine,
    PayoutStatus,
    Receipt,
    User,
)
from terminal.services.audit import verify_chain
from terminal.services.cash import set_cash_float
from terminal.services.errors import ServiceError
from tests.conftest import PG_URL, SECRET
from tests.factories import PASSWORD, make_beneficiary, make_point, make_user, set_float
from tests.servers import SCRIPT, free_port

SOAK = os.environ.get("TERMINAL_SOAK") == "1"
SECONDS = float(os.environ.get("TERMINAL_SOAK_SECONDS") or (3600 if SOAK else 36))
SEED = int(os.environ.get("TERMINAL_SOAK_SEED") or random.SystemRandom().randrange(2**32))
CLIENTS = 8
PEOPLE = 60
NEMESIS_SHARE = 0.6  # of the run; the rest is the quiet phase where memory is sampled
CHECK_EVERY = 3.0 if SECONDS < 300 else 30.0
RESOLVE_SECONDS = 90.0  # a request not answered for this long after its first try: violation
REASON = "Soak: trả nhầm người, hoàn lại"


def _replay() -> str:
    return f"TERMINAL_SOAK_SEED={SEED} TERMINAL_SOAK_SECONDS={SECONDS:g}"


def _receipt(answer: Any) -> Any:
    """Return what identifies an answer to a payout: its receipt, or its refusal."""
    if not isinstance(answer, dict):
        return answer
    return answer.get("receipt_no") or answer.get("error")


class Unanswered(Exception):
    """No HTTP answer: the connection was refused, dropped or timed out."""


def http_call(
    port: int,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    """Make one request on a new connection; return (status, JSON or bytes)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    if key:
        headers["Idempotency-Key"] = key
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(
            method, path, body=json.dumps(body) if body is not None else None, headers=headers
        )
        response = connection.getresponse()
        payload = response.read()
    except (OSError, http.client.HTTPException) as exc:
        raise Unanswered(f"{type(exc).__name__}: {exc}") from None
    finally:
        connection.close()
    if response.getheader("Content-Type", "").startswith("application/json"):
        return response.status, json.loads(payload or b"{}")
    return response.status, payload


class Server:
    """``payout-terminal serve`` in its own process group, so SIGKILL takes it whole."""

    def __init__(self, env: dict[str, str], port: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start the server and wait until it answers."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(self.port), "--workers", "2"],
                env=self.env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        self.starts += 1
        deadline = time.monotonic() + 60
        while True:
            try:
                status, _ = http_call(self.port, "GET", "/login")
                if status == 200:
                    return
            except Unanswered:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"server did not start: {self.log()[-2000:]}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the master and every worker at once, as a power cut would."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        """Kill the server at the end of the run: everything is checked by then, and a
        graceful stop spends seconds in each worker's final garbage collection."""
        if self.process is not None and self.process.poll() is None:
            self.kill()

    def rss_kib(self) -> int:
        """Return the resident memory of the master and its workers, in KiB."""
        assert self.process is not None
        pids = [self.process.pid]
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            pids += [int(pid) for pid in children.read_text().split()]
        except OSError:
            return 0
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue  # a worker that just exited
        return total

    def log(self) -> str:
        """Return what the server has logged so far, across restarts."""
        return self.log_path.read_text(errors="replace")


@dataclass
class Window:
    """A time when the nemesis may have made requests fail."""

    kind: str
    start: float
    end: float | None = None


@dataclass
class Payment:
    """A payout some client was answered 201 for."""

    receipt_no: str
    amount: int
    entitlement_ids: list[int]
    token: str


@dataclass
class Run:
    """What every thread shares: the ledger of answers, the windows and the violations."""

    port: int
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    windows: list[Window] = field(default_factory=list)
    failures: list[tuple[float, float, str, str]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    paid: dict[int, Payment] = field(default_factory=dict)
    reversed: set[int] = field(default_factory=set)
    tally: Counter[str] = field(default_factory=Counter)

    def violate(self, message: str) -> None:
        """Record a broken invariant (the run goes on; the test fails at its end)."""
        with self.lock:
            self.violations.append(message)

    def count(self, what: str) -> None:
        """Count an outcome for the run's summary."""
        with self.lock:
            self.tally[what] += 1

    def unexplained_failures(self) -> list[tuple[float, float, str, str]]:
        """Return failures that overlap no nemesis window."""
        now = time.monotonic()
        with self.lock:
            windows = list(self.windows)
            failures = list(self.failures)
        return [
            (t0, t1, op, what)
            for t0, t1, op, what in failures
            if not any(
                w.start <= t1 and (w.end if w.end is not None else now) >= t0 for w in windows
            )
        ]


class Client(threading.Thread):
    """One clerk at the counter, with a supervisor nearby for reversals."""

    def __init__(self, run: Run, n: int, token: str, supervisor: str, people: list) -> None:
        super().__init__(name=f"soak-client-{n}", daemon=True)
        self.run_state = run
        self.n = n
        self.token = token
        self.supervisor = supervisor
        self.people = people
        self.rng = random.Random(f"{SEED}-{n}")
        self.jitter = random.Random()  # retry pauses: timing, not choices
        self.made = 0

    def call(self, op: str, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        """Make a request until it gets a definite answer; record each failure on the way."""
        run = self.run_state
        first = time.monotonic()
        tries = 0
        while True:
            tries += 1
            t0 = time.monotonic()
            try:
                status, payload = http_call(run.port, method, path, body, **kw)
            except Unanswered as exc:
                status, payload = None, str(exc)
            t1 = time.monotonic()
            in_progress = (
                status == 409
                and isinstance(payload, dict)
                and payload.get("error") == "request_in_progress"
            )
            if status is not None and status < 500 and not in_progress:
                if tries > 1:
                    run.count(f"{op}: resolved by retry")
                return status, payload
            if not in_progress:
                what = f"{status} {str(payload)[:160]}" if status else f"no answer: {payload}"
                with run.lock:
                    run.failures.append((t0, t1, op, what))
                    kind = payload.get("error") if isinstance(payload, dict) else None
                    run.tally[f"failed try: {status or 'no answer'} {kind or ''}".strip()] += 1
            if time.monotonic() - first > RESOLVE_SECONDS:
                run.violate(f"{op} {method} {path}: never answered definitely ({status})")
                return None, None
            time.sleep(0.05 + self.jitter.random() * 0.2)

    def run(self) -> None:
        """Run operations until the run ends."""
        ops = ["pay"] * 40 + ["read"] * 30 + ["verify"] * 15 + ["reverse"] * 10
        ops += ["check_receipt"] * 5
        while not self.run_state.stop.is_set():
            op = self.rng.choice(ops)
            try:
                getattr(self, op)()
            except Exception as exc:  # a bug of the test itself must not hang the run
                self.run_state.violate(f"client {self.n} {op}: {type(exc).__name__}: {exc}")
                return

    def _key(self) -> str:
        self.made += 1
        return f"soak-{SEED}-{self.n}-{self.made}-{uuid.uuid4().hex[:8]}"

    def _verify(self, code: str, id_number: str) -> int | None:
        status, body = self.call(
            "verify",
            "POST",
            "/api/v1/verifications",
            {"beneficiary_code": code, "collector": "beneficiary", "id_number": id_number},
            token=self.token,
        )
        if status != 201:
            self.run_state.violate(f"verification of {code} answered {status}: {body}")
            return None
        return body["verification_id"]

    def pay(self) -> None:
        """Pay some of a person's due entitlements; sometimes one already paid (409)."""
        run = self.run_state
        code, id_number = self.rng.choice(self.people)
        status, detail = self.call(
            "detail", "GET", f"/api/v1/beneficiaries/{code}", token=self.token
        )
        if status != 200:
            run.violate(f"file of {code} answered {status}")
            return
        entitlements = detail["entitlements"]
        due = [e for e in entitlements if e["status"] == "due"]
        paid = [e for e in entitlements if e["status"] == "paid"]
        if paid and (not due or self.rng.random() < 0.15):
            chosen = [self.rng.choice(paid)]  # a second payout: 409 already_paid
        else:
            chosen = self.rng.sample(due, self.rng.randint(1, len(due)))
        verification_id = self._verify(code, id_number)
        if verification_id is None:
            return
        body = {
            "verification_id": verification_id,
            "entitlement_ids": [e["id"] for e in chosen],
            "channel": "cash",
        }
        key = self._key()
        status, answer = self.call(
            "pay", "POST", "/api/v1/payouts", body, token=self.token, key=key
        )
        if status is None:
            return
        self._record(body, chosen, status, answer)
        if self.rng.random() < 0.2:  # the same request again: the first answer, word for word
            again, replayed = self.call(
                "pay", "POST", "/api/v1/payouts", body, token=self.token, key=key
            )
            if (again, _receipt(replayed)) != (status, _receipt(answer)):
                run.violate(f"key {key}: {status} {answer} then {again} {replayed}")
            run.count("pay: replayed")

    def _record(self, body: dict, chosen: list, status: int, answer: Any) -> None:
        run = self.run_state
        if status == 201:
            amount = sum(e["amount"] for e in chosen)
            if answer["amount"] != amount or sorted(answer["entitlement_ids"]) != sorted(
                body["entitlement_ids"]
            ):
                run.violate(f"payout answer does not match its request: {body} -> {answer}")
            token = answer["receipt_verify_url"].rsplit("/r/", 1)[1]
            with run.lock:
                if answer["payout_id"] in run.paid:
                    run.violations.append(f"payout {answer['payout_id']} answered 201 twice")
                run.paid[answer["payout_id"]] = Payment(
                    answer["receipt_no"], amount, sorted(answer["entitlement_ids"]), token
                )
            run.count("pay: 201")
        elif status == 409 and answer.get("error") == "already_paid":
            run.count("pay: 409 already_paid")
        else:
            run.violate(f"payout {body} answered {status}: {answer}")

    def check_receipt(self) -> None:
        """Check a receipt's QR token as anyone may (public, rate-limited: 429 is fine)."""
        run = self.run_state
        with run.lock:
            live = sorted(pid for pid in run.paid if pid not in run.reversed)
        if not live:
            return self.pay()
        payment = run.paid[self.rng.choice(live)]
        status, body = self.call(
            "receipt-verify",
            "GET",
            "/api/v1/receipts/verify?token=" + urllib.parse.quote(payment.token),
        )
        if status == 429:
            run.count("receipt-verify: 429 (rate limit)")
            return
        if status != 200 or not body.get("valid") or body["receipt_no"] != payment.receipt_no:
            run.violate(f"receipt {payment.receipt_no} checked as {status} {body}")
            return
        run.count("receipt-verify: valid")

    def read(self) -> None:
        """Search, read the payout log, or fetch a receipt's PDF."""
        run = self.run_state
        choice = self.rng.random()
        if choice < 0.4:
            code, _ = self.rng.choice(self.people)
            query = code if self.rng.random() < 0.5 else "nguyen van"
            status, body = self.call(
                "search",
                "GET",
                "/api/v1/beneficiaries?q=" + urllib.parse.quote(query),
                token=self.token,
            )
            if status != 200 or not body["items"]:
                run.violate(f"search {query!r} answered {status}: {str(body)[:200]}")
            run.count("search")
        elif choice < 0.7:
            status, body = self.call("log", "GET", "/api/v1/payouts?limit=20", token=self.token)
            if status != 200 or not isinstance(body.get("items"), list):
                run.violate(f"payout log answered {status}: {str(body)[:200]}")
            run.count("payout log")
        else:
            with run.lock:
                known = sorted(run.paid)
            if not known:
                return
            payment = run.paid[self.rng.choice(known)]
            status, body = self.call(
                "receipt-pdf", "GET", f"/api/v1/receipts/{payment.receipt_no}.pdf", token=self.token
            )
            if status != 200 or not isinstance(body, bytes) or not body.startswith(b"%PDF"):
                run.violate(f"receipt {payment.receipt_no} PDF answered {status}")
            run.count("receipt pdf")

    def verify(self) -> None:
        """Check a collector's identity: the right ID number (201) or a wrong one (422)."""
        run = self.run_state
        code, id_number = self.rng.choice(self.people)
        wrong = self.rng.random() < 0.3
        typed = id_number[:-1] + str((int(id_number[-1]) + 1) % 10) if wrong else id_number
        status, body = self.call(
            "verify",
            "POST",
            "/api/v1/verifications",
            {"beneficiary_code": code, "collector": "beneficiary", "id_number": typed},
            token=self.token,
        )
        if status != (422 if wrong else 201):
            run.violate(f"verification of {code} (wrong={wrong}) answered {status}: {body}")
        run.count(f"verify: {status}")

    def reverse(self) -> None:
        """A supervisor reverses a payout: its entitlements are due again."""
        run = self.run_state
        with run.lock:
            live = sorted(pid for pid in run.paid if pid not in run.reversed)
        if not live:
            return self.pay()
        payout_id = self.rng.choice(live)
        status, body = self.call(
            "reverse",
            "POST",
            f"/api/v1/payouts/{payout_id}/reversal",
            {"reason": REASON},
            token=self.supervisor,
        )
        if status == 200:
            if sorted(body["entitlement_ids"]) != run.paid[payout_id].entitlement_ids:
                run.violate(f"reversal of {payout_id} names other entitlements: {body}")
            with run.lock:
                run.reversed.add(payout_id)
            run.count("reverse: 200")
        elif status == 409 and body.get("error") == "already_reversed":
            # Another supervisor was first, or our own answer was lost to the nemesis.
            with run.lock:
                run.reversed.add(payout_id)
            run.count("reverse: 409 already_reversed")
        else:
            run.violate(f"reversal of {payout_id} answered {status}: {body}")


class Nemesis(threading.Thread):
    """Kill the server, or its database connections, at seeded random times."""

    def __init__(self, run: Run, server: Server, until: float, backend_app: str | None) -> None:
        super().__init__(name="soak-nemesis", daemon=True)
        self.run_state = run
        self.server = server
        self.until = until
        self.backend_app = backend_app
        self.rng = random.Random(f"{SEED}-nemesis")
        self.error: BaseException | None = None
        self.admin = create_engine(PG_URL, pool_size=1) if backend_app else None

    def _window(self, kind: str) -> Window:
        window = Window(kind, time.monotonic())
        with self.run_state.lock:
            self.run_state.windows.append(window)
        return window

    def run(self) -> None:
        """Strike every 2-5 s until the nemesis phase ends; leave the server running."""
        strikes = 0
        try:
            while True:
                pause = self.rng.uniform(2.0, 5.0)
                if time.monotonic() + pause >= self.until:
                    return
                time.sleep(pause)
                # The first strike kills the server and, on PostgreSQL, the second ends
                # its connections: every run proves both; then either, at random.
                strikes += 1
                terminate = strikes == 2 or (strikes > 2 and self.rng.random() < 0.5)
                if self.backend_app and terminate:
                    window = self._window("terminate")
                    with self.admin.begin() as conn:  # type: ignore[union-attr]
                        ended = conn.execute(
                            text(
                                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() AND application_name = :app"
                            ),
                            {"app": self.backend_app},
                        ).scalar_one()
                    window.end = time.monotonic()
                    self.run_state.count(f"nemesis: backends terminated ({ended})")
                else:
                    window = self._window("kill")
                    self.server.kill()
                    time.sleep(self.rng.uniform(0.0, 1.0))
                    self.server.start()
                    window.end = time.monotonic()
                    self.run_state.count("nemesis: server killed and restarted")
        except BaseException as exc:  # pragma: no cover - reported by the test
            self.error = exc
        finally:
            if self.admin is not None:
                self.admin.dispose()


def check_database(engine: Any, run: Run) -> list[str]:
    """Check the money invariants in one snapshot of the database; return what is broken."""
    with run.lock:
        paid = dict(run.paid)
        reversed_ = set(run.reversed)
    problems: list[str] = []
    with engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            lines = PayoutLine.__table__
            ents = Entitlement.__table__
            live = select(lines.c.entitlement_id, lines.c.amount_vnd).where(
                lines.c.reversed_at.is_(None)
            )
            live_rows = conn.execute(live).all()
            live_by_entitlement = Counter(row.entitlement_id for row in live_rows)
            twice = [e for e, n in live_by_entitlement.items() if n > 1]
            if twice:
                problems.append(f"entitlements with two live payout lines: {twice}")
            live_amount = {row.entitlement_id: row.amount_vnd for row in live_rows}
            all_due = 0
            unpaid = 0
            for row in conn.execute(select(ents.c.id, ents.c.status, ents.c.amount_vnd)):
                all_due += row.amount_vnd
                if row.status == EntitlementStatus.PAID:
                    if live_amount.get(row.id) != row.amount_vnd:
                        problems.append(
                            f"entitlement {row.id} paid, live line {live_amount.get(row.id)}"
                        )
                elif row.status == EntitlementStatus.DUE:
                    unpaid += row.amount_vnd
                    if row.id in live_amount:
                        problems.append(f"entitlement {row.id} due with a live payout line")
                else:
                    problems.append(f"entitlement {row.id} is {row.status}")
            if all_due != sum(live_amount.values()) + unpaid:
                problems.append(
                    f"Σ due {all_due} != Σ paid {sum(live_amount.values())} + Σ unpaid {unpaid}"
                )
            payouts = {
                row.id: row
                for row in conn.execute(
                    select(Payout.id, Payout.status, Payout.amount_vnd, Receipt.receipt_no).join(
                        Receipt, Receipt.payout_id == Payout.id
                    )
                )
            }
            line_rows = conn.execute(
                select(
                    lines.c.payout_id,
                    lines.c.entitlement_id,
                    lines.c.amount_vnd,
                    lines.c.reversed_at,
                )
            ).all()
            by_payout: dict[int, list] = {}
            for row in line_rows:
                by_payout.setdefault(row.payout_id, []).append(row)
            for payout_id, payout in payouts.items():
                its = by_payout.get(payout_id, [])
                if sum(r.amount_vnd for r in its) != payout.amount_vnd:
                    problems.append(f"payout {payout_id}: lines do not add up to its amount")
                if payout.status == PayoutStatus.COMPLETED and any(r.reversed_at for r in its):
                    problems.append(f"payout {payout_id} completed with a reversed line")
                if payout.status == PayoutStatus.REVERSED and any(
                    r.reversed_at is None for r in its
                ):
                    problems.append(f"payout {payout_id} reversed with a live line")
            for payout_id, payment in paid.items():
                found = payouts.get(payout_id)
                if found is None:
                    problems.append(f"payout {payout_id} answered 201 is missing")
                elif (found.receipt_no, found.amount_vnd) != (payment.receipt_no, payment.amount):
                    problems.append(f"payout {payout_id} answered 201 differs: {found}")
            for payout_id in reversed_:
                found = payouts.get(payout_id)
                if found is None or found.status != PayoutStatus.REVERSED:
                    problems.append(f"payout {payout_id} answered reversed is {found}")
            events = Counter(
                dict(
                    conn.execute(
                        select(AuditEvent.action, func.count())
                        .where(AuditEvent.action.in_(["payout.recorded", "payout.reversed"]))
                        .group_by(AuditEvent.action)
                    ).all()
                )
            )
            reversed_count = sum(1 for p in payouts.values() if p.status == PayoutStatus.REVERSED)
            if (events["payout.recorded"], events["payout.reversed"]) != (
                len(payouts),
                reversed_count,
            ):
                problems.append(
                    f"audit events {dict(events)} for {len(payouts)} payouts, "
                    f"{reversed_count} reversed"
                )
    return problems


def check_chain(session: Any) -> list[str]:
    """Verify the audit chain; return what is broken."""
    session.rollback()
    report = verify_chain(session)
    session.rollback()
    return [] if report.ok else [f"audit chain broken: {report}"]


@pytest.fixture
def counter_point(session):
    """One point, its 8 clerks and 2 supervisors, and 60 people owed two months each."""
    point = make_point(session, "HTBD")
    for n in range(2):
        make_user(session, f"sup{n}", "supervisor", point="HTBD")
    for n in range(CLIENTS):
        make_user(session, f"clerk{n}", "clerk", point="HTBD")
    set_float(session, "HTBD", 10**13)
    supervisor = session.scalar(select(User).where(User.username == "sup0"))
    try:  # a run across Vietnam's midnight pays from the next day's float
        set_cash_float(session, supervisor, advance_vnd=10**13, day=today_local() + timedelta(1))
    except ServiceError:
        session.rollback()
    people = []
    for n in range(PEOPLE):
        id_number = f"0461700{n:05d}"
        person = make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=point.communes[n % len(point.communes)],
            id_number=id_number,
            full_name=("Nguyễn Văn An", "Lê Thị Hương", "Nguyễn Văn Bình")[n % 3],
            periods=(("2021-10", 0), ("2021-11", 50_000 * (n % 4))),
        )
        people.append((person.code, id_number))
    return people


@pytest.mark.slow
def test_mixed_load_with_a_nemesis_breaks_no_invariant(counter_point, session, db_url, tmp_path):
    print(f"\nsoak: {_replay()}")
    name = f"soak_{uuid.uuid4().hex[:10]}"
    server_url = db_url
    if PG_URL:  # the nemesis terminates only the backends of this run's server
        server_url = (
            make_url(db_url)
            .update_query_dict({"application_name": name})
            .render_as_string(hide_password=False)
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=server_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
    )
    port = free_port()
    server = Server(env, port, tmp_path / "server.log")
    run = Run(port=port)
    engine = make_engine(db_url)
    server.start()
    started = time.monotonic()
    quiet_from = started + SECONDS * NEMESIS_SHARE
    ends = started + SECONDS
    try:
        tokens = {}
        for user in [f"clerk{n}" for n in range(CLIENTS)] + ["sup0", "sup1"]:
            status, body = http_call(
                port, "POST", "/api/v1/tokens", {"username": user, "password": PASSWORD}
            )
            assert status == 201, body
            tokens[user] = body["token"]
        clients = [
            Client(run, n, tokens[f"clerk{n}"], tokens[f"sup{n % 2}"], counter_point)
            for n in range(CLIENTS)
        ]
        nemesis = Nemesis(run, server, quiet_from, name if PG_URL else None)
        for thread in [*clients, nemesis]:
            thread.start()
        next_check = time.monotonic() + CHECK_EVERY
        while time.monotonic() < quiet_from:
            time.sleep(0.2)
            if time.monotonic() >= next_check:
                for problem in check_database(engine, run) + check_chain(session):
                    run.violate(f"during the run: {problem}")
                next_check = time.monotonic() + CHECK_EVERY
        nemesis.join(timeout=120)
        assert not nemesis.is_alive(), f"the nemesis did not stop ({_replay()})"
        assert nemesis.error is None, f"nemesis: {nemesis.error!r} ({_replay()})"
        # The quiet phase: the same load, no nemesis; the server's memory is sampled.
        samples: list[int] = []
        while time.monotonic() < ends:
            samples.append(server.rss_kib())
            time.sleep(0.25)
            if time.monotonic() >= next_check:
                for problem in check_database(engine, run) + check_chain(session):
                    run.violate(f"during the run: {problem}")
                next_check = time.monotonic() + CHECK_EVERY
        run.stop.set()
        for client in clients:
            client.join(timeout=RESOLVE_SECONDS + 60)
            assert not client.is_alive(), f"client {client.n} did not stop ({_replay()})"
        final = check_database(engine, run) + check_chain(session)
        log = server.log()
    finally:
        run.stop.set()
        server.stop()
        engine.dispose()

    unexplained = run.unexplained_failures()
    summary = dict(sorted(run.tally.items()))
    print(f"soak: {time.monotonic() - started:.0f} s, {server.starts} server starts, {summary}")
    print(f"soak: {len(run.failures)} failed tries, {len(unexplained)} outside the nemesis")
    assert not run.violations, f"{run.violations[:20]} ({_replay()})"
    assert not unexplained, f"failures outside the nemesis: {unexplained[:10]} ({_replay()})"
    assert not final, f"{final[:20]} ({_replay()})"
    assert "database is locked" not in log, _replay()
    # The load did what it says: payouts, reversals, reads and refusals all happened.
    for what in ("pay: 201", "pay: 409 already_paid", "reverse: 200", "search", "verify: 422"):
        assert run.tally[what] > 0, f"no {what!r} in {summary} ({_replay()})"
    assert server.starts > 1, f"the nemesis never killed the server ({_replay()})"
    # Memory is flat: after a quarter of warm-up, the last quarter's median is within
    # 1.5 times the first quarter's.
    samples = [s for s in samples if s > 0]
    assert len(samples) >= 16, samples
    measured = samples[len(samples) // 4 :]
    quarter = max(1, len(measured) // 4)
    first = statistics.median(measured[:quarter])
    last = statistics.median(measured[-quarter:])
    print(f"soak: server RSS median {first / 1024:.0f} MiB -> {last / 1024:.0f} MiB")
    assert last <= 1.5 * first, f"server memory grew {first} -> {last} KiB ({_replay()})"
