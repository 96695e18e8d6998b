"""Benchmark: importing a generated roster CSV, time and peak memory, against a baseline.

    python benchmarks/roster_import.py [--rows 100000] [--database-url URL]

The database must be empty (a fresh SQLite file is made when no URL is given): the
first import is measured into an empty roster, then the same file again (nothing
changes), then the same file with one row in ten changed (amounts, so beneficiaries
and entitlements are updated and audited). Each import runs as its own process (the
real ``payout-terminal import-roster``), so its peak resident memory and CPU time
are measured alone; CPU seconds say what the import costs when the machine is busy
with other work. The baseline, in the same run on the same kind of database, parses
the same file with ``csv`` and inserts one minimal row per line with
``executemany``: the floor any import must stand on.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import inspect, text  # noqa: E402

from terminal.db import make_engine  # noqa: E402
from terminal.schema import upgrade  # noqa: E402
from terminal.services.roster_file import write_roster_csv  # noqa: E402
from terminal.synthetic import PILOT_DISTRICTS, synthetic_people  # noqa: E402

SCRIPT = Path(sys.executable).parent / "payout-terminal"


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str, float]:
    """Run a command; return its seconds, its peak RSS in MB, its output and CPU seconds."""
    # Output goes to files, not pipes: a full pipe would stall the child we measure.
    with tempfile.TemporaryFile("w+") as out_file, tempfile.TemporaryFile("w+") as err_file:
        started = time.perf_counter()
        process = subprocess.Popen(args, env=env, stdout=out_file, stderr=err_file, text=True)
        _pid, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(args)} failed: {err[-500:]}")
    return seconds, usage.ru_maxrss / 1024, out, usage.ru_utime + usage.ru_stime


def baseline(path: Path, url: str) -> tuple[float, float, float]:
    """Parse the CSV and insert a minimal row per line: the floor."""
    code = (
        "import csv,sqlite3,sys,time\n"
        "from terminal.db import make_engine\n"
        f"e=make_engine({url!r})\n"
        "c=e.raw_connection()\n"
        "cur=c.cursor()\n"
        "cur.execute('CREATE TABLE IF NOT EXISTS bench_rows (code TEXT PRIMARY KEY, name TEXT)')\n"
        "cur.execute('BEGIN') if 'sqlite' in e.url.drivername else None\n"
        f"r=csv.reader(open({str(path)!r}, encoding='utf-8-sig'))\n"
        "next(r)\n"
        "cur.executemany('INSERT INTO bench_rows VALUES (?, ?)' if 'sqlite' in e.url.drivername "
        "else 'INSERT INTO bench_rows VALUES (%s, %s)', ((row[0], row[1]) for row in r))\n"
        "c.commit()\n"
        "cur.execute('DROP TABLE bench_rows'); c.commit()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    seconds, rss, _, cpu = run_measured([sys.executable, "-c", code], env)
    return seconds, rss, cpu


def refuse_non_empty(url: str) -> None:
    """Stop unless the database has no roster yet: the figures are for a fresh one."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            if (
                inspect(conn).has_table("beneficiaries")
                and conn.execute(text("SELECT 1 FROM beneficiaries LIMIT 1")).first()
            ):
                raise SystemExit(f"refused: {engine.url!r} already holds beneficiaries")
    finally:
        engine.dispose()


def changed_copy(path: Path, target: Path, every: int = 10) -> int:
    """Write the roster with every tenth row's monthly amount raised; return rows changed."""
    changed = 0
    with (
        path.open(encoding="utf-8-sig", newline="") as source,
        target.open("w", encoding="utf-8-sig", newline="") as out,
    ):
        reader, writer = csv.reader(source), csv.writer(out)
        header = next(reader)
        writer.writerow(header)
        amount = header.index("Mức hưởng")
        for number, row in enumerate(reader):
            if number % every == 0:
                row[amount] = str(int(row[amount]) + 10_000)
                changed += 1
            writer.writerow(row)
    return changed


def main() -> None:
    """Generate the file, import it twice, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-bench-"))
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
    refuse_non_empty(url)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()

    path = work / "roster.csv"
    started = time.perf_counter()
    districts = [(d.name, d.communes) for d in PILOT_DISTRICTS]
    rows = write_roster_csv(
        synthetic_people(args.rows, seed=7, districts=districts, today=date(2021, 10, 1)), path
    )
    print(
        f"generated {rows:,} rows ({path.stat().st_size / 1e6:.1f} MB) in "
        f"{time.perf_counter() - started:.1f} s"
    )

    changed_path = work / "roster-changed.csv"
    changed = changed_copy(path, changed_path)

    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=url,
        TERMINAL_SECRET_KEY="b" * 40,
        TERMINAL_RECEIPTS_DIR=str(work / "receipts"),
    )
    base_s, base_rss, base_cpu = baseline(path, url)
    runs = []
    for name, file in (
        ("import-roster (all new)", path),
        ("import-roster again (unchanged)", path),
        (f"import-roster, {changed:,} rows changed", changed_path),
    ):
        seconds, rss, out, cpu = run_measured(
            [str(SCRIPT), "import-roster", str(file), "--period", "2021-10"], env
        )
        runs.append((name, seconds, rss, cpu, out))
    print()
    head = ("case", "seconds", "rows/s", "CPU s", "peak RSS MB", "ratio to baseline")
    print(
        f"{head[0]:<34} | {head[1]:>8} | {head[2]:>9} | {head[3]:>6} | {head[4]:>11} | "
        f"{head[5]:>17}"
    )
    print("-+-".join("-" * n for n in (34, 8, 9, 6, 11, 17)))
    for name, seconds, rss, cpu, _out in [
        ("baseline: csv + executemany", base_s, base_rss, base_cpu, ""),
        *runs,
    ]:
        rate, ratio = rows / seconds, seconds / base_s
        print(
            f"{name:<34} | {seconds:8.1f} | {rate:9,.0f} | {cpu:6.1f} | {rss:11.0f} | "
            f"{ratio:16.1f}x"
        )
    print()
    for name, *_rest, out in runs:
        print(f"{name}:", " ".join(out.split()[:40]))


if __name__ == "__main__":
    main()
