"""Size and time a home-delivery route: its download for the tablet, and syncing it back.

    python benchmarks/delivery_route.py [--people 200] [--database-url URL]

Builds a fresh database (a temporary SQLite file unless ``--database-url`` names an
empty one) with one point, a supervisor, a delivery user and ``--people`` cash
beneficiaries (every third with a proxy, every fifth owed an earlier month too), then
through the real API (Flask's test client, no network):

- assigns them all to one route (``POST /api/v1/routes``);
- downloads the route as the tablet does (``GET /api/v1/routes/current``): bytes as
  sent, bytes gzipped (what a proxy with compression carries), and time, median of 5;
  the baseline is the same people read with one bare SELECT and ``json.dumps``;
- syncs a payout for everyone in batches of 50 (``POST /api/v1/sync``), then sends
  the whole queue again (every answer ``duplicate``).

Prints one table.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)


def main() -> None:
    """Build the route, time and size it, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-route-"))
    url = args.database_url or f"sqlite:///{folder / 'route.db'}"

    from sqlalchemy import text

    from terminal import create_app
    from terminal.db import get_engine, new_session
    from terminal.schema import upgrade
    from tests.factories import PASSWORD, make_beneficiary, make_point, make_user

    app = create_app(
        {
            "DATABASE_URL": url,
            "SECRET_KEY": "b" * 40,
            "RECEIPTS_DIR": str(folder / "receipts"),
            "TESTING": True,
        }
    )
    with app.app_context():
        upgrade(get_engine(app))
        session = new_session(app)
        point = make_point(session, "HTTN", kind="delivery")
        make_user(session, "lead", "supervisor", point="HTTN")
        make_user(session, "giao", "delivery", point="HTTN")
        codes = []
        for n in range(args.people):
            proxy = {"id_number": f"0461955{n:05d}"} if n % 3 == 0 else None
            periods = (("2021-09", 0), ("2021-10", 0)) if n % 5 == 0 else (("2021-10", 0),)
            person = make_beneficiary(
                session,
                f"TTH{n:07d}",
                commune=point.communes[n % len(point.communes)],
                id_number=f"0461600{n:05d}",
                full_name="Nguyễn Thị Phương Thảo",
                proxy=proxy,
                periods=periods,
            )
            codes.append(person.code)
        session.close()

    client = app.test_client()

    def token(username: str) -> dict[str, str]:
        body = client.post(
            "/api/v1/tokens", json={"username": username, "password": PASSWORD}
        ).get_json()
        return {"Authorization": f"Bearer {body['token']}"}

    lead = token("lead")
    device = client.post(
        "/api/v1/devices", json={"name": "Tablet", "username": "giao"}, headers=lead
    ).get_json()
    tablet = {"Authorization": f"Bearer {device['token']}"}
    started = time.perf_counter()
    assigned = client.post(
        "/api/v1/routes",
        json={"username": "giao", "period": "2021-10", "beneficiary_codes": codes},
        headers=lead,
    )
    assign_s = time.perf_counter() - started
    assert assigned.status_code == 201, assigned.get_json()

    downloads, body = [], b""
    for _ in range(5):
        started = time.perf_counter()
        response = client.get("/api/v1/routes/current", headers=tablet)
        downloads.append(time.perf_counter() - started)
        body = response.get_data()
    route = json.loads(body)

    with app.app_context():
        engine = get_engine(app)
        baselines, bare = [], b""
        for _ in range(5):
            started = time.perf_counter()
            with engine.connect() as conn:
                rows = conn.execute(
                    text(
                        "SELECT b.code, b.full_name, b.village, b.address, b.birth_year,"
                        " b.id_number, e.id, e.amount_vnd FROM beneficiaries b"
                        " JOIN entitlements e ON e.beneficiary_id = b.id"
                    )
                ).all()
            bare = json.dumps([list(r) for r in rows], ensure_ascii=False).encode()
            baselines.append(time.perf_counter() - started)

    vn = timezone(timedelta(hours=7))
    paid_at = (datetime.now(vn) - timedelta(minutes=20)).isoformat(timespec="seconds")
    queue = [
        {
            "client_ref": f"bench-{n:012d}-route",
            "beneficiary_code": person["code"],
            "entitlement_ids": [e["id"] for e in person["entitlements"]],
            "collector": "beneficiary",
            "verified_by": "id_number",
            "paid_at": paid_at,
        }
        for n, person in enumerate(route["people"])
    ]

    def sync_all() -> tuple[float, dict[str, int]]:
        seen: dict[str, int] = {}
        started = time.perf_counter()
        for start in range(0, len(queue), 50):
            answer = client.post(
                "/api/v1/sync", json={"payouts": queue[start : start + 50]}, headers=tablet
            ).get_json()
            for result in answer["results"]:
                seen[result["status"]] = seen.get(result["status"], 0) + 1
        return time.perf_counter() - started, seen

    first_s, first = sync_all()
    again_s, again = sync_all()

    median = statistics.median
    print(f"home-delivery route of {len(route['people'])} people ({url.split(':')[0]})")
    print(f"{'case':<52} {'value':>14} {'ratio':>8}")
    base_ms = median(baselines) * 1000
    print(f"{'baseline: bare SELECT + json.dumps, ms':<52} {base_ms:>14.1f} {'1.0x':>8}")
    ratio = median(downloads) / median(baselines)
    print(f"{'GET /routes/current, ms':<52} {median(downloads) * 1000:>14.1f} {ratio:>7.1f}x")
    print(f"{'baseline body, bytes':<52} {len(bare):>14,}")
    print(f"{'route body, bytes':<52} {len(body):>14,}")
    print(f"{'route body gzipped, bytes':<52} {len(gzip.compress(body)):>14,}")
    print(f"{'POST /routes (reserve all), ms':<52} {assign_s * 1000:>14.1f}")
    label = f"sync {len(queue)} payouts (receipt PDFs drawn), items/s"
    print(f"{label:<52} {len(queue) / first_s:>14.1f}   {first}")
    print(f"{'sync them again, items/s':<52} {len(queue) / again_s:>14.1f}   {again}")


if __name__ == "__main__":
    main()
