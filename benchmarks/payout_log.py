"""Time pages of the auditors' payout log on a big database, against a bare keyset page.

    python benchmarks/payout_log.py --database-url URL [--repeat 3]

Use a database made by ``benchmarks/exports.py`` (about a million payouts over six
periods, all but the last paid) or by ``payout-terminal generate``. For each case the
first page of the log (50 rows, as the page asks) is read with
``terminal.services.payout_log.browse``, what ``/audit/payouts`` and ``GET
/api/v1/payouts`` run, ``--repeat`` times; the median is printed with its ratio to a
baseline measured in the same run: the bare statement ``SELECT id FROM payouts ORDER BY
paid_at DESC, id DESC LIMIT 51`` on the same connection.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def _median_ms(run: Any, repeat: int) -> float:
    """Return the median wall time of ``run`` in milliseconds."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    """Print one table: case, median ms, ratio to the bare page."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from sqlalchemy import func, select, text
    from sqlalchemy.orm import Session

    from terminal.db import make_engine
    from terminal.models import Payout, PayoutPoint
    from terminal.services import payout_log as log

    engine = make_engine(args.database_url)
    with Session(engine) as session:
        payouts = session.scalar(select(func.count()).select_from(Payout))
        periods = log.period_codes(session)
        point = session.scalar(select(PayoutPoint.code).order_by(PayoutPoint.id))
        bare = text("SELECT id FROM payouts ORDER BY paid_at DESC, id DESC LIMIT 51")
        baseline = _median_ms(lambda: session.execute(bare).all(), args.repeat)
        cases: list[tuple[str, log.PayoutFilter, str]] = [
            ("no filter, newest first", log.PayoutFilter(), "newest"),
            ("no filter, by amount", log.PayoutFilter(), "amount_desc"),
            (f"point {point}", log.PayoutFilter(point_code=point), "newest"),
            ("channel account, proxy", log.PayoutFilter(channel="account", collector="proxy"), ""),
            ("status reversed", log.PayoutFilter(status="reversed"), "newest"),
        ]
        for code in (periods[0], periods[1], periods[-1]) if len(periods) > 2 else periods:
            for sort in ("newest", "oldest"):
                cases.append((f"period {code}, {sort}", log.PayoutFilter(period=code), sort))
        name = engine.dialect.name
        print(f"database: {name}, {payouts:,} payouts; median of {args.repeat}")
        print(f"{'case':<34} | {'ms':>8} | {'vs bare page':>12}")
        print(f"{'-' * 34}-+-{'-' * 8}-+-{'-' * 12}")
        print(f"{'baseline: bare keyset page':<34} | {baseline:8.1f} | {'1.0x':>12}")
        for label, filters, sort in cases:
            ms = _median_ms(
                lambda f=filters, s=sort: log.browse(session, None, f, sort=s or None, limit=50),
                args.repeat,
            )
            print(f"{label:<34} | {ms:8.1f} | {ms / max(baseline, 0.01):11.0f}x")
            session.rollback()


if __name__ == "__main__":
    main()
