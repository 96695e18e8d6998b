"""The schema: migrations equal the models, and the database itself enforces the rules."""

from __future__ import annotations

from datetime import date

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from terminal.db import get_engine, write_transaction
from terminal.models import (
    Base,
    Beneficiary,
    BeneficiaryStatus,
    Category,
    Channel,
    CollectorType,
    Entitlement,
    Gender,
    PaymentMethod,
    Payout,
    PayoutLine,
    Period,
    Provider,
    utcnow,
)
from terminal.schema import current_revision, head_revision, upgrade
from tests.factories import make_point, make_user


def test_migrations_match_the_models(app):
    engine = get_engine(app)
    assert current_revision(engine) == head_revision()
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_upgrade_twice_changes_nothing(app):
    engine = get_engine(app)
    upgrade(engine)
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_sqlite_runs_durable(app):
    engine = get_engine(app)
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite only")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 1000


@pytest.fixture
def owed(session):
    """A beneficiary with one due entitlement, and a user and point to pay it."""
    point = make_point(session)
    user = make_user(session, "clerk1", "clerk", point="HTBD")
    commune = point.communes[0]
    with write_transaction(session):
        period = Period(code="2021-10")
        person = _beneficiary(commune, "TTH0000001")
        session.add_all([period, person])
        session.flush()
        ent = Entitlement(
            beneficiary=person, period=period, monthly_vnd=540000, arrears_vnd=0, amount_vnd=540000
        )
        session.add(ent)
    return {
        "point": point,
        "user": user,
        "person": person,
        "period": period,
        "ent": ent,
        "commune": commune,
    }


def _beneficiary(commune, code):
    return Beneficiary(
        code=code,
        full_name="Lê Thị Hương",
        name_key="le thi huong",
        given_key="huong le thi",
        birth_year=1953,
        date_of_birth=date(1953, 10, 12),
        gender=Gender.FEMALE,
        category=Category.ELDERLY_80,
        commune=commune,
        payment_method=PaymentMethod.CASH,
        provider=Provider.POST,
        monthly_vnd=540000,
        status=BeneficiaryStatus.ACTIVE,
    )


def _payout(o):
    return Payout(
        point_id=o["point"].id,
        user_id=o["user"].id,
        beneficiary_id=o["person"].id,
        channel=Channel.CASH,
        collector_type=CollectorType.BENEFICIARY,
        amount_vnd=540000,
        paid_at=utcnow(),
    )


def test_beneficiary_code_is_unique(session, owed):
    with pytest.raises(IntegrityError), write_transaction(session):
        session.add(_beneficiary(owed["commune"], "TTH0000001"))


def test_one_entitlement_per_beneficiary_and_period(session, owed):
    with pytest.raises(IntegrityError), write_transaction(session):
        session.add(
            Entitlement(
                beneficiary_id=owed["person"].id,
                period_id=owed["period"].id,
                monthly_vnd=1,
                arrears_vnd=0,
                amount_vnd=1,
            )
        )


@pytest.mark.parametrize(
    "monthly, arrears, amount",
    [(0, 0, 0), (-540000, 0, -540000), (540000, 0, 1), (540000, -1, 539999)],
)
def test_amounts_must_be_positive_and_add_up(session, owed, monthly, arrears, amount):
    other = Period(code="2021-11")
    with pytest.raises(IntegrityError), write_transaction(session):
        session.add(other)
        session.flush()
        session.add(
            Entitlement(
                beneficiary_id=owed["person"].id,
                period_id=other.id,
                monthly_vnd=monthly,
                arrears_vnd=arrears,
                amount_vnd=amount,
            )
        )


def test_enum_values_are_checked_by_the_database(session, owed):
    with pytest.raises(IntegrityError), write_transaction(session):
        session.execute(text("UPDATE entitlements SET status = 'stolen'"))


def test_at_most_one_live_payout_line_per_entitlement(session, owed):
    with write_transaction(session):
        first = _payout(owed)
        session.add(first)
        session.flush()
        session.add(
            PayoutLine(payout_id=first.id, entitlement_id=owed["ent"].id, amount_vnd=540000)
        )
    with pytest.raises(IntegrityError), write_transaction(session):
        second = _payout(owed)
        session.add(second)
        session.flush()
        session.add(
            PayoutLine(payout_id=second.id, entitlement_id=owed["ent"].id, amount_vnd=540000)
        )
    # A reversed line frees the entitlement to be paid again.
    with write_transaction(session):
        line = session.query(PayoutLine).one()
        line.reversed_at = utcnow()
        third = _payout(owed)
        session.add(third)
        session.flush()
        session.add(
            PayoutLine(payout_id=third.id, entitlement_id=owed["ent"].id, amount_vnd=540000)
        )
    assert session.query(PayoutLine).count() == 2


def test_foreign_keys_are_enforced(session, owed):
    with pytest.raises(IntegrityError), write_transaction(session):
        session.add(PayoutLine(payout_id=987654, entitlement_id=owed["ent"].id, amount_vnd=1))


def test_money_columns_hold_large_integers_exactly(session, owed):
    big = 9_007_199_254_740_993  # above 2**53: a float would round it
    with write_transaction(session):
        session.execute(text("UPDATE beneficiaries SET monthly_vnd = :v"), {"v": big})
    session.expire_all()
    assert session.get(Beneficiary, owed["person"].id).monthly_vnd == big
