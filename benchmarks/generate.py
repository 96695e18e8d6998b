"""Time synthetic data generation against a bare executemany of as many minimal rows.

    python benchmarks/generate.py [--beneficiaries N] [--periods K] [--database-url URL]

Without --database-url the data goes into a temporary SQLite file, migrated like a real one
(terminal.db.make_engine + terminal.schema.upgrade) and deleted afterwards. The baseline, run
in the same invocation because runs on this shared machine differ by 20-50 %, inserts N rows of
three columns with a bare DBAPI executemany in one transaction into a scratch table of the same
kind of database (a temporary SQLite file with the same pragmas, or a scratch table in the given
PostgreSQL database, dropped afterwards). Each case runs in its own process, so that its peak RSS
is its own. Prints rows, seconds, rows/s, peak RSS and how many times slower than the baseline.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# The project root, so that `terminal` imports when run as `python benchmarks/generate.py`.
ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

SCRATCH = "bench_scratch_rows"
BATCH = 10_000


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _bare_connection(url: str) -> tuple[Any, str]:
    """Open a plain DBAPI connection set up as the terminal sets up its own."""
    if url.startswith("sqlite"):
        import sqlite3

        connection = sqlite3.connect(url.split(":///", 1)[1], isolation_level=None)
        # The pragmas of terminal.db.make_engine: WAL, durable commits, foreign keys.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = FULL")
        connection.execute("PRAGMA foreign_keys = ON")
        return connection, "?"
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1)), "%s"


def bare_insert(url: str, rows: int) -> dict[str, Any]:
    """Insert `rows` minimal rows with the driver's executemany; return the timings.

    Runs without importing the terminal, so its peak RSS is the driver's alone.
    """
    connection, marker = _bare_connection(url)
    sqlite = url.startswith("sqlite")
    try:
        cursor = connection.cursor()
        cursor.execute(f"DROP TABLE IF EXISTS {SCRATCH}")
        cursor.execute(
            f"CREATE TABLE {SCRATCH} (id INTEGER PRIMARY KEY, code VARCHAR(32) NOT NULL, "
            "amount_vnd BIGINT NOT NULL)"
        )
        connection.commit()
        sql = f"INSERT INTO {SCRATCH} (id, code, amount_vnd) VALUES ({marker}, {marker}, {marker})"
        started = time.perf_counter()
        if sqlite:
            cursor.execute("BEGIN IMMEDIATE")  # one transaction, as generate uses
        for first in range(0, rows, BATCH):
            batch = [
                (n, f"TTH{n:07d}", 540_000) for n in range(first + 1, min(first + BATCH, rows) + 1)
            ]
            cursor.executemany(sql, batch)
        connection.commit()
        seconds = time.perf_counter() - started
        cursor.execute(f"DROP TABLE {SCRATCH}")
        connection.commit()
    finally:
        connection.close()
    return {"rows": rows, "seconds": seconds, "rss": peak_rss_mb()}


def run_generate(url: str, beneficiaries: int, periods: int, seed: int) -> dict[str, Any]:
    """Migrate the database, generate into it and return the timings and counts."""
    from sqlalchemy.orm import Session

    from terminal.db import make_engine
    from terminal.schema import upgrade
    from terminal.synthetic import generate

    engine = make_engine(url)
    upgrade(engine)
    step = max(1, beneficiaries // 10)
    shown = [0]

    def progress(done: int) -> None:
        if done - shown[0] >= step or done == beneficiaries:
            shown[0] = done
            print(f"  generated {done:,} / {beneficiaries:,}", file=sys.stderr, flush=True)

    with Session(engine, expire_on_commit=False) as session:
        imported = peak_rss_mb()  # the app's own footprint, before a single row
        started = time.perf_counter()
        report = generate(
            session, beneficiaries=beneficiaries, periods=periods, seed=seed, progress=progress
        )
        seconds = time.perf_counter() - started
    engine.dispose()
    written = (
        report.beneficiaries
        + report.proxies
        + report.entitlements
        + 3 * report.payouts  # a payout, its line and its receipt
        + report.data_errors  # a follow-up case each
    )
    return {
        "rows": report.beneficiaries,
        "written": written,
        "seconds": seconds,
        "rss": peak_rss_mb(),
        "imported": imported,
        "report": report,
    }


def in_child(target: Any, *args: Any) -> dict[str, Any]:
    """Run one case in a fresh process and return what it returned."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        return pool.apply(target, args)


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


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments, run the baseline and the generation, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--beneficiaries", type=int, default=100_000, help="people to generate")
    parser.add_argument(
        "--periods", type=int, default=1, help="months of history (all but the last paid)"
    )
    parser.add_argument("--seed", type=int, default=2021)
    parser.add_argument(
        "--database-url", help="write into this database (default: a temporary SQLite file)"
    )
    args = parser.parse_args(argv)
    if args.beneficiaries < 1 or args.periods < 1:
        parser.error("--beneficiaries and --periods must be at least 1")

    with tempfile.TemporaryDirectory(prefix="bench-generate-") as scratch:
        url = args.database_url or f"sqlite:///{Path(scratch) / 'terminal.db'}"
        base_url = url if not url.startswith("sqlite") else f"sqlite:///{Path(scratch) / 'bare.db'}"
        print(
            f"database: {url.split('://', 1)[0]}; beneficiaries {args.beneficiaries:,}, "
            f"periods {args.periods}",
            file=sys.stderr,
        )
        base = in_child(bare_insert, base_url, args.beneficiaries)
        gen = in_child(run_generate, url, args.beneficiaries, args.periods, args.seed)

    base_rate = base["rows"] / base["seconds"]
    table = [("case", "rows", "seconds", "rows/s", "peak RSS MB", "vs bare insert")]
    for name, rows, seconds, rss in (
        ("bare executemany, 3 columns", base["rows"], base["seconds"], base["rss"]),
        ("generate: beneficiaries", gen["rows"], gen["seconds"], gen["rss"]),
        ("generate: all rows written", gen["written"], gen["seconds"], gen["rss"]),
    ):
        rate = rows / seconds
        table.append(
            (
                name,
                f"{rows:,}",
                f"{seconds:.1f}",
                f"{rate:,.0f}",
                f"{rss:.0f}",
                f"{base_rate / rate:.1f}x",
            )
        )
    print_table(table)
    report = gen["report"]
    print(
        f"wrote {report.beneficiaries:,} beneficiaries, {report.proxies:,} proxies, "
        f"{report.entitlements:,} entitlements, {report.payouts:,} payouts (each with a line "
        f"and a receipt), {report.data_errors:,} data-error cases; {report.communes:,} communes "
        f"in {report.districts:,} districts, {report.points:,} payout points"
    )
    print(
        f"generate's process held {gen['imported']:.0f} MB after importing the terminal, before "
        f"writing a row; the bare insert imports only the driver"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
