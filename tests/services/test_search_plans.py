"""Every search is answered from indexes, on a roster of realistic size with statistics.

Plans depend on the size and the shape of the data: on a handful of rows any plan
is fast and the planner may pick any. So this module builds, once, 20,000 people
with the generator (which refreshes the planner's statistics at the end, as an
import does), a point serving one commune in ten beside the generator's point
serving them all, and looks at the plan of every statement a search runs
(PERFORMANCE.md: a scoped name search once scanned a whole point's people).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from terminal.db import make_engine
from terminal.models import Area, Beneficiary, User
from terminal.policy import commune_scope
from terminal.services import counter
from terminal.synthetic import generate
from tests.conftest import PG_URL
from tests.databases import schema_url
from tests.factories import make_point, make_user

PEOPLE = 20_000


@pytest.fixture(scope="module")
def roster(
    database_template: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Any, dict[str, User]]]:
    """Return an engine on a generated roster, and a clerk of a wide and of a narrow point."""
    if PG_URL:
        schema = f"plans_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = schema_url(PG_URL, schema)
        from terminal.schema import upgrade

        engine = make_engine(url)
        upgrade(engine)
    else:
        engine = make_engine(database_template.fresh("empty", "plans"))
    try:
        with Session(engine, expire_on_commit=False) as session:
            generate(session, beneficiaries=PEOPLE, periods=1, seed=11, first_period="2021-10")
            communes = session.execute(
                select(Area.name, Area.parent_id).where(Area.level == "commune").order_by(Area.id)
            ).all()
            district = session.get(Area, communes[0].parent_id)
            make_point(session, "HEP", district=district.name, communes=(communes[0].name,))
            wide_code = _point_serving(session, communes[-1].name)
            users = {
                "wide": make_user(session, "clerkwide", "clerk", point=wide_code),
                "narrow": make_user(session, "clerknarrow", "clerk", point="HEP"),
            }
        yield engine, users
    finally:
        engine.dispose()
        if not PG_URL:
            database_template.discard("plans")
        if PG_URL:
            with admin.begin() as conn:
                conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            admin.dispose()


def _point_serving(session: Session, commune: str) -> str:
    """Return the code of the generator's point serving a commune."""
    from terminal.models import PayoutPoint, point_communes

    return session.scalar(
        select(PayoutPoint.code)
        .join(point_communes, point_communes.c.point_id == PayoutPoint.id)
        .join(Area, Area.id == point_communes.c.commune_id)
        .where(Area.name == commune, PayoutPoint.code != "HEP")
    )


def _search(engine: Any, session: Session, user: User, q: str, after: str | None = None) -> Any:
    """Run a search; return its result and the statements it ran on beneficiaries."""
    seen = []

    def capture(conn, cursor, statement, parameters, context, executemany):
        if "FROM beneficiaries" in statement and "LIMIT" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        return counter.search(session, user, q, after=after), seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def _plan(engine: Any, statement: str, parameters: Any) -> str:
    """Return the database's plan for a statement, on one line."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
            return " | ".join(str(row[-1]) for row in rows)
        return " | ".join(conn.exec_driver_sql("EXPLAIN " + statement, parameters).scalars())


def _queries(engine: Any, user: User) -> dict[str, str]:
    """Return search texts of every kind, taken from the user's own communes."""
    with Session(engine) as session:
        scope = commune_scope(session, user)
        person = session.scalars(
            select(Beneficiary)
            .where(
                Beneficiary.commune_id.in_(scope),
                Beneficiary.id_number.is_not(None),
                Beneficiary.phone.is_not(None),
            )
            .order_by(Beneficiary.id)
            .limit(1)
        ).one()
        return {
            "common surname": "nguyen",
            "common prefix": "nguyen thi",
            "one letter": "h",
            "given name": "hoa",
            "full name": person.full_name,
            "nobody": "zzyzx",
            "id": person.id_number,
            "phone": person.phone,
            "code": person.code,
        }


NAME_KINDS = ("common surname", "common prefix", "one letter", "given name", "full name", "nobody")


@pytest.mark.parametrize("point", ["wide", "narrow"])
def test_every_search_is_answered_from_indexes(roster, point):
    engine, users = roster
    user = users[point]
    for kind, q in _queries(engine, user).items():
        with Session(engine) as session:
            (hits, cursor), statements = _search(engine, session, user, q)
            if cursor:  # the second page is entered at the cursor, not read from the start
                statements += _search(engine, session, user, q, after=cursor)[1]
        assert statements, kind
        for statement, parameters in statements:
            plan = _plan(engine, statement, parameters)
            # Statistics tell the planner that a point's communes hold thousands.
            assert "ix_beneficiaries_commune_status" not in plan, (kind, plan)
            # Exact matches come from their own index, never from a walk along the names.
            uses_names = "ix_beneficiaries_name_key" in plan or "ix_beneficiaries_given_key" in plan
            assert uses_names == (kind in NAME_KINDS), (kind, plan)
            if engine.dialect.name == "sqlite":
                assert "SCAN beneficiaries" not in plan, (kind, plan)
                if kind in NAME_KINDS:
                    assert "TEMP B-TREE" not in plan, (kind, plan)
            else:
                assert "Seq Scan on beneficiaries" not in plan, (kind, plan)
                if kind in NAME_KINDS:
                    assert "Sort" not in plan, (kind, plan)
        assert hits or kind == "nobody", kind


@pytest.mark.parametrize("q", ["nguyen", "h"])
def test_a_common_prefix_is_found_page_after_page(roster, q):
    """The first pages are in order of the key that matched and never repeat anyone."""
    engine, users = roster
    seen: list[tuple[str, str]] = []
    with Session(engine) as session:
        cursor = None
        for _ in range(5):
            hits, cursor = counter.search(session, users["narrow"], q, after=cursor)
            for hit in hits:
                person = hit.beneficiary
                keys = [k for k in (person.name_key, person.given_key) if k.startswith(q)]
                seen.append((min(keys), person.code))
            assert cursor == f"{seen[-1][0]}|{seen[-1][1]}"
    assert seen == sorted(set(seen)) and len(seen) == 100
