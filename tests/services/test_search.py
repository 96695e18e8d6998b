"""Name search: paging through two index reads merged, and the planner's statistics."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import insert, select, text

from terminal.db import get_engine, refresh_statistics, write_transaction
from terminal.models import Beneficiary, User
from terminal.services import counter
from terminal.text import fold, given_key
from tests.factories import make_beneficiary

# Surnames and given names that collide on purpose: "Hà" and "Hải" are both, "An"
# is a whole name of one word, and "h" starts either key of many people.
SURNAMES = ("Hà", "Hoàng", "An", "Nguyễn", "Nguyên", "Hải")
MIDDLES = ("", "Văn", "Thị", "Hà")
GIVEN = ("An", "Hà", "Hải", "Hoa", "Hoà", "Nguyên", "Anh")


def _names() -> list[str]:
    """Return every combination, some of them several times, and some one-word names."""
    names = []
    for s in SURNAMES:
        for m in MIDDLES:
            for g in GIVEN:
                names.append(" ".join(part for part in (s, m, g) if part))
    return names + names[::7] + ["An", "Hà", "Hải"]


@pytest.fixture
def roster(world, session):
    """People of point A, with look-alikes at point B who must never be found."""
    mine, theirs = world.point_a.communes, world.point_b.communes
    rows = []
    for n, name in enumerate(_names()):
        # Codes out of step with the names, so that ties on a key are broken by code.
        code = f"TTH{(n * 7919) % 100_000:07d}"
        commune = (mine if n % 5 else theirs)[n % 2]
        rows.append(
            {
                "code": code,
                "full_name": name,
                "name_key": fold(name),
                "given_key": given_key(name),
                "birth_year": 1950,
                "gender": "female",
                "category": "elderly_80",
                "commune_id": commune.id,
                "payment_method": "cash",
                "provider": "post",
                "monthly_vnd": 540_000,
                "status": "active",
            }
        )
    with write_transaction(session):
        session.execute(insert(Beneficiary), rows)
    ids = {c.id for c in mine}
    return [r for r in rows if r["commune_id"] in ids]


def _clerk(session) -> User:
    return session.scalars(select(User).where(User.username == "clerk1")).one()


def _expected(rows: list[dict], prefix: str) -> list[tuple[str, str]]:
    """Return (key that matched, code) of everyone a name search should find, in order."""
    found = []
    for row in rows:
        keys = [k for k in (row["name_key"], row["given_key"]) if k.startswith(prefix)]
        if keys:
            found.append((min(keys), row["code"]))
    return sorted(found)


def _all_pages(session, user, q: str, limit: int) -> list[tuple[str, str]]:
    """Page through a search to the end; return (matched key, code) per hit."""
    prefix = counter.classify_query(q)[1]
    seen, cursor = [], None
    for _ in range(1000):
        hits, cursor = counter.search(session, user, q, limit=limit, after=cursor)
        assert len(hits) <= limit
        for hit in hits:
            person = hit.beneficiary
            keys = [k for k in (person.name_key, person.given_key) if k.startswith(prefix)]
            seen.append((min(keys), person.code))
        if cursor is None:
            return seen
        assert len(hits) == limit and cursor == f"{seen[-1][0]}|{seen[-1][1]}"
    raise AssertionError("paging never ended")


PREFIXES = ["h", "ha", "hà", "hai", "hoa", "hoang", "an", "anh", "nguyen", "nguyen van"]


def test_paging_finds_everyone_once_in_order(session, roster):
    clerk = _clerk(session)
    for prefix in PREFIXES:
        for limit in (2, 7, 20):
            found = _all_pages(session, clerk, prefix, limit)
            assert found == _expected(roster, fold(prefix)), (prefix, limit)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    prefix=st.text(alphabet="ahngoiuyệà ", min_size=1, max_size=6).filter(lambda t: fold(t)),
    limit=st.integers(min_value=1, max_value=8),
)
def test_any_prefix_pages_without_skipping_or_repeating(session, roster, prefix, limit):
    expected = _expected(roster, fold(prefix))
    assert _all_pages(session, _clerk(session), prefix, limit) == expected


@pytest.mark.parametrize(
    "cursor",
    ["", "|", "no bar", "zzzz|TTH0000001", "a|", "h|\U0010ffff", "\U0010ffff|x", "h" * 300],
)
def test_any_cursor_gives_a_page(session, roster, cursor):
    """A cursor from a client is only a position: odd ones give a page, never an error."""
    hits, _ = counter.search(session, _clerk(session), "h", after=cursor)
    key, _, code = cursor.rpartition("|")
    expected = [e for e in _expected(roster, "h") if not cursor or e > (key, code)][:20]
    found = []
    for hit in hits:
        person = hit.beneficiary
        keys = [k for k in (person.name_key, person.given_key) if k.startswith("h")]
        found.append((min(keys), person.code))
    assert found == expected


@pytest.mark.parametrize(
    ("value", "end"),
    [
        ("nguyen", "nguyeo"),
        ("nguyen thi", "nguyen thj"),
        ("a\U0010ffff", "b"),
        ("\U0010ffff", None),
        ("\ud7ff", "\ue000"),
    ],
)
def test_prefix_end(value, end):
    assert counter._prefix_end(value) == end


def test_exact_matches_keep_their_order_and_cursor(session, world):
    """ID, phone and code searches are ordered by (name key, code), as before."""
    commune = world.point_a.communes[0]
    for n, name in enumerate(["Trần Văn Bình", "Lê Thị An", "Lê Thị An"]):
        make_beneficiary(
            session,
            f"TTH00000{n + 1:02d}",
            commune=commune,
            full_name=name,
            id_number=None,
            phone="0928816302",
        )
    hits, cursor = counter.search(session, _clerk(session), "0928816302", limit=2)
    assert [h.beneficiary.code for h in hits] == ["TTH0000002", "TTH0000003"]
    assert cursor == "le thi an|TTH0000003"
    hits, cursor = counter.search(session, _clerk(session), "0928816302", limit=2, after=cursor)
    assert [h.beneficiary.code for h in hits] == ["TTH0000001"] and cursor is None


def test_search_keys_compare_bytes_on_postgresql(app):
    """Prefix ranges and the merge rely on it (models.base.search_key)."""
    engine = get_engine(app)
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite compares bytes (BINARY) by default")
    with engine.connect() as conn:
        collations = dict(
            conn.execute(
                text(
                    "SELECT column_name, collation_name FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'beneficiaries' "
                    "AND column_name IN ('code', 'name_key', 'given_key')"
                )
            ).all()
        )
    assert collations == {"code": "C", "name_key": "C", "given_key": "C"}


# ---- statistics ------------------------------------------------------------------


def _plan_of_a_scoped_search(conn, communes: list[int]) -> str:
    """Return SQLite's plan for a name search limited to some communes."""
    listed = ", ".join(str(int(c)) for c in communes)
    rows = conn.execute(
        "EXPLAIN QUERY PLAN SELECT id FROM beneficiaries WHERE name_key >= 'name 1' "
        f"AND name_key < 'name 2' AND commune_id IN ({listed}) ORDER BY name_key, code LIMIT 21"
    ).fetchall()
    return " | ".join(row[-1] for row in rows)


def _fill(session, world, count: int) -> None:
    """Add many people in few communes, as a real roster has."""
    communes = world.point_a.communes
    rows = [
        {
            "code": f"TTH{n:07d}",
            "full_name": "x",
            "name_key": f"name {n:06d}",
            "given_key": f"given {n:06d}",
            "birth_year": 1950,
            "gender": "female",
            "category": "elderly_80",
            "commune_id": communes[n % len(communes)].id,
            "payment_method": "cash",
            "provider": "post",
            "monthly_vnd": 540_000,
            "status": "active",
        }
        for n in range(count)
    ]
    with write_transaction(session):
        session.execute(insert(Beneficiary), rows)


def test_statistics_reach_connections_already_open(app, session, world):
    """A worker's open connection plans with the new statistics, not those it loaded."""
    engine = get_engine(app)
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite keeps statistics per connection; PostgreSQL shares them")
    _fill(session, world, 3000)
    refresh_statistics(session)
    # Statistics that say the opposite of the truth: names all alike, one person a commune.
    with write_transaction(session):
        session.execute(
            text("UPDATE sqlite_stat1 SET stat = '3000 3000 3000 3000' WHERE idx = :i"),
            {"i": "ix_beneficiaries_name_key"},
        )
        session.execute(
            text("UPDATE sqlite_stat1 SET stat = '3000 1 1' WHERE idx = :i"),
            {"i": "ix_beneficiaries_commune_status"},
        )
    communes = [c.id for c in world.point_a.communes[:2]]
    worker = sqlite3.connect(engine.url.database, cached_statements=0)
    try:
        misled = _plan_of_a_scoped_search(worker, communes)
        assert "ix_beneficiaries_commune_status" in misled, misled
        refresh_statistics(session)
        worker.execute("SELECT count(*) FROM beneficiaries").fetchall()  # notices the change
        planned = _plan_of_a_scoped_search(worker, communes)
        assert "ix_beneficiaries_name_key" in planned and "TEMP B-TREE" not in planned, planned
    finally:
        worker.close()


def test_statistics_only_if_missing(app, session, world):
    engine = get_engine(app)
    _fill(session, world, 50)
    if engine.dialect.name != "sqlite":
        assert refresh_statistics(engine, if_missing=True) is False  # autovacuum's job
        assert refresh_statistics(engine) is True
        with engine.connect() as conn:
            analysed = conn.execute(
                text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname = 'beneficiaries'"
                )
            ).scalar()
        assert analysed
        return
    assert refresh_statistics(engine, if_missing=True) is True  # a filled table, no stats
    assert refresh_statistics(engine, if_missing=True) is False
    with engine.connect() as conn:
        indexes = set(conn.exec_driver_sql("SELECT idx FROM sqlite_stat1").scalars())
    assert {"ix_beneficiaries_name_key", "ix_beneficiaries_given_key"} <= indexes


def test_an_import_refreshes_the_statistics(app, session, world, tmp_path):
    from terminal.services.roster import import_roster

    engine = get_engine(app)
    source = tmp_path / "roster.csv"
    source.write_bytes((Path(__file__).parents[1] / "data" / "sample-roster.csv").read_bytes())
    import_roster(session, source, period="2021-10", actor="admin1")
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            stats = conn.exec_driver_sql(
                "SELECT stat FROM sqlite_stat1 WHERE idx = 'ix_beneficiaries_name_key'"
            ).scalar()
            people = conn.exec_driver_sql("SELECT count(*) FROM beneficiaries").scalar()
            assert stats is not None and int(stats.split()[0]) == people
        else:
            analysed = conn.execute(
                text(
                    "SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                    "WHERE schemaname = current_schema() AND relname = 'beneficiaries'"
                )
            ).scalar()
            assert analysed
