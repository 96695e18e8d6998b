"""``make bench``: run the project's benchmarks and print one table against their targets.

    python benchmarks/bench.py [--size small|province|national|growth]
                               [--databases sqlite,postgresql] [--pg-url URL]
                               [--only search,payouts,...] [--keep-logs DIR]
                               [--search-sizes N,N] [--export-sizes N,N] [--roster-sizes N,N]

Each benchmark is the project's own script (``benchmarks/*.py``), run as a separate
process on data made by ``payout-terminal generate`` (or the roster generator), and
each measures its own baseline in the same run, because runs on this shared machine
differ by 20-50 %. This script reads their tables and prints one summary:

| benchmark | script | target |
|---|---|---|
| search by ID / by name, p95 over HTTP, 8 clients | search.py | ≤ 5 ms / ≤ 15 ms |
| payouts / verify-and-pay cycles vs a bare Flask + SQLAlchemy insert | payouts.py | 0.5x / 0.33x |
| receipt PDF vs a bare reportlab page with the same QR | receipt_pdf.py | ≤ 1.5x |
| CSV and XLSX export of the payout log | exports.py | rows/s, peak RSS |
| roster import | roster_import.py | ≥ 30,000 rows/s |

Sizes: ``small`` checks the machinery in minutes; ``province`` is the issue's scale (1M
beneficiaries searched, 1M payouts exported, 200,000 roster rows); ``national`` searches
3M and imports a 3M-row roster; ``growth`` runs each at 10k to 3M for the growth table of
docs/PERFORMANCE.md. The ``--*-sizes`` options replace a size's lists. PostgreSQL runs
use ``--pg-url`` (a database this script may fill; made if missing).
Every script's full output is kept in ``--keep-logs`` (default a temporary folder).
Timings never fail this script; a benchmark that errors is reported as such.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

SIZES = {
    "small": {"search": [100_000], "payouts": 50_000, "exports": [100_000], "roster": [20_000]},
    "province": {
        "search": [1_000_000],
        "payouts": 200_000,
        "exports": [1_000_000],
        "roster": [200_000],
    },
    "national": {
        "search": [1_000_000, 3_000_000],
        "payouts": 200_000,
        "exports": [1_000_000],
        "roster": [200_000, 3_000_000],
    },
    # How each cost grows with the data, for docs/PERFORMANCE.md.
    "growth": {
        "search": [10_000, 100_000, 1_000_000, 3_000_000],
        "payouts": 200_000,
        "exports": [10_000, 100_000, 1_000_000],
        "roster": [10_000, 100_000, 1_000_000],
    },
}


@dataclass
class Line:
    """One line of the summary."""

    benchmark: str
    database: str
    case: str
    value: str
    ratio: str = ""
    target: str = ""
    met: str = ""


def tables(output: str) -> list[list[dict[str, str]]]:
    """Return the `` | ``-separated tables of a script's output, rows keyed by header."""
    lines = output.splitlines()
    found = []
    for n, line in enumerate(lines[:-1]):
        if (
            " | " in line
            and set(lines[n + 1].replace("-+-", "")) <= {"-"}
            and "-+-" in lines[n + 1]
        ):
            header = [cell.strip() for cell in line.split(" | ")]
            rows = []
            for row in lines[n + 2 :]:
                if " | " not in row:
                    break
                cells = [cell.strip() for cell in row.split(" | ")]
                rows.append(dict(zip(header, cells, strict=False)))
            found.append(rows)
    return found


def number(text: str) -> float | None:
    """Return the first number of a cell (``1,234.5``, ``0.22x``), or None."""
    match = re.search(r"-?[\d,]*\.?\d+", text or "")
    return float(match.group().replace(",", "")) if match else None


def run(name: str, args: list[str], logs: Path) -> tuple[str, bool, float]:
    """Run one benchmark script; return its output, whether it succeeded, and seconds."""
    started = time.perf_counter()
    print(f"== {name}: {' '.join(args)}", file=sys.stderr, flush=True)
    done = subprocess.run(
        [PYTHON, *args], cwd=ROOT, capture_output=True, text=True, timeout=6 * 3600
    )
    seconds = time.perf_counter() - started
    log = logs / f"{name}.log"
    log.write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
    print(f"   {seconds:.0f} s, output in {log}", file=sys.stderr, flush=True)
    return done.stdout, done.returncode == 0, seconds


def verdict(ok: bool) -> str:
    """Return the mark of a target met or missed."""
    return "yes" if ok else "NO"


def search_lines(out: str, database: str, people: int) -> list[Line]:
    """Summarise search.py: p95 per case against the server targets."""
    lines = []
    for rows in tables(out):
        for row in rows:
            case = row.get("case", "")
            p95, server = number(row.get("p95 ms", "")), number(row.get("server p95 ms", ""))
            if p95 is None or server is None:
                continue
            label = f"{case} ({people:,} people)"
            value = f"server p95 {server:.2f} ms (client p95 {p95:.1f} ms)"
            if "baseline" in case.lower() or "bare" in case.lower():
                lines.append(Line("search", database, label, value, "1.0x"))
                continue
            # The targets are the server's time for a search (one client: with
            # 8 client processes on 2 vCPUs the server is paused while they run, and
            # the client's time adds the wait for one of 2 workers); 8 clients shown too.
            target = met = ""
            if "1 client" in case and ("by ID" in case or "name" in case or "'" in case):
                limit = 5.0 if "by ID" in case else 15.0
                target, met = f"≤ {limit:g} ms", verdict(server <= limit)
            lines.append(
                Line(
                    "search",
                    database,
                    label,
                    value,
                    row.get("server p95 vs baseline", ""),
                    target,
                    met,
                )
            )
    return lines


def payout_lines(out: str) -> list[Line]:
    """Summarise payouts.py: request rates against the bare insert."""
    lines = []
    for rows in tables(out):
        for row in rows:
            case, rate = row.get("case", ""), number(row.get("req/s", ""))
            ratio = number(row.get("ratio to bare", ""))
            if rate is None:
                continue
            target, met = "", ""
            if "cycle" in case.lower() and ratio is not None:
                target, met = "≥ 0.33x", verdict(ratio >= 0.33)
            elif "payout" in case.lower() and ratio is not None:
                target, met = "≥ 0.5x", verdict(ratio >= 0.5)
            lines.append(
                Line(
                    "payouts",
                    "sqlite",
                    case,
                    f"{rate:,.0f} req/s, p95 {row.get('p95 ms', '?')} ms",
                    row.get("ratio to bare", ""),
                    target,
                    met,
                )
            )
    return lines


def receipt_lines(out: str) -> list[Line]:
    """Summarise receipt_pdf.py: the 80 mm receipt against a bare page."""
    lines = []
    for rows in tables(out):
        for row in rows:
            case, ratio = row.get("case", ""), number(row.get("ratio to baseline", ""))
            target = met = ""
            if case == "receipt 80mm" and ratio is not None:
                target, met = "≤ 1.5x", verdict(ratio <= 1.5)
            lines.append(
                Line(
                    "receipt",
                    "-",
                    case,
                    f"{row.get('median ms', '?')} ms",
                    row.get("ratio to baseline", ""),
                    target,
                    met,
                )
            )
    return lines


def export_lines(out: str, database: str, payouts: int) -> list[Line]:
    """Summarise exports.py: rows per second and peak memory."""
    return [
        Line(
            "export",
            database,
            f"{row.get('case', '')} ({payouts:,} payouts)",
            f"{row.get('rows/s', '?')} rows/s, {row.get('peak RSS MB', '?')} MB",
            row.get("vs baseline", ""),
        )
        for rows in tables(out)
        for row in rows
    ]


def roster_lines(out: str, database: str, rows_n: int) -> list[Line]:
    """Summarise roster_import.py: rows per second against 30,000."""
    lines = []
    for rows in tables(out):
        for row in rows:
            case, rate = row.get("case", ""), number(row.get("rows/s", ""))
            target = met = ""
            if case.startswith("import-roster") and rate is not None:
                target, met = "≥ 30,000 rows/s", verdict(rate >= 30_000)
            lines.append(
                Line(
                    "roster import",
                    database,
                    f"{case} ({rows_n:,} rows)",
                    f"{row.get('rows/s', '?')} rows/s, {row.get('peak RSS MB', '?')} MB",
                    row.get("ratio to baseline", ""),
                    target,
                    met,
                )
            )
    return lines


def ensure_database(url: str, *, fresh: bool = False) -> None:
    """Create the PostgreSQL database of a URL if it does not exist (anew if ``fresh``)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    target = make_url(url)
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        exists = conn.execute(
            text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
        ).first()
        if exists is not None and fresh:
            conn.execute(text(f'DROP DATABASE "{target.database}" WITH (FORCE)'))
            exists = None
        if exists is None:
            conn.execute(text(f'CREATE DATABASE "{target.database}"'))
    admin.dispose()


def main() -> int:
    """Run the chosen benchmarks and print the summary table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--only", default="search,payouts,receipt,exports,roster")
    parser.add_argument("--keep-logs", default=None)
    parser.add_argument(
        "--data-dir", default=tempfile.gettempdir(), help="where SQLite data is kept between runs"
    )
    parser.add_argument("--search-sizes", help="beneficiaries searched, e.g. 1000000,3000000")
    parser.add_argument("--export-sizes", help="payouts exported, e.g. 100000,1000000")
    parser.add_argument("--roster-sizes", help="roster rows imported, e.g. 200000")
    args = parser.parse_args()
    size = dict(SIZES[args.size])
    for key, given in (
        ("search", args.search_sizes),
        ("exports", args.export_sizes),
        ("roster", args.roster_sizes),
    ):
        if given:
            size[key] = [int(n) for n in given.split(",") if n]
    chosen = set(args.only.split(","))
    databases = [d for d in args.databases.split(",") if d]
    logs = Path(args.keep_logs or tempfile.mkdtemp(prefix="bench-"))
    logs.mkdir(parents=True, exist_ok=True)
    data_dir = Path(args.data_dir)
    summary: list[Line] = []
    failures: list[str] = []

    def note(name: str, ok: bool) -> None:
        if not ok:
            failures.append(name)

    for database in databases:
        pg = database == "postgresql"
        if pg:
            ensure_database(args.pg_url)
        if "search" in chosen:
            for people in size["search"]:
                # Data made once and kept (SQLite in --data-dir, PostgreSQL as a
                # database), so a second run measures at once.
                extra = [
                    "--database-url",
                    f"{args.pg_url}_search_{people}"
                    if pg
                    else f"sqlite:///{data_dir / f'bench-search-{people}.db'}",
                ]
                if pg:
                    ensure_database(f"{args.pg_url}_search_{people}")
                name = f"search-{database}-{people}"
                out, ok, _ = run(
                    name, ["benchmarks/search.py", "--beneficiaries", str(people), *extra], logs
                )
                note(name, ok)
                summary += search_lines(out, database, people)
        for payouts in size["exports"] if "exports" in chosen else []:
            extra = (
                ["--database-url", f"{args.pg_url}_exports_{payouts}"]
                if pg
                else ["--cache", str(data_dir / f"bench-exports-{payouts}.db")]
            )
            if pg:
                ensure_database(f"{args.pg_url}_exports_{payouts}")
            name = f"exports-{database}-{payouts}"
            out, ok, _ = run(
                name, ["benchmarks/exports.py", "--payouts", str(payouts), *extra], logs
            )
            note(name, ok)
            summary += export_lines(out, database, payouts)
        for rows_n in size["roster"] if "roster" in chosen else []:
            extra = []
            if pg:
                # The import is timed on an empty database, as a first national load is.
                ensure_database(f"{args.pg_url}_roster_{rows_n}", fresh=True)
                extra = ["--database-url", f"{args.pg_url}_roster_{rows_n}"]
            name = f"roster-{database}-{rows_n}"
            out, ok, _ = run(
                name, ["benchmarks/roster_import.py", "--rows", str(rows_n), *extra], logs
            )
            note(name, ok)
            summary += roster_lines(out, database, rows_n)
    if "payouts" in chosen:
        out, ok, _ = run(
            "payouts", ["benchmarks/payouts.py", "--beneficiaries", str(size["payouts"])], logs
        )
        note("payouts", ok)
        summary += payout_lines(out)
    if "receipt" in chosen:
        out, ok, _ = run("receipt", ["benchmarks/receipt_pdf.py"], logs)
        note("receipt", ok)
        summary += receipt_lines(out)

    head = ("benchmark", "database", "case", "value", "vs baseline", "target", "met")
    rows = [head] + [
        (s.benchmark, s.database, s.case, s.value, s.ratio, s.target, s.met) for s in summary
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    print()
    print(f"make bench, size {args.size}; every script's output in {logs}")
    for n, row in enumerate(rows):
        print(" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if n == 0:
            print("-+-".join("-" * width for width in widths))
    if failures:
        print(f"\nbenchmarks that failed to run: {', '.join(failures)} (see their logs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
