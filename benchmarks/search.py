"""Benchmark: searching beneficiaries over HTTP, p50/p95 with 8 clients, against a baseline.

    python benchmarks/search.py [--beneficiaries 200000] [--clients 8] [--seconds 5]
                                [--workers 2] [--database-url URL]

Builds the data with the real commands (``payout-terminal generate``, then a clerk at
the first payout point with ``create-user``), serves the terminal with ``payout-terminal
serve`` (gunicorn, sync workers) and times ``GET /api/v1/beneficiaries?q=`` from
client processes, each opening a connection per request as a counter's browser does.
The baseline, measured in the same run because runs on this shared machine differ by
20-50 %, is a bare Flask app under gunicorn with as many workers, answering the same
indexed lookup (by ID number; by name prefix, on the name index alone) through
SQLAlchemy Core on the same database, without sign-in, scope or templates.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SCRIPT = Path(sys.executable).parent / "payout-terminal"


# ---- the baseline app (imported by gunicorn as search:make_baseline_app()) -----------


def make_baseline_app() -> Any:
    """Return a bare Flask app answering the indexed lookups with SQLAlchemy Core."""
    from flask import Flask, g, jsonify, request
    from sqlalchemy import create_engine, text

    url = os.environ["BENCH_DATABASE_URL"]
    engine = create_engine(url)
    sqlite = url.startswith("sqlite")
    by_id = text(
        "SELECT id, code, full_name FROM beneficiaries WHERE id_number = :v "
        "ORDER BY name_key, code LIMIT 21"
    )
    by_name = text(
        "SELECT id, code, full_name FROM beneficiaries WHERE name_key "
        + ("GLOB :v" if sqlite else "LIKE :v")
        + " ORDER BY name_key LIMIT 21"
    )
    app = Flask("baseline")

    # The same Server-Timing header as the terminal's (terminal/server_timing.py).
    @app.before_request
    def start() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def stamp(response: Any) -> Any:
        response.headers["Server-Timing"] = (
            f"app;dur={(time.perf_counter() - g.started) * 1000:.2f}"
        )
        return response

    @app.get("/id")
    def find_id() -> Any:
        with engine.connect() as conn:
            rows = conn.execute(by_id, {"v": request.args["q"]}).all()
        return jsonify(items=[{"id": r.id, "code": r.code, "full_name": r.full_name} for r in rows])

    @app.get("/name")
    def find_name() -> Any:
        with engine.connect() as conn:
            # The pattern is bound whole: "GLOB :v || '*'" would defeat the index.
            pattern = request.args["q"] + ("*" if sqlite else "%")
            rows = conn.execute(by_name, {"v": pattern}).all()
        return jsonify(items=[{"id": r.id, "code": r.code, "full_name": r.full_name} for r in rows])

    return app


# ---- setting up ------------------------------------------------------------------------


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(args: list[str], env: dict[str, str], stdin: str | None = None) -> str:
    """Run a command, fail loudly, return its output."""
    done = subprocess.run(args, env=env, input=stdin, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed: {done.stderr[-800:]}")
    return done.stdout


@contextmanager
def serving(args: list[str], env: dict[str, str], port: int, probe: str) -> Iterator[str]:
    """Run a server until the block ends; yield its address once it answers."""
    # Its log goes to a file, not a pipe: a pipe nobody reads fills up and stalls it.
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=log)
        base = f"127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection(base, timeout=2)
                    conn.request("GET", probe)
                    conn.getresponse().read()
                    conn.close()
                    break
                except OSError:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.seek(0)
                        raise SystemExit(f"server did not start: {log.read()[-2000:]}") from None
                    time.sleep(0.2)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def sample_queries(url: str, point: str, count: int) -> dict[str, list[str]]:
    """Return ID numbers and full names of people of the point's communes."""
    from sqlalchemy import text

    from terminal.db import make_engine

    engine = make_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.id_number, b.full_name FROM beneficiaries b "
                "JOIN point_communes pc ON pc.commune_id = b.commune_id "
                "JOIN payout_points p ON p.id = pc.point_id "
                "WHERE p.code = :point AND b.id_number IS NOT NULL"
            ),
            {"point": point},
        ).all()
    engine.dispose()
    chosen = random.Random(7).sample(rows, min(count, len(rows)))
    return {"id": [r[0] for r in chosen], "name": [r[1] for r in chosen]}


# ---- the clients -----------------------------------------------------------------------


# A request: method, path, headers, body.
Request = tuple[str, str, dict[str, str], str | None]
NOTHING_FOUND = (b'"items":[]', b'data-testid="no-results"')
SERVER_TIMING = re.compile(r"app;dur=([0-9.]+)")


def client(
    base: str, requests: list[Request], offset: int, warmup: float, seconds: float
) -> tuple[list[float], list[float], int]:
    """Send requests in turn for a while; return latencies and server times after warm-up.

    The server's time is its ``Server-Timing`` header (TERMINAL_SERVER_TIMING=1): the
    request's own cost, without the wait for a free worker. An error is anything but a
    200 that found someone.
    """
    latencies: list[float] = []
    on_server: list[float] = []
    errors = 0
    started = time.perf_counter()
    warm_until = started + warmup
    stop = warm_until + seconds
    n = offset
    while True:
        now = time.perf_counter()
        if now >= stop:
            break
        method, path, headers, body = requests[n % len(requests)]
        n += 1
        conn = http.client.HTTPConnection(base, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            text = response.read().replace(b" ", b"")
            ok = response.status == 200 and not any(mark in text for mark in NOTHING_FOUND)
            timing = SERVER_TIMING.search(response.getheader("Server-Timing") or "")
        except OSError:
            ok, timing = False, None
        finally:
            conn.close()
        took = time.perf_counter() - now
        if now >= warm_until:
            latencies.append(took)
            if timing:
                on_server.append(float(timing.group(1)) / 1000)
            errors += not ok
    return latencies, on_server, errors


def sign_in(base: str, username: str, password: str) -> tuple[dict[str, str], str]:
    """Sign in through the login form; return a signed-in form post's headers and CSRF token."""

    def fetch(method: str, path: str, cookie: str, body: str | None = None) -> tuple[str, str]:
        headers = {"Cookie": cookie}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection(base, timeout=30)
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        html = response.read().decode()
        cookie = _cookie(response.getheader("Set-Cookie")) or cookie
        conn.close()
        return html, cookie

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html)
        if not found:
            raise SystemExit("no CSRF token on the page: did the sign-in fail?")
        return found.group(1)

    html, cookie = fetch("GET", "/login", "")
    form = {"csrf_token": csrf(html), "username": username, "password": password}
    _, cookie = fetch("POST", "/login", cookie, urllib.parse.urlencode(form))
    html, cookie = fetch("GET", "/counter/", cookie)
    return {"Cookie": cookie, "Content-Type": "application/x-www-form-urlencoded"}, csrf(html)


def _cookie(header: str | None) -> str:
    """Return the name=value part of a Set-Cookie header."""
    return header.split(";", 1)[0] if header else ""


def measure(
    base: str,
    requests: list[Request],
    clients: int,
    warmup: float,
    seconds: float,
) -> dict[str, float]:
    """Run the clients at once; return the request rate and latency percentiles in ms."""
    context = multiprocessing.get_context("fork")
    with context.Pool(clients) as pool:
        results = pool.starmap(
            client,
            [(base, requests, i * 7, warmup, seconds) for i in range(clients)],
        )
    latencies = sorted(x for lat, _, _ in results for x in lat)
    on_server = sorted(x for _, srv, _ in results for x in srv)
    errors = sum(e for _, _, e in results)
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    server = statistics.quantiles(on_server, n=100, method="inclusive") if on_server else None
    return {
        "requests": len(latencies),
        "rate": len(latencies) / seconds,
        "p50": cuts[49] * 1000,
        "p95": cuts[94] * 1000,
        "server_p50": server[49] * 1000 if server else float("nan"),
        "server_p95": server[94] * 1000 if server else float("nan"),
        "errors": errors,
    }


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print rows as a table with aligned columns, the first row a header."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for n, row in enumerate(rows):
        cells = [row[0].ljust(widths[0])] + [
            cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells))
        if n == 0:
            print("-+-".join("-" * w for w in widths))


def main(argv: list[str] | None = None) -> None:
    """Build the data, serve the terminal and the baseline, time the searches."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=200_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=5.0, help="per case, after warm-up")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--database-url",
        help="default: a new SQLite file; a database already holding beneficiaries is used as is",
    )
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="search-bench-"))
    try:
        measure_all(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_all(args: argparse.Namespace, work: Path) -> None:
    """Set up, serve and time every case, then print the table."""
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        PYTHONPATH=str(ROOT),  # this checkout's terminal, whatever the venv points at
        TERMINAL_DATABASE_URL=url,
        TERMINAL_SECRET_KEY=secrets.token_hex(32),
        TERMINAL_RECEIPTS_DIR=str(work / "receipts"),
        TERMINAL_LOG_LEVEL="WARNING",
        TERMINAL_SERVER_TIMING="1",
    )

    from sqlalchemy import text

    from terminal.db import make_engine

    started = time.perf_counter()
    run([str(SCRIPT), "init-db"], env)
    engine = make_engine(url)
    with engine.connect() as conn:
        existing = conn.execute(text("SELECT count(*) FROM beneficiaries")).scalar()
    if existing:
        print(f"using the {existing:,} beneficiaries already in the database")
        args.beneficiaries = existing
    else:
        generate = [str(SCRIPT), "generate", "--beneficiaries", str(args.beneficiaries)]
        print(run(generate, env).strip())
    print(f"data ready in {time.perf_counter() - started:.1f} s")
    with engine.connect() as conn:
        point = conn.execute(text("SELECT code FROM payout_points ORDER BY id LIMIT 1")).scalar()
        in_scope = conn.execute(
            text(
                "SELECT count(*) FROM beneficiaries b JOIN point_communes pc "
                "ON pc.commune_id = b.commune_id JOIN payout_points p ON p.id = pc.point_id "
                "WHERE p.code = :point"
            ),
            {"point": point},
        ).scalar()
    engine.dispose()
    password = secrets.token_urlsafe(18)
    username = f"bench.{secrets.token_hex(3)}"
    create_user = [str(SCRIPT), "create-user", username, "--role", "clerk", "--point", point]
    run(
        [*create_user, "--password-stdin"],
        env,
        stdin=password + "\n",
    )
    queries = sample_queries(url, str(point), 400)
    print(f"clerk at point {point}, whose communes hold {in_scope:,} of the people")

    port, base_port = free_port(), free_port()
    terminal_cmd = [str(SCRIPT), "serve", "--port", str(port), "--workers", str(args.workers)]
    baseline_cmd = [
        sys.executable,
        "-m",
        "gunicorn",
        "--workers",
        str(args.workers),
        "--worker-class",
        "sync",
        "--bind",
        f"127.0.0.1:{base_port}",
        "--pythonpath",
        str(ROOT / "benchmarks"),
        "search:make_baseline_app()",
    ]
    results: list[tuple[str, dict[str, float], str]] = []

    def timed(name: str, base: str, requests: list[Request], floor: str, clients: int = 0) -> None:
        clients = clients or args.clients
        if clients != args.clients:
            name = f"{name}, {clients} client{'s' if clients > 1 else ''}"
            floor = f"{floor}, {clients} client{'s' if clients > 1 else ''}" if floor else ""
        print(f"  {name}...", file=sys.stderr, flush=True)
        results.append((name, measure(base, requests, clients, args.warmup, args.seconds), floor))

    # One client as well: on this 2-vCPU machine 8 client processes take CPU from the
    # server, so their server times include being paused; one clerk's search is not.
    alone = 1

    def gets(paths: list[str], headers: dict[str, str] | None = None) -> list[Request]:
        return [("GET", path, headers or {}, None) for path in paths]

    def q(value: str) -> str:
        return urllib.parse.quote(value)

    with serving(baseline_cmd, {**env, "BENCH_DATABASE_URL": url}, base_port, "/id?q=0") as base:
        ids = gets([f"/id?q={v}" for v in queries["id"]])
        names = gets([f"/name?q={q(fold_name(v))}" for v in queries["name"]])
        timed("baseline: by ID (Core)", base, ids, "", alone)
        timed("baseline: by full name (Core)", base, names, "", alone)
        timed("baseline: by ID (Core)", base, ids, "")
        timed("baseline: by full name (Core)", base, names, "")

    with serving(terminal_cmd, env, port, "/login") as base:
        conn = http.client.HTTPConnection(base, timeout=30)
        conn.request(
            "POST",
            "/api/v1/tokens",
            body=json.dumps({"username": username, "password": password}),
            headers={"Content-Type": "application/json"},
        )
        token = json.loads(conn.getresponse().read())["token"]
        conn.close()
        auth = {"Authorization": f"Bearer {token}"}
        api = "/api/v1/beneficiaries?q="
        conn = http.client.HTTPConnection(base, timeout=30)
        conn.request("GET", api + "nguyen", headers=auth)
        cursor = json.loads(conn.getresponse().read())["next_cursor"]
        conn.close()
        id_floor, name_floor = "baseline: by ID (Core)", "baseline: by full name (Core)"
        ids = gets([api + v for v in queries["id"]], auth)
        names = gets([api + q(v) for v in queries["name"]], auth)
        timed("API: by ID", base, ids, id_floor, alone)
        timed("API: by full name", base, names, name_floor, alone)
        timed("API: 'nguyen'", base, gets([api + "nguyen"], auth), name_floor, alone)
        timed("API: by ID", base, ids, id_floor)
        timed("API: by full name", base, names, name_floor)
        timed("API: 'nguyen'", base, gets([api + "nguyen"], auth), name_floor)
        page_two = f"{api}nguyen&cursor={q(cursor)}"
        timed("API: 'nguyen', second page", base, gets([page_two], auth), name_floor)
        timed("API: 'hoa' (a given name)", base, gets([api + "hoa"], auth), name_floor)
        # The counter's page: one match by ID opens the beneficiary's page at once.
        cookie, token = sign_in(base, username, password)

        def posts(values: list[str]) -> list[Request]:
            return [
                ("POST", "/counter/", cookie, urllib.parse.urlencode({"csrf_token": token, "q": v}))
                for v in values
            ]

        timed("page: by ID (opens the person)", base, posts(queries["id"]), id_floor)
        timed("page: 'nguyen'", base, posts(["nguyen"]), name_floor)

    by_name = {name: r for name, r, _ in results}
    table = [
        (
            "case",
            "requests",
            "req/s",
            "p50 ms",
            "p95 ms",
            "server p50 ms",
            "server p95 ms",
            "errors",
            "server p95 vs baseline",
        )
    ]
    for name, r, floor in results:
        ratio = f"{r['server_p95'] / by_name[floor]['server_p95']:.1f}x" if floor else ""
        table.append(
            (
                name,
                f"{r['requests']:,}",
                f"{r['rate']:,.0f}",
                f"{r['p50']:.1f}",
                f"{r['p95']:.1f}",
                f"{r['server_p50']:.2f}",
                f"{r['server_p95']:.2f}",
                str(int(r["errors"])),
                ratio,
            )
        )
    print()
    print(
        f"{args.beneficiaries:,} beneficiaries, {args.clients} clients, "
        f"{args.workers} sync workers, {args.seconds:g} s per case"
    )
    print_table(table)


def fold_name(full_name: str) -> str:
    """Return the search key of a name, as the terminal folds it."""
    from terminal.text import fold

    return fold(full_name)


if __name__ == "__main__":
    main()
