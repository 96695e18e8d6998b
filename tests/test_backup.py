"""Backup while paying, restore into a new database (RELIABILITY S21).

A real terminal server pays over HTTP in a thread while ``payout-terminal backup`` runs
as its own process; the backup is restored into a brand-new database (a new SQLite
file, or a new PostgreSQL database) by ``payout-terminal restore`` (in this process,
through the console script's own body, like ``verify-receipt`` after it). Every payout
answered 201 before the backup started is in the copy, none answered after it ended
is, the audit chain verifies and the receipts' signatures check against the copy.
Refusals change nothing: an existing file, a database holding data, a damaged file.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select, text, update
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from terminal import cli, create_app
from terminal.db import get_engine, make_engine, new_session
from terminal.models import AuditEvent, Payout, Receipt
from terminal.schema import upgrade
from terminal.services import receipts
from terminal.services.audit import verify_chain
from tests.audit_tamper import guards_off
from tests.conftest import PG_URL, SECRET
from tests.factories import PASSWORD, make_beneficiary, make_point, make_user, set_float
from tests.servers import SCRIPT, free_port, served

PEOPLE = 30
HELD = 5  # people paid only after the backup has ended


@pytest.fixture(scope="module")
def new_database(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[[str], str]]:
    """Return a maker of brand-new databases: a SQLite file, or a PostgreSQL database.

    Dropped together at the module's end: each DROP DATABASE waits for a checkpoint,
    and one checkpoint after the others costs little.
    """
    folder = tmp_path_factory.mktemp("backup-databases")
    made: list[str] = []
    admin = (
        create_engine(
            make_url(PG_URL).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
        )
        if PG_URL
        else None
    )

    def make(label: str) -> str:
        if admin is None:
            return f"sqlite:///{folder / f'{label}.db'}"
        name = f"p10_backup_{label}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        made.append(name)
        url = make_url(PG_URL).set(drivername="postgresql+psycopg", database=name)
        return url.render_as_string(hide_password=False)

    yield make
    if admin is not None:
        with admin.connect() as conn:
            for name in made:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _env(url: str, tmp_path: Path) -> dict[str, str]:
    """The environment of a terminal process on a database, nothing of the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
    )
    return env


def _owed(url: str, people: int) -> list[str]:
    """Migrate a database and give it a point, a clerk and people owed one payment each."""
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        point = make_point(session, "HTBD")
        make_user(session, "sup", "supervisor", point="HTBD")
        make_user(session, "clerk", "clerk", point="HTBD")
        codes = [
            make_beneficiary(
                session, f"TTH{n:07d}", commune=point.communes[0], id_number=f"0461600{n:05d}"
            ).code
            for n in range(people)
        ]
        set_float(session, "HTBD", 10**12)
    engine.dispose()
    return codes


def _call(base: str, method: str, path: str, body: Any = None, token: str | None = None) -> Any:
    """Make one API call; return (status, json)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if path == "/api/v1/payouts":
        request.add_header("Idempotency-Key", str(uuid.uuid4()))
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


class Payer(threading.Thread):
    """Pay every person in turn over HTTP, noting each payout answered 201, in order.

    The last ``held`` people are paid only once ``release`` is set (after the backup).
    """

    def __init__(self, base: str, codes: list[str], held: int) -> None:
        super().__init__(daemon=True)
        self.base, self.codes, self.held = base, codes, held
        self.answered: list[dict[str, Any]] = []
        self.failures: list[Any] = []
        self.lock = threading.Lock()
        self.release = threading.Event()

    def count(self) -> int:
        with self.lock:
            return len(self.answered)

    def run(self) -> None:
        try:
            login = {"username": "clerk", "password": PASSWORD}
            token = _call(self.base, "POST", "/api/v1/tokens", login)[1]["token"]
            for n, code in enumerate(self.codes):
                if n == len(self.codes) - self.held:
                    self.release.wait(timeout=300)
                person = _call(self.base, "GET", f"/api/v1/beneficiaries/{code}", token=token)[1]
                check = {
                    "beneficiary_code": code,
                    "collector": "beneficiary",
                    "id_number": f"0461600{n:05d}",
                }
                status, verified = _call(
                    self.base, "POST", "/api/v1/verifications", check, token=token
                )
                assert status == 201, verified
                pay = {
                    "verification_id": verified["verification_id"],
                    "entitlement_ids": [person["entitlements"][0]["id"]],
                    "channel": "cash",
                }
                status, paid = _call(self.base, "POST", "/api/v1/payouts", pay, token=token)
                if status != 201:
                    self.failures.append((code, status, paid))
                    continue
                with self.lock:
                    self.answered.append(paid)
        except Exception as exc:  # reported by the test, not lost in the thread
            self.failures.append(repr(exc))


def _payouts_and_events(url: str) -> tuple[set[str], set[str]]:
    """Return the receipt numbers and the audit actions a database holds."""
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            numbers = list(session.scalars(select(Receipt.receipt_no)))
            assert len(numbers) == len(set(numbers)), "a receipt number twice"
            actions = set(session.scalars(select(AuditEvent.action).distinct()))
            return set(numbers), actions
    finally:
        engine.dispose()


def test_backup_while_paying_restores_every_answered_payout(new_database, tmp_path):
    source = new_database("source")
    codes = _owed(source, PEOPLE)
    backup_file = tmp_path / "copy.backup"
    with served(_env(source, tmp_path), port=free_port(), workers=1) as server:
        payer = Payer(server.base, codes, held=HELD)
        payer.start()
        while payer.count() < 10 and payer.is_alive():
            payer.join(timeout=0.05)
        before = [p["receipt_no"] for p in payer.answered[: payer.count()]]
        made = subprocess.run(
            [str(SCRIPT), "backup", str(backup_file)],
            env=_env(source, tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
        )
        after_start = payer.count()
        # The held people are paid once the backup has ended: none may be in the copy.
        payer.release.set()
        payer.join(timeout=120)
        log = server.log()
    assert made.returncode == 0, made.stderr
    assert not payer.failures, payer.failures
    assert "Traceback" not in log, log[-3000:]
    assert made.stdout.startswith(f"backup written to {backup_file} ("), made.stdout
    ended_after = [p["receipt_no"] for p in payer.answered[after_start:]]
    assert len(before) >= 10 and len(ended_after) >= HELD
    assert after_start > len(before)  # the terminal kept paying while the backup ran

    target = new_database("restored")
    restored = _run(target, tmp_path, "restore", str(backup_file))
    assert restored.returncode == 0, restored.stderr
    assert "audit chain intact" in restored.stdout, restored.stdout

    numbers, actions = _payouts_and_events(target)
    assert set(before) <= numbers  # every payout answered before the backup began
    assert not numbers & set(ended_after)  # a snapshot: nothing answered after it ended
    assert f": {len(numbers)} payouts," in made.stdout  # the summary counts the copy
    assert "backup.written" in actions  # committed before the copy was taken
    assert "backup.written" in _payouts_and_events(source)[1]

    # The receipts' signatures check against the restored database, with the same key.
    settings = {"DATABASE_URL": target, "SECRET_KEY": SECRET, "RECEIPTS_DIR": str(tmp_path)}
    app = create_app(settings)
    tokens = [p["receipt_verify_url"].rsplit("/r/", 1)[1] for p in payer.answered[: len(before)]]
    session = new_session(app)
    try:
        assert verify_chain(session).ok
        restored_count = session.scalar(select(func.count(Payout.id)))
        assert restored_count == len(numbers)
        for paid, token in zip(payer.answered, tokens, strict=False):
            check = receipts.check_token(session, app, token)
            assert check.valid and check.receipt_no == paid["receipt_no"], paid
        # After a key rotation they stay genuine only with the retired public key kept.
        retired = tmp_path / "receipt-key-retired.pem"
        retired.write_text(receipts.public_key(app))
        rotated = {**settings, "SECRET_KEY": "rotated-key-" + "r" * 40}
        for kept, genuine in ((None, False), (str(retired), True)):
            after = create_app({**rotated, "RETIRED_RECEIPT_KEYS": kept})
            try:
                assert all(receipts.check_token(session, after, t).valid is genuine for t in tokens)
            finally:
                get_engine(after).dispose()
    finally:
        session.close()
        get_engine(app).dispose()
    genuine = _run(target, tmp_path, "verify-receipt", payer.answered[0]["receipt_verify_url"])
    assert genuine.returncode == 0, genuine.stdout + genuine.stderr
    assert genuine.stdout.startswith(f"GENUINE: {payer.answered[0]['receipt_no']}, ")


# ---- refusals: in process, through the console script's own body ----------------------


def _run(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a command line in this process as the console script does."""
    apps: list[Any] = []

    def factory() -> Any:
        app = cli._app_for_cli()
        apps.append(app)
        return app

    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TERMINAL_")}
    env.update(_env(url, tmp_path))
    runner = CliRunner()
    try:
        with runner.isolation(env=env) as (out, err, _):
            code = cli.run(list(args), app_factory=factory)
    finally:
        for app in apps:
            get_engine(app).dispose()
    return subprocess.CompletedProcess(args, code, out.getvalue().decode(), err.getvalue().decode())


def _counts(url: str) -> tuple[int, int]:
    """Return how many payouts and audit events a database holds (0, 0 if it has no schema)."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            try:
                payouts = conn.execute(text("SELECT count(*) FROM payouts")).scalar_one()
                events = conn.execute(text("SELECT count(*) FROM audit_events")).scalar_one()
            except Exception:
                return (0, 0)
            return (payouts, events)
    finally:
        engine.dispose()


def test_refusals_change_nothing(new_database, tmp_path):
    source = new_database("src")
    _owed(source, 2)
    existing = tmp_path / "existing.backup"
    existing.write_bytes(b"keep me")
    before = _counts(source)

    refused = _run(source, tmp_path, "backup", str(existing))
    assert refused.returncode == 1
    assert refused.stderr == f"Error: {existing} already exists; give --force to overwrite it\n"
    assert existing.read_bytes() == b"keep me"
    assert _counts(source) == before  # refused before its audit event: no trace, no copy

    good = tmp_path / "good.backup"
    made = _run(source, tmp_path, "backup", str(good))
    assert made.returncode == 0, made.stderr
    assert not Path(f"{good}.part").exists()
    written = _counts(source)
    assert written == (before[0], before[1] + 1)  # backup.written

    # A database that holds data is not overwritten without --force.
    refused = _run(source, tmp_path, "restore", str(good))
    assert refused.returncode == 1
    assert "already holds data" in refused.stderr and "--force" in refused.stderr
    assert refused.stderr.count("\n") == 1
    assert _counts(source) == written

    target = new_database("empty")
    for damaged, reason in (
        (good.read_bytes()[: good.stat().st_size // 2], "is damaged"),
        (b"payout,amount\n1,540000\n", "is not a backup of the terminal"),
    ):
        bad = tmp_path / "bad.backup"
        bad.write_bytes(damaged)
        refused = _run(target, tmp_path, "restore", str(bad))
        assert refused.returncode == 1, refused.stdout
        assert reason in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr
        assert _counts(target) == (0, 0)

    # --force replaces a filled database with the backup's contents.
    forced = _run(source, tmp_path, "restore", "--force", str(good))
    assert forced.returncode == 0, forced.stderr
    # The copy holds its own backup.written event: committed before the copy was taken.
    assert _counts(source) == written
    assert "audit chain intact" in forced.stdout


def test_restore_of_a_broken_chain_exits_with_the_first_bad_sequence(new_database, tmp_path):
    source = new_database("tampered")
    _owed(source, 1)
    engine = make_engine(source)
    with engine.begin() as conn, guards_off(conn):
        conn.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(actor="intruder"))
    engine.dispose()
    copy = tmp_path / "tampered.backup"
    assert _run(source, tmp_path, "backup", str(copy)).returncode == 0

    restored = _run(new_database("fresh"), tmp_path, "restore", str(copy))
    assert restored.returncode == 1
    assert restored.stderr.startswith("Error: restored ")
    assert restored.stderr.endswith("audit chain broken at sequence 3\n")
