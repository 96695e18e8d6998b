"""Time the payout log's exports (CSV, XLSX) at a million payouts against a bare CSV dump.

    python benchmarks/exports.py [--payouts 1000000] [--database-url URL] [--cache FILE]

Builds a database with about ``--payouts`` payouts with ``terminal.synthetic.generate``
(6 months, all but the last paid), or reuses one: ``--database-url`` (SQLite or
PostgreSQL) is used as it is when it already holds at least 90 % of the payouts asked
for, else generated into; without it a SQLite file is kept at ``--cache`` (default
``/tmp/bench-exports-<N>.db``) and reused by the next run. Each case runs in its own
process (spawn), so its peak RSS (``ru_maxrss``) is its own:

- baseline: the export's own SELECT (the same joins and columns), run with the bare
  driver (a server-side cursor on PostgreSQL) and written with ``csv.writer``, no
  terminal code, no escaping, no time zones;
- CSV and XLSX: ``terminal.services.payout_log.export_to_path``, what
  ``payout-terminal export-payouts`` runs (rows streamed, cells escaped, the export
  audited; XLSX through openpyxl's write-only workbook).

The baseline runs in the same invocation because runs on this shared machine differ by
20-50 %. Prints rows, seconds, rows/s, peak RSS and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

PERIODS = 6
# Payouts per beneficiary and paid month in the generator's mix (the rest are stopped).
PAID_SHARE = 0.97


def peak_rss_mb() -> float:
    """Return this process's peak resident memory in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def count_payouts(url: str) -> int:
    """Return how many payouts a database holds (0 if it has no schema yet)."""
    from sqlalchemy import create_engine, inspect, text

    engine = create_engine(url)
    try:
        if "payouts" not in inspect(engine).get_table_names():
            return 0
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(*) FROM payouts")).scalar_one())
    finally:
        engine.dispose()


def build(url: str, payouts: int) -> dict[str, Any]:
    """Migrate the database and generate about `payouts` payouts into it."""
    from sqlalchemy.orm import Session

    from terminal.db import make_engine
    from terminal.schema import upgrade
    from terminal.synthetic import generate

    engine = make_engine(url, synchronous="NORMAL")
    upgrade(engine)
    people = max(10, math.ceil(payouts / (PERIODS - 1) / PAID_SHARE))
    with Session(engine, expire_on_commit=False) as session:
        started = time.perf_counter()
        report = generate(session, beneficiaries=people, periods=PERIODS)
        seconds = time.perf_counter() - started
    engine.dispose()
    return {"payouts": report.payouts, "seconds": seconds}


def _export_sql(url: str) -> str:
    """Return the export's SELECT as the database's own SQL text, parameters inlined."""
    from sqlalchemy import create_engine

    from terminal.models import Payout
    from terminal.services.payout_log import PayoutFilter, _log_select

    engine = create_engine(url)
    query = _log_select(None, PayoutFilter(), engine.dialect.name).order_by(Payout.id)
    sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
    engine.dispose()
    return sql


def bare_csv(url: str, sql: str, out: str) -> dict[str, Any]:
    """Write the export's SELECT with the bare driver and csv.writer; return the timings."""
    import csv

    started = time.perf_counter()
    if url.startswith("sqlite"):
        import sqlite3

        connection: Any = sqlite3.connect(url.split(":///", 1)[1])
        cursor = connection.execute(sql)
    else:
        import psycopg

        connection = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1))
        cursor = connection.cursor(name="bench_export")  # server-side, as the export's
        cursor.itersize = 2000
        cursor.execute(sql)
    rows = 0
    with open(out, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        for row in cursor:
            writer.writerow(row)
            rows += 1
    connection.close()
    return {"rows": rows, "seconds": time.perf_counter() - started, "rss": peak_rss_mb()}


def export(url: str, fmt: str, out: str) -> dict[str, Any]:
    """Run the terminal's export (the command line's service) into a file; return the timings."""
    from sqlalchemy.orm import Session

    from terminal.db import make_engine
    from terminal.services.payout_log import PayoutFilter, export_to_path

    engine = make_engine(url)
    imported = peak_rss_mb()
    started = time.perf_counter()
    with Session(engine) as session:
        rows = export_to_path(session, None, PayoutFilter(), fmt, out, actor="benchmark")
    seconds = time.perf_counter() - started
    engine.dispose()
    return {
        "rows": rows,
        "seconds": seconds,
        "rss": peak_rss_mb(),
        "imported": imported,
        "bytes": Path(out).stat().st_size,
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
    """Build or reuse the database, run the baseline and both exports, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payouts", type=int, default=1_000_000, help="payouts to export")
    parser.add_argument("--database-url", help="use (or fill) this database")
    parser.add_argument("--cache", help="SQLite file kept between runs (without --database-url)")
    parser.add_argument("--formats", default="csv,xlsx", help="which exports to run")
    args = parser.parse_args(argv)
    if args.payouts < 10:
        parser.error("--payouts must be at least 10")
    formats = [f for f in args.formats.split(",") if f]
    if not set(formats) <= {"csv", "xlsx"}:
        parser.error("--formats takes csv and/or xlsx")
    url = args.database_url or (
        "sqlite:///" + (args.cache or f"{tempfile.gettempdir()}/bench-exports-{args.payouts}.db")
    )
    have = in_child(count_payouts, url)
    if have < 0.9 * args.payouts:
        print(f"generating about {args.payouts:,} payouts into {url.split('://')[0]}...",
              file=sys.stderr)  # fmt: skip
        built = in_child(build, url, args.payouts)
        have = built["payouts"]
        print(f"  {have:,} payouts in {built['seconds']:.0f} s", file=sys.stderr)
    else:
        print(f"reusing {have:,} payouts in {url.split('://')[0]}", file=sys.stderr)

    results = []
    with tempfile.TemporaryDirectory(prefix="bench-exports-") as scratch:
        sql = in_child(_export_sql, url)
        base = in_child(bare_csv, url, sql, str(Path(scratch) / "bare.csv"))
        results.append(("baseline: bare driver + csv.writer, same SELECT", base))
        for fmt in formats:
            print(f"exporting {fmt}...", file=sys.stderr)
            result = in_child(export, url, fmt, str(Path(scratch) / f"payouts.{fmt}"))
            results.append((f"export-payouts --format {fmt}", result))

    base_rate = base["rows"] / base["seconds"]
    table = [("case", "rows", "seconds", "rows/s", "peak RSS MB", "vs baseline")]
    for name, result in results:
        rate = result["rows"] / result["seconds"]
        table.append(
            (
                name,
                f"{result['rows']:,}",
                f"{result['seconds']:.1f}",
                f"{rate:,.0f}",
                f"{result['rss']:.0f}",
                f"{base_rate / rate:.1f}x slower" if rate < base_rate else "1.0x",
            )
        )
    print(f"database: {url.split('://')[0]}, {have:,} payouts")
    print_table(table)
    for name, result in results[1:]:
        print(
            f"{name}: {result['bytes'] / 1e6:.0f} MB written; the process held "
            f"{result['imported']:.0f} MB after importing the terminal, before a row"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
