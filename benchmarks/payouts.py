"""Benchmark: payouts per second over HTTP against a bare one-row insert on the same server.

    python benchmarks/payouts.py [--beneficiaries 200000] [--workers 2] [--clients 8]
                                 [--seconds 10] [--per-client 150]

A temporary SQLite terminal is built with ``payout-terminal init-db`` and ``generate``; the
point with the most payable cash beneficiaries gets one clerk per client and a supervisor
who records today's cash float. ``payout-terminal serve`` then answers client processes
(one API token each, connections made per request as sync workers close them):

- payout requests: each client verifies its people first (untimed), then times only
  ``POST /api/v1/payouts``, with a fresh Idempotency-Key each;
- verify-and-pay cycles: ``POST /api/v1/verifications`` and the payout timed together.

The baseline, in the same run because runs on this shared machine differ by 20-50 %, is a
bare Flask + SQLAlchemy app defined here (``bare_app``) that inserts one row per POST into a
SQLite file set up as the terminal's (WAL, synchronous=FULL, busy timeout, BEGIN IMMEDIATE),
served by gunicorn with the same worker count, class and access log, driven by the same
clients for the same time. Each measurement ends after --seconds or when a client's people
run out. Prints one table (req/s, p50, p95, ratio to the bare insert) and the server logs'
count of tracebacks and "database is locked" (the logs stay in the temporary folder, the
databases too with --keep-data); timings never fail the script, errors do.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import secrets
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCRIPT = Path(sys.executable).parent / "payout-terminal"
BARE_DATABASE_ENV = "BENCH_BARE_DATABASE"
# The terminal's access log format (terminal/server.py), so both servers write the same lines.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'
CHILD_AGE = 16  # a child is paid only through a guardian: such people cannot verify alone
ADVANCE_VND = 10**12  # today's cash float: far more than every payout of the run


# ---- the baseline app, imported by gunicorn as ``payouts:bare_app()`` ------------------------


def bare_app() -> Any:
    """Build a Flask app whose POST inserts and commits one row, as the terminal's SQLite does."""
    from flask import Flask, jsonify, request
    from sqlalchemy import create_engine, event, text

    path = os.environ[BARE_DATABASE_ENV]
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 15})

    # The pragmas and BEGIN handling of terminal.db.make_engine, written out so that the
    # baseline stays the same whatever the terminal's code becomes.
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous = FULL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 15000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    app = Flask(__name__)
    insert = text("INSERT INTO bench_rows (code, amount_vnd, created_at) VALUES (:c, :a, :t)")

    @app.post("/rows")
    def add_row() -> Any:
        body = request.get_json()
        with engine.begin() as conn:
            row_id = conn.execute(
                insert, {"c": body["code"], "a": body["amount_vnd"], "t": time.time()}
            ).lastrowid
        return jsonify(id=row_id), 201

    @app.get("/ready")
    def ready() -> Any:
        return jsonify(ok=True)

    return app


def make_bare_database(path: Path) -> None:
    """Create the baseline's table and switch the file to WAL before any worker starts."""
    with sqlite3.connect(path) as connection:
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(
            "CREATE TABLE bench_rows (id INTEGER PRIMARY KEY, code TEXT NOT NULL, "
            "amount_vnd INTEGER NOT NULL, created_at REAL NOT NULL)"
        )
    path.chmod(0o600)


# ---- HTTP ------------------------------------------------------------------------------------


def call(
    port: int, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """Send one request on a new connection; return the status and the JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        data = None if body is None else json.dumps(body).encode()
        sent = {"Content-Type": "application/json", **(headers or {})}
        connection.request(method, path, body=data, headers=sent)
        response = connection.getresponse()
        raw = response.read()
    finally:
        connection.close()
    try:
        answer = json.loads(raw) if raw else {}
    except ValueError:
        answer = {}
    return response.status, answer if isinstance(answer, dict) else {}


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """Start a server process writing its output (access and error log) to a file."""
    with log.open("ab") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_ready(process: subprocess.Popen[bytes], port: int, path: str, log: Path) -> None:
    """Wait until the server answers `path` with 200; stop the script if it died."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}: {log.read_text()[-800:]}")
        try:
            if call(port, "GET", path)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise SystemExit(f"server on port {port} not ready after 180 s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    """Stop gunicorn gracefully (SIGTERM to its arbiter), the hard way if it lingers."""
    process.terminate()
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# ---- the clients -----------------------------------------------------------------------------


def _client(job: dict[str, Any], barrier: Any, results: Any) -> None:
    """Run one client's share of a measurement and put its timings on the queue."""
    port, kind, seconds = job["port"], job["kind"], job["seconds"]
    auth = {"Authorization": f"Bearer {job['token']}"} if job.get("token") else {}
    statuses: Counter[str] = Counter()
    latencies: list[float] = []

    def verify(person: dict[str, Any]) -> int | None:
        status, body = call(
            port,
            "POST",
            "/api/v1/verifications",
            {
                "beneficiary_code": person["code"],
                "collector": "beneficiary",
                "id_number": person["id_number"],
            },
            auth,
        )
        if status != 201:
            statuses[f"verification {status} {body.get('error', '')}".strip()] += 1
            return None
        return int(body["verification_id"])

    def pay(person: dict[str, Any], verification_id: int) -> bool:
        status, body = call(
            port,
            "POST",
            "/api/v1/payouts",
            {
                "verification_id": verification_id,
                "entitlement_ids": person["entitlement_ids"],
                "channel": "cash",
            },
            {**auth, "Idempotency-Key": uuid.uuid4().hex},
        )
        if status != 201:
            statuses[f"payout {status} {body.get('error', '')}".strip()] += 1
            return False
        return True

    people: list[dict[str, Any]] = job.get("people", [])
    ready: list[tuple[dict[str, Any], int]] = []
    if kind == "bare":
        for n in range(3):  # warm-up: first requests import lazily
            call(port, "POST", "/rows", {"code": f"warm-{os.getpid()}-{n}", "amount_vnd": 1})
    elif kind == "payouts":
        for person in people:  # untimed: only the payout request is measured
            verification_id = verify(person)
            if verification_id is not None:
                ready.append((person, verification_id))
    barrier.wait()
    started = time.perf_counter()
    deadline = started + seconds
    n = 0
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        if kind == "bare":
            status, _ = call(
                port, "POST", "/rows", {"code": f"c{os.getpid()}-{n}", "amount_vnd": 540_000}
            )
            ok = status == 201
            if not ok:
                statuses[f"insert {status}"] += 1
        elif kind == "payouts":
            if n >= len(ready):
                break
            ok = pay(*ready[n])
        else:
            if n >= len(people):
                break
            verification_id = verify(people[n])
            ok = verification_id is not None and pay(people[n], verification_id)
        n += 1
        if ok:
            latencies.append((time.perf_counter() - t0) * 1000)
    results.put(
        {
            "started": started,
            "ended": time.perf_counter(),
            "latencies": latencies,
            "statuses": dict(statuses),
        }
    )


def measure(jobs: list[dict[str, Any]]) -> dict[str, Any]:
    """Run one client process per job, started together; return rate, latencies and errors."""
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(jobs))
    results = context.Queue()
    processes = [context.Process(target=_client, args=(job, barrier, results)) for job in jobs]
    for process in processes:
        process.start()
    parts = [results.get() for _ in processes]
    for process in processes:
        process.join()
        if process.exitcode != 0:
            raise SystemExit(f"a client process failed (exit {process.exitcode})")
    latencies = sorted(ms for part in parts for ms in part["latencies"])
    wall = max(p["ended"] for p in parts) - min(p["started"] for p in parts)
    statuses: Counter[str] = Counter()
    for part in parts:
        statuses.update(part["statuses"])
    return {
        "done": len(latencies),
        "seconds": wall,
        "rate": len(latencies) / wall if wall > 0 else 0.0,
        "p50": statistics.median(latencies) if latencies else float("nan"),
        "p95": latencies[min(len(latencies) - 1, round(0.95 * (len(latencies) - 1)))]
        if latencies
        else float("nan"),
        "errors": statuses,
    }


# ---- the terminal's data ---------------------------------------------------------------------


def run_cli(args: list[str], env: dict[str, str]) -> str:
    """Run a payout-terminal command; stop the script with its reason if it fails."""
    done = subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"payout-terminal {args[0]} failed: {done.stderr.strip()[-800:]}")
    return done.stdout.strip()


def payable_people(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """Return the point with the most cash people who can collect alone, and those people."""
    year = date.today().year
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            """
            SELECT p.code, b.code, b.id_number, group_concat(e.id)
            FROM beneficiaries b
            JOIN entitlements e ON e.beneficiary_id = b.id AND e.status = 'due'
            JOIN point_communes pc ON pc.commune_id = b.commune_id
            JOIN payout_points p ON p.id = pc.point_id AND p.kind = 'post_office'
            WHERE b.payment_method = 'cash' AND b.status = 'active'
              AND b.category <> 'orphan' AND b.birth_year <= ?
              AND b.id_number IS NOT NULL
            GROUP BY p.code, b.id
            ORDER BY b.id
            """,
            (year - CHILD_AGE,),
        ).fetchall()
    by_point: dict[str, list[dict[str, Any]]] = {}
    for point, code, id_number, entitlements in rows:
        ids = sorted(int(i) for i in entitlements.split(","))
        by_point.setdefault(point, []).append(
            {"code": code, "id_number": id_number, "entitlement_ids": ids}
        )
    if not by_point:
        raise SystemExit("the generated data has no payable cash beneficiary")
    point = max(by_point, key=lambda p: len(by_point[p]))
    return point, by_point[point]


def set_up_staff(url: str, point: str, passwords: dict[str, str], supervisor: str) -> None:
    """Create the clerks and a supervisor at the point, who records today's cash float.

    The terminal's own services do it in this process (create-user would start one
    process per user): the same checks, the same audit events.
    """
    from sqlalchemy.orm import sessionmaker

    from terminal.db import make_engine
    from terminal.services.auth import create_user

    try:
        from terminal.services.cash import set_cash_float
    except ImportError:  # before cash had a module of its own
        from terminal.services.payouts import set_cash_float  # type: ignore[attr-defined,no-redef]

    engine = make_engine(url)
    try:
        with sessionmaker(bind=engine, expire_on_commit=False)() as session:
            for username, password in passwords.items():
                create_user(
                    session,
                    username=username,
                    role="clerk",
                    password=password,
                    point_code=point,
                    actor="benchmark",
                )
            boss = create_user(
                session,
                username=supervisor,
                role="supervisor",
                password=secrets.token_urlsafe(18),
                point_code=point,
                actor="benchmark",
            )
            set_cash_float(session, boss, advance_vnd=ADVANCE_VND)
    finally:
        engine.dispose()


def written_payouts(path: Path) -> int:
    """Count the payouts the benchmark's clerks wrote."""
    with sqlite3.connect(path) as connection:
        return int(
            connection.execute(
                "SELECT count(*) FROM payouts JOIN users u ON u.id = payouts.user_id "
                "WHERE u.username LIKE 'bench.clerk%'"
            ).fetchone()[0]
        )


def log_problems(log: Path) -> tuple[int, int]:
    """Count tracebacks and "database is locked" in a server log."""
    text = log.read_text(errors="replace")
    return text.count("Traceback"), text.count("database is locked")


# ---- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Build the data, measure the bare insert and the two payout cases, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=200_000)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    parser.add_argument("--clients", type=int, default=8, help="client processes")
    parser.add_argument("--seconds", type=float, default=10.0, help="time per measurement")
    parser.add_argument(
        "--per-client", type=int, default=150, help="people per client and payout case (a cap)"
    )
    parser.add_argument(
        "--keep-data", action="store_true", help="keep the databases (the logs are always kept)"
    )
    args = parser.parse_args(argv)
    if min(args.beneficiaries, args.workers, args.clients, args.per_client) < 1:
        parser.error("counts must be at least 1")

    work = Path(tempfile.mkdtemp(prefix="payouts-bench-"))
    database = work / "terminal.db"
    url = f"sqlite:///{database}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        TERMINAL_DATABASE_URL=url,
        TERMINAL_SECRET_KEY=secrets.token_urlsafe(32),
        TERMINAL_RECEIPTS_DIR=str(work / "receipts"),
    )

    started = time.perf_counter()
    run_cli(["init-db"], env)
    generated = run_cli(["generate", "--beneficiaries", str(args.beneficiaries)], env)
    print(f"{generated} (with init-db: {time.perf_counter() - started:.0f} s)")
    point, people = payable_people(database)
    wanted = 2 * args.clients * args.per_client
    if len(people) < wanted:
        print(f"note: point {point} has {len(people):,} payable cash people, fewer than {wanted:,}")
    share = min(args.per_client, len(people) // (2 * args.clients))
    if share < 1:
        raise SystemExit(f"point {point} has too few payable cash people ({len(people)})")

    passwords = {f"bench.clerk{n}": secrets.token_urlsafe(18) for n in range(1, args.clients + 1)}
    set_up_staff(url, point, passwords, supervisor="bench.sup")

    # The baseline first, alone on the machine's ports and cores.
    load_before = os.getloadavg()
    bare_db, bare_log = work / "bare.db", work / "bare-server.log"
    make_bare_database(bare_db)
    port = free_port()
    bare_env = {**env, BARE_DATABASE_ENV: str(bare_db)}
    server = start_server(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "--pythonpath",
            str(Path(__file__).resolve().parent),
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(args.workers),
            "--worker-class",
            "sync",
            "--timeout",
            "60",
            "--access-logfile",
            "-",
            "--access-logformat",
            ACCESS_LOG_FORMAT,
            "--error-logfile",
            "-",
            f"{Path(__file__).stem}:bare_app()",
        ],
        bare_env,
        bare_log,
    )
    try:
        wait_ready(server, port, "/ready", bare_log)
        job = {"port": port, "kind": "bare", "seconds": args.seconds}
        bare = measure([dict(job) for _ in range(args.clients)])
    finally:
        stop_server(server)

    terminal_log = work / "terminal-server.log"
    port = free_port()
    server = start_server(
        [str(SCRIPT), "serve", "--port", str(port), "--workers", str(args.workers)],
        env,
        terminal_log,
    )
    try:
        wait_ready(server, port, "/api/v1/openapi.json", terminal_log)
        tokens = {}
        for username, password in passwords.items():
            status, body = call(
                port, "POST", "/api/v1/tokens", {"username": username, "password": password}
            )
            if status != 201:
                raise SystemExit(f"token for {username}: {status} {body}")
            tokens[username] = body["token"]
        cases = {}
        for phase, kind in enumerate(("payouts", "cycles")):
            jobs = []
            for n, token in enumerate(tokens.values()):
                first = (phase * args.clients + n) * share
                jobs.append(
                    {
                        "port": port,
                        "kind": kind,
                        "seconds": args.seconds,
                        "token": token,
                        "people": people[first : first + share],
                    }
                )
            cases[kind] = measure(jobs)
        load_after = os.getloadavg()
    finally:
        stop_server(server)

    print()
    print(
        f"beneficiaries: {args.beneficiaries:,}; point {point}: {len(people):,} payable cash "
        f"people, {share} per client and case; gunicorn sync workers: {args.workers}; "
        f"clients: {args.clients}; up to {args.seconds:g} s per measurement"
    )
    print(
        f"machine: {os.cpu_count()} CPUs, load average {load_before[0]:.2f} before the "
        f"measurements, {load_after[0]:.2f} after; terminal: {ROOT}"
    )
    header = ("case", "done", "seconds", "req/s", "p50 ms", "p95 ms", "errors", "ratio to bare")
    rows = [header]
    for name, result in (
        ("bare insert (Flask + SQLAlchemy)", bare),
        ("payout requests", cases["payouts"]),
        ("verify-and-pay cycles", cases["cycles"]),
    ):
        rows.append(
            (
                name,
                f"{result['done']:,}",
                f"{result['seconds']:.1f}",
                f"{result['rate']:.1f}",
                f"{result['p50']:.1f}",
                f"{result['p95']:.1f}",
                str(sum(result["errors"].values())),
                f"{result['rate'] / bare['rate']:.2f}x" if bare["rate"] else "-",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    print()
    for name, result in (("bare", bare), *cases.items()):
        for error, count in sorted(result["errors"].items()):
            print(f"{name}: {count} x {error}")
    ok = cases["payouts"]["done"] + cases["cycles"]["done"]
    print(f"payouts in the database: {written_payouts(database):,} (201 answers: {ok:,})")
    for name, log in (("bare server", bare_log), ("terminal server", terminal_log)):
        tracebacks, locked = log_problems(log)
        print(f'{name} log: {tracebacks} Traceback, {locked} "database is locked" ({log})')
    if not args.keep_data:
        for path in work.glob("*.db*"):
            path.unlink()
        shutil.rmtree(work / "receipts", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
