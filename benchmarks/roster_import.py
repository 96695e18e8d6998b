"""Benchmark: importing a generated roster CSV, time and peak memory, against a baseline.

    python benchmarks/roster_import.py [--rows 100000] [--database-url URL]

Each import runs as its own process (the real ``payout-terminal import-roster``), so
its peak resident memory is measured alone. The baseline, in the same run on the
same kind of database, parses the same file with ``csv`` and inserts one minimal row
per line with ``executemany``: the floor any import must stand on.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from terminal.db import make_engine  # noqa: E402
from terminal.schema import upgrade  # noqa: E402
from terminal.services.roster_file import write_roster_csv  # noqa: E402
from terminal.synthetic import PILOT_DISTRICTS, synthetic_people  # noqa: E402

SCRIPT = Path(sys.executable).parent / "payout-terminal"


def run_measured(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run a command; return its seconds, its peak RSS in MB and its output."""
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
    return seconds, usage.ru_maxrss / 1024, out


def baseline(path: Path, url: str) -> tuple[float, float]:
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
    seconds, rss, _ = run_measured([sys.executable, "-c", code], env)
    return seconds, rss


def main() -> None:
    """Generate the file, import it twice, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="roster-bench-"))
    url = args.database_url or f"sqlite:///{work / 'bench.db'}"
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

    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=url,
        TERMINAL_SECRET_KEY="b" * 40,
        TERMINAL_RECEIPTS_DIR=str(work / "receipts"),
    )
    base_s, base_rss = baseline(path, url)
    first_s, first_rss, first_out = run_measured(
        [str(SCRIPT), "import-roster", str(path), "--period", "2021-10"], env
    )
    again_s, again_rss, again_out = run_measured(
        [str(SCRIPT), "import-roster", str(path), "--period", "2021-10"], env
    )
    print()
    head = ("case", "seconds", "rows/s", "peak RSS MB", "ratio to baseline")
    print(f"{head[0]:<34} | {head[1]:>8} | {head[2]:>9} | {head[3]:>11} | {head[4]:>17}")
    print("-" * 34 + "-+-" + "-" * 8 + "-+-" + "-" * 9 + "-+-" + "-" * 11 + "-+-" + "-" * 17)
    for name, seconds, rss in (
        ("baseline: csv + executemany", base_s, base_rss),
        ("import-roster (all new)", first_s, first_rss),
        ("import-roster again (unchanged)", again_s, again_rss),
    ):
        rate, ratio = rows / seconds, seconds / base_s
        print(f"{name:<34} | {seconds:8.1f} | {rate:9,.0f} | {rss:11.0f} | {ratio:16.1f}x")
    print()
    print("first import:", " ".join(first_out.split()[:40]))
    print("second import:", " ".join(again_out.split()[:40]))


if __name__ == "__main__":
    main()
