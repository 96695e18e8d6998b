"""A generated 100,000-row roster imports completely, and a second time changes nothing.

Speed and memory are measured by benchmarks/roster_import.py, not asserted here.
"""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from terminal.models import Beneficiary, Entitlement, RosterImport
from terminal.services.audit import verify_chain
from terminal.services.roster import import_roster
from terminal.services.roster_file import write_roster_csv
from terminal.synthetic import PILOT_DISTRICTS, synthetic_people

ROWS = 100_000


@pytest.mark.slow
def test_a_hundred_thousand_rows(session, tmp_path):
    path = tmp_path / "province.csv"
    districts = [(d.name, d.communes) for d in PILOT_DISTRICTS]
    people = list(synthetic_people(ROWS, seed=11, districts=districts, today=date(2021, 10, 1)))
    active = sum(1 for p in people if p["status"] == "active")
    assert write_roster_csv(people, path) == ROWS
    del people
    first = import_roster(session, path, period="2021-10", actor="test", today=date(2021, 10, 15))
    assert first.added == ROWS and first.rejected == 0
    assert first.entitlements_created == active
    assert session.scalar(select(func.count(Beneficiary.id))) == ROWS
    assert session.scalar(select(func.count(Entitlement.id))) == active
    second = import_roster(session, path, period="2021-10", actor="test", today=date(2021, 10, 15))
    assert second.counts() == dict(
        added=0, updated=0, unchanged=ROWS, stopped=0, missing=0, rejected=0
    )
    assert second.entitlements_created == second.entitlements_updated == 0
    assert session.scalar(select(func.count(RosterImport.id))) == 2
    assert verify_chain(session).ok
