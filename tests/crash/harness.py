"""Crashing a served terminal on purpose, and the checks that must hold afterwards.

``CrashServer`` runs the real ``payout-terminal serve`` (one gunicorn worker) with
``tests/crash/site`` on ``PYTHONPATH``, whose ``sitecustomize`` kills the whole
server with SIGKILL at a named step of a request (see its docstring). ``check``
then proves RELIABILITY S05 on the database the crashes left behind.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from tests.servers import SCRIPT, free_port

SITE = Path(__file__).parent / "site"
SOAK = os.environ.get("TERMINAL_SOAK") == "1"
# The transaction points of sitecustomize, in the order a request reaches them; the
# first ones never commit, the last two always do.
NOT_LANDED = ("begin", "flush", "insert", "commit_before")
LANDED = ("commit_after", "after_commit")
RECEIPT_POINTS = ("receipt_render", "receipt_write")


@dataclass
class Answer:
    """What a call got: a status and a JSON body, or nothing (the server died)."""

    status: int | None
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes = b""

    @property
    def lost(self) -> bool:
        """Tell whether the connection died without an answer."""
        return self.status is None


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    *,
    token: str | None = None,
    key: str | None = None,
    crash: str | None = None,
    timeout: float = 60,
) -> Answer:
    """Make one API call; a connection that dies is an answer with no status."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    if crash:
        request.add_header("X-Terminal-Crash-At", crash)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            raw = response.read()
            status, headers = response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, headers = error.read(), error.code, dict(error.headers)
    except (ConnectionError, HTTPException, urllib.error.URLError):
        return Answer(None, None)
    try:
        parsed = json.loads(raw) if raw and not raw.startswith(b"%PDF") else None
    except ValueError:
        parsed = {"raw": raw[:300].decode(errors="replace")}
    return Answer(status, parsed, headers, raw)


class CrashServer:
    """The served terminal, restarted after each crash, on one database."""

    def __init__(self, env: dict[str, str], folder: Path) -> None:
        self.env = env
        self.folder = folder
        self.process: subprocess.Popen[str] | None = None
        self.base = ""
        self.mark = folder / "crash-mark"
        self.logs: list[Path] = []
        self.starts = 0

    def start(self, crash_at: str = "header", crash_path: str = "") -> str:
        """Start the server with the crash hooks (idle until armed); return its base URL."""
        self.stop()
        port = free_port()
        env = {
            **self.env,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(SITE), self.env.get("PYTHONPATH")])),
            "TERMINAL_CRASH_AT": crash_at,
            "TERMINAL_CRASH_PATH": crash_path,
            "TERMINAL_CRASH_MARK": str(self.mark),
        }
        log = self.folder / f"server-{len(self.logs)}.log"
        self.logs.append(log)
        with log.open("w") as handle:
            self.process = subprocess.Popen(
                [str(SCRIPT), "serve", "--port", str(port), "--workers", "1"],
                env=env,
                stdout=handle,
                stderr=handle,
                text=True,
            )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.base + "/login", timeout=5).read()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {self.log()[-2000:]}") from None
                time.sleep(0.1)
        self.starts += 1
        return self.base

    def crashed_at(self) -> str | None:
        """Return the point the last crash happened at (and forget it), after the death."""
        assert self.process is not None
        self.process.wait(timeout=30)  # the master died of SIGKILL, not by itself
        assert self.process.returncode == -9, (self.process.returncode, self.log()[-2000:])
        point = self.mark.read_text().strip() if self.mark.exists() else None
        self.mark.unlink(missing_ok=True)
        self.process = None
        return point

    def stop(self) -> None:
        """Stop a server still running (its worker with it)."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def log(self) -> str:
        """Return everything the servers logged."""
        return "\n".join(path.read_text(errors="replace") for path in self.logs if path.exists())


@contextmanager
def crash_server(env: dict[str, str]) -> Iterator[CrashServer]:
    """Yield a CrashServer; stop it at the end."""
    with tempfile.TemporaryDirectory(prefix="crash-") as folder:
        server = CrashServer(env, Path(folder))
        try:
            yield server
        finally:
            server.stop()
            server.logs = [p for p in server.logs if p.exists()]
            log = server.log()
            # Killed workers leave no trace; a handled request must not print one.
            assert "Traceback" not in log, log[-3000:]


def points(light: tuple[str, ...], seed: int, rounds: int) -> list[str]:
    """Return the crash points of a round: each once in CI, many random ones in soak."""
    if not SOAK:
        return list(light)
    rng = random.Random(seed + int(os.environ.get("TERMINAL_CRASH_SEED", "0")))
    return [rng.choice(light) for _ in range(rounds)]


def check(db_url: str, env: dict[str, str], answered: dict[int, str]) -> None:
    """Check S05 on the database: no duplicate, no loss, the audit chain, the file.

    ``answered`` maps every payout id that got a 201 to its receipt number.
    """
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            doubles = conn.execute(
                text(
                    "SELECT entitlement_id FROM payout_lines WHERE reversed_at IS NULL "
                    "GROUP BY entitlement_id HAVING count(*) > 1"
                )
            ).all()
            assert doubles == [], f"entitlements paid twice: {doubles}"
            rows = dict(
                conn.execute(
                    text(
                        "SELECT p.id, r.receipt_no FROM payouts p "
                        "JOIN receipts r ON r.payout_id = p.id"
                    )
                ).all()
            )
            payouts = set(conn.execute(text("SELECT id FROM payouts")).scalars())
            assert payouts == set(rows), "a payout without its receipt number"
            for payout_id, receipt_no in answered.items():
                assert rows.get(payout_id) == receipt_no, f"answered payout {payout_id} lost"
            audited = set(
                int(i)
                for i in conn.execute(
                    text(
                        "SELECT object_id FROM audit_events "
                        "WHERE action = 'payout.recorded' AND object_type = 'payout'"
                    )
                ).scalars()
            )
            assert payouts <= audited, f"payouts without their audit event: {payouts - audited}"
            lines = conn.execute(
                text(
                    "SELECT count(*) FROM payout_lines l LEFT JOIN payouts p ON p.id = l.payout_id "
                    "WHERE p.id IS NULL"
                )
            ).scalar()
            assert lines == 0, "payout lines without their payout"
            paid = conn.execute(
                text(
                    "SELECT count(*) FROM entitlements e WHERE e.status = 'paid' AND NOT EXISTS "
                    "(SELECT 1 FROM payout_lines l WHERE l.entitlement_id = e.id "
                    "AND l.reversed_at IS NULL)"
                )
            ).scalar()
            assert paid == 0, "entitlements marked paid without a live payout line"
            if engine.dialect.name == "sqlite":
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
    finally:
        engine.dispose()
    verified = subprocess.run(
        [str(SCRIPT), "audit-verify"], env=env, capture_output=True, text=True, timeout=120
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    receipts = Path(env["TERMINAL_RECEIPTS_DIR"])
    for pdf in receipts.rglob("*.pdf") if receipts.exists() else ():
        data = pdf.read_bytes()
        assert data.startswith(b"%PDF-") and b"%%EOF" in data[-1024:], f"broken receipt {pdf}"
