"""The one payment path (services.payouts.pay): keys, refusals, the database's guard,
the channel rule, and how many statements a payment costs."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from terminal.db import get_engine, write_transaction
from terminal.models import (
    AuditEvent,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Failure,
    IdempotencyRecord,
    IdempotencyState,
    Payout,
    PayoutLine,
    PayoutStatus,
    utcnow,
)
from terminal.services import idempotency, payouts, verifications
from terminal.services.errors import Forbidden, ServiceError
from tests.factories import make_beneficiary, set_float


@pytest.fixture
def hoa(world, session):
    """A cash beneficiary of point HTBD with two due periods, and a float."""
    person = make_beneficiary(
        session,
        "TTH0000001",
        commune=world.point_a.communes[0],
        periods=(("2021-09", 0), ("2021-10", 1_080_000)),
        proxy={"full_name": "Trần Văn Tư", "id_number": "046080000002", "relationship": "Con"},
    )
    set_float(session, "HTBD")
    return person


@pytest.fixture
def banked(world, session):
    """An account holder (Viettel Pay) of point HTBD."""
    return make_beneficiary(
        session,
        "TTH0000007",
        commune=world.point_a.communes[0],
        full_name="Phan Văn Bảy",
        id_number="046160000007",
        method="account",
        provider="viettel_pay",
    )


def verified(session, user, person, identity=None):
    """Return a fresh verification of the beneficiary in person."""
    return verifications.verify_collector(
        session,
        user,
        beneficiary_code=person.code,
        id_number=identity or person.id_number,
    ).verification.id


def due_ids(session, person):
    return tuple(
        session.scalars(
            select(Entitlement.id)
            .where(Entitlement.beneficiary_id == person.id, Entitlement.status == "due")
            .order_by(Entitlement.id)
        )
    )


def pay(session, user, order, key=None, verify_url=None):
    return payouts.pay(
        session,
        user,
        order,
        key=key or str(uuid.uuid4()),
        verify_url=verify_url or (lambda payout: f"http://test/r/{payout.id}"),
    )


def count(session, model, *where):
    session.rollback()
    return session.scalar(select(func.count()).select_from(model).where(*where))


# ---- the key protocol --------------------------------------------------------------


def test_same_key_same_order_replays_the_first_answer(session, world, hoa):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(verified(session, clerk, hoa), due_ids(session, hoa), "cash")
    first = pay(session, clerk, order, key="k-1")
    again = pay(session, clerk, order, key="k-1")
    assert first.status == 201 and not first.replayed
    assert again.replayed and again.body == first.body
    assert count(session, Payout) == 1


def test_same_key_other_order_is_refused(session, world, hoa):
    clerk = world.users["clerk"]
    ids = due_ids(session, hoa)
    v = verified(session, clerk, hoa)
    pay(session, clerk, payouts.PayoutOrder(v, ids[:1], "cash"), key="k-2")
    with pytest.raises(idempotency.KeyReused):
        pay(session, clerk, payouts.PayoutOrder(v, ids[1:], "cash"), key="k-2")
    assert count(session, Payout) == 1


def test_keys_belong_to_their_user(session, world, hoa):
    clerk, agent = world.users["clerk"], world.users["agent"]
    ids = due_ids(session, hoa)
    pay(session, clerk, payouts.PayoutOrder(verified(session, clerk, hoa), ids[:1], "cash"), "k")
    other = pay(
        session, agent, payouts.PayoutOrder(verified(session, agent, hoa), ids[1:], "cash"), "k"
    )
    assert other.status == 201 and not other.replayed
    assert count(session, Payout) == 2


def test_a_refusal_is_the_keys_answer_and_is_recorded_once(session, world, hoa):
    clerk = world.users["clerk"]
    set_float(session, "HTBD", 10_000)
    order = payouts.PayoutOrder(verified(session, clerk, hoa), due_ids(session, hoa), "cash")
    with pytest.raises(payouts.InsufficientCash) as refused:
        pay(session, clerk, order, key="k-3")
    replay = pay(session, clerk, order, key="k-3")
    assert replay.replayed and replay.status == 422
    assert replay.body["error"] == "insufficient_cash"
    assert replay.body["failure_id"] == refused.value.fields["failure_id"]
    failure = session.get(Failure, refused.value.fields["failure_id"])
    assert failure.reason.value == "insufficient_cash"
    assert failure.detail_code == "refusal.insufficient_cash"
    assert count(session, Failure) == 1 and count(session, Payout) == 0


def test_a_key_is_released_with_an_unexpected_error(session, world, hoa):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(verified(session, clerk, hoa), due_ids(session, hoa), "cash")

    def broken(_payout):
        raise RuntimeError("the signing key is unreadable")

    with pytest.raises(RuntimeError):
        pay(session, clerk, order, key="k-4", verify_url=broken)
    # Nothing of the failed attempt stays: no payout, no key, entitlements still due.
    assert count(session, Payout) == 0
    assert count(session, IdempotencyRecord) == 0
    assert count(session, Entitlement, Entitlement.status == "paid") == 0
    # The person is not lost: a system_error case waits in the follow-up queue...
    case = session.scalars(select(Failure)).one()
    assert (case.reason, case.status, case.beneficiary_id) == ("system_error", "open", hoa.id)
    assert case.detail_code == "payment.system_error"
    assert "RuntimeError" in case.detail_params and "signing" not in case.detail_params
    retried = pay(session, clerk, order, key="k-4")
    assert retried.status == 201 and not retried.replayed
    assert count(session, Payout) == 1
    # ...until the retried payout settles it.
    session.refresh(case)
    assert (case.status, case.resolved_payout_id) == ("resolved", retried.payout_id)


def test_a_stale_claim_is_taken_over_and_a_fresh_one_is_in_progress(session, world):
    clerk = world.users["clerk"]
    claimed = idempotency.claim_key(session, clerk, "long-op", "h" * 64)
    assert isinstance(claimed, int)
    with pytest.raises(idempotency.InProgress):
        idempotency.claim_key(session, clerk, "long-op", "h" * 64)
    with write_transaction(session):
        record = session.get(IdempotencyRecord, claimed)
        record.created_at = utcnow() - idempotency.STALE_IN_PROGRESS - timedelta(seconds=1)
    assert idempotency.claim_key(session, clerk, "long-op", "h" * 64) == claimed
    idempotency.finish_alone(session, claimed, 201, {"ok": True})
    again = idempotency.claim_key(session, clerk, "long-op", "h" * 64)
    assert again == idempotency.StoredResponse(201, {"ok": True})
    with pytest.raises(idempotency.KeyReused):
        idempotency.claim_key(session, clerk, "long-op", "x" * 64)


def test_a_released_claim_can_be_claimed_again(session, world):
    clerk = world.users["clerk"]
    claimed = idempotency.claim_key(session, clerk, "op", "h" * 64)
    idempotency.release_key(session, claimed)
    assert count(session, IdempotencyRecord) == 0
    assert isinstance(idempotency.claim_key(session, clerk, "op", "h" * 64), int)
    session.rollback()
    record = session.scalar(select(IdempotencyRecord))
    assert record.state is IdempotencyState.IN_PROGRESS


@pytest.mark.parametrize("key", [None, "", "a b", "é", "x" * 256])
def test_a_missing_or_malformed_key_is_refused_before_anything(session, world, hoa, key):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(verified(session, clerk, hoa), due_ids(session, hoa), "cash")
    with pytest.raises(ServiceError) as refused:
        payouts.pay(session, clerk, order, key=key, verify_url=lambda p: "")
    assert refused.value.status == 400
    assert count(session, Payout) == 0 and count(session, IdempotencyRecord) == 0


# ---- the database's own guard ---------------------------------------------------------


def _live_line_behind_the_checks(session, world, person, entitlement_id):
    """Write a payout for an entitlement directly, leaving the entitlement "due".

    This is what a concurrent winner looks like to a request whose "already paid?"
    check ran before the winner committed.
    """
    with write_transaction(session):
        payout = Payout(
            point_id=world.point_a.id,
            user_id=world.users["clerk"].id,
            beneficiary_id=person.id,
            channel=Channel.CASH,
            collector_type=CollectorType.BENEFICIARY,
            amount_vnd=540_000,
            status=PayoutStatus.COMPLETED,
            paid_at=utcnow(),
        )
        session.add(payout)
        session.flush()
        session.add(PayoutLine(payout_id=payout.id, entitlement_id=entitlement_id, amount_vnd=1))
    return payout


def test_the_database_refuses_a_second_live_line(session, world, hoa):
    entitlement_id = due_ids(session, hoa)[0]
    _live_line_behind_the_checks(session, world, hoa, entitlement_id)
    with pytest.raises(IntegrityError):
        _live_line_behind_the_checks(session, world, hoa, entitlement_id)
    session.rollback()
    assert count(session, PayoutLine, PayoutLine.entitlement_id == entitlement_id) == 1


def test_the_database_guard_becomes_already_paid(session, world, hoa):
    clerk = world.users["clerk"]
    ids = due_ids(session, hoa)
    _live_line_behind_the_checks(session, world, hoa, ids[1])
    session.rollback()
    assert session.get(Entitlement, ids[1]).status is EntitlementStatus.DUE
    order = payouts.PayoutOrder(verified(session, clerk, hoa), ids, "cash")
    with pytest.raises(payouts.AlreadyPaid) as refused:
        pay(session, clerk, order, key="k-guard")
    assert refused.value.status == 409
    assert refused.value.fields["entitlement_id"] == ids[1]
    assert count(session, Payout) == 1  # only the one written behind the checks
    replay = pay(session, clerk, order, key="k-guard")
    assert replay.replayed and replay.body["error"] == "already_paid"


# ---- the channel follows the payment method ---------------------------------------------


def test_a_cash_beneficiary_is_not_paid_as_account(session, world, hoa):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(
        verified(session, clerk, hoa), due_ids(session, hoa), "account", "VTP-1"
    )
    with pytest.raises(payouts.ChannelNotAllowed) as refused:
        pay(session, clerk, order)
    assert refused.value.fields["method"] == "cash"
    assert count(session, Payout) == 0


def test_an_account_holder_is_not_paid_cash_without_the_supervisor(session, world, banked):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(verified(session, clerk, banked), due_ids(session, banked), "cash")
    with pytest.raises(payouts.ChannelNotAllowed):
        pay(session, clerk, order)
    with pytest.raises(Forbidden):
        pay(
            session,
            clerk,
            payouts.PayoutOrder(
                order.verification_id,
                order.entitlement_ids,
                "cash",
                override_reason="the account is locked",
            ),
        )
    assert count(session, Payout) == 0


def test_the_supervisors_override_pays_cash_from_the_float_and_is_audited(session, world, banked):
    supervisor = world.users["supervisor"]
    set_float(session, "HTBD", 1_000_000)
    order = payouts.PayoutOrder(
        verified(session, supervisor, banked),
        due_ids(session, banked),
        "cash",
        override_reason="Viettel Pay cannot pay out this credit",
    )
    outcome = pay(session, supervisor, order)
    assert outcome.status == 201 and outcome.body["channel"] == "cash"
    session.rollback()
    event = session.scalar(select(AuditEvent).where(AuditEvent.action == "payout.recorded"))
    assert "Viettel Pay cannot pay out this credit" in event.data
    from terminal.clock import today_local
    from terminal.services.cash import cash_position

    assert cash_position(session, world.point_a.id, today_local()).paid_vnd == 540_000


def test_an_account_holder_is_paid_by_account(session, world, banked):
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(
        verified(session, clerk, banked), due_ids(session, banked), "account", "VTP-0001"
    )
    assert pay(session, clerk, order).body["channel"] == "account"


# ---- what a payment costs ------------------------------------------------------------


def test_statements_per_payment(app, session, world, hoa, capsys):
    """Count what one payment runs: a regression guard, not a timing."""
    clerk = world.users["clerk"]
    order = payouts.PayoutOrder(verified(session, clerk, hoa), due_ids(session, hoa), "cash")
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split())[:90])

    engine = get_engine(app)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        session.rollback()
        outcome = pay(session, clerk, order)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert outcome.status == 201
    with capsys.disabled():
        print(f"\n  one payment: {len(statements)} statements")
    # BEGIN, key, verification, entitlements, float, payout, lines, entitlements,
    # receipt number, receipt, cases, audit head/event/head, key answer, COMMIT.
    assert len(statements) <= 18, "\n".join(statements)


# ---- the cases a payment settles ------------------------------------------------------


def test_a_payment_settles_its_people_open_cases_and_no_one_elses(session, world, hoa):
    from terminal.models import FailureReason, FailureStatus
    from terminal.services.failures import log_failure

    clerk = world.users["clerk"]
    ids = due_ids(session, hoa)
    other = make_beneficiary(session, "TTH0000009", commune=world.point_a.communes[0])
    # A case naming only the entitlement is filed under its beneficiary.
    by_entitlement = log_failure(
        session, user=clerk, reason=FailureReason.INSUFFICIENT_CASH, entitlement_id=ids[0]
    )
    assert by_entitlement.beneficiary_id == hoa.id
    absent = log_failure(
        session, user=clerk, reason=FailureReason.RECIPIENT_ABSENT, beneficiary_id=hoa.id
    )
    data = log_failure(session, user=clerk, reason=FailureReason.DATA_ERROR, beneficiary_id=hoa.id)
    elsewhere = log_failure(
        session, user=clerk, reason=FailureReason.RECIPIENT_ABSENT, beneficiary_id=other.id
    )
    outcome = pay(
        session,
        clerk,
        payouts.PayoutOrder(
            verification_id=verified(session, clerk, hoa), entitlement_ids=ids, channel="cash"
        ),
    )
    assert outcome.status == 201
    session.rollback()
    status = {f.id: (f.status, f.resolved_payout_id) for f in session.scalars(select(Failure))}
    assert status[by_entitlement.id] == (FailureStatus.RESOLVED, outcome.payout_id)
    assert status[absent.id] == (FailureStatus.RESOLVED, outcome.payout_id)
    assert status[data.id] == (FailureStatus.OPEN, None)  # the roster still needs fixing
    assert status[elsewhere.id] == (FailureStatus.OPEN, None)
