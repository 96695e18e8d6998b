"""Payment verification by sampling: the draw, the answers, the cases, the pages, the exports."""

from __future__ import annotations

import csv
import io
import json
import random
import uuid
from dataclasses import dataclass

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from terminal.models import (
    Area,
    AuditEvent,
    Failure,
    FailureNote,
    PaymentSample,
    PaymentSampleItem,
    Payout,
    SampleAnswer,
)
from terminal.services import followup, payouts, sampling, verifications
from terminal.services.audit import verify_chain
from terminal.services.errors import ServiceError
from tests.conftest import csrf_from, login
from tests.factories import ROLES, make_beneficiary, set_float

PROXY_ID = "046080000002"
OTHER_ROLES = [r for r in ROLES if r != "auditor"]


@dataclass
class Paid:
    """The payouts of the sampling world, by person, and the populations they make."""

    by_name: dict[str, int]
    htbd_10: set[int]
    duong_10: set[int]
    htbd_09: set[int]
    plvt_10: set[int]


def _pay(session, user, person, periods, identity=None):
    """Pay a person's due entitlements of some periods through the one payment path."""
    from terminal.models import Entitlement, Period

    ids = tuple(
        session.scalars(
            select(Entitlement.id)
            .join(Period, Period.id == Entitlement.period_id)
            .where(
                Entitlement.beneficiary_id == person.id,
                Entitlement.status == "due",
                Period.code.in_(periods),
            )
            .order_by(Entitlement.id)
        )
    )
    verification = verifications.verify_collector(
        session, user, beneficiary_code=person.code, id_number=identity or person.id_number
    ).verification.id
    outcome = payouts.pay(
        session,
        user,
        payouts.PayoutOrder(verification, ids, "cash"),
        key=str(uuid.uuid4()),
        verify_url=lambda payout: f"http://test/r/{payout.id}",
    )
    assert outcome.status == 201, outcome.body
    return outcome.payout_id


@pytest.fixture
def paid(world, session) -> Paid:
    """Payouts at HTBD and PLVT in 2021-09 and 2021-10, one of them reversed."""
    duong, van = world.point_a.communes[0], world.point_a.communes[1]
    lang_co = world.point_b.communes[0]
    clerk, clerk_b = world.users["clerk"], world.users_b["clerk"]
    set_float(session, "HTBD")
    set_float(session, "PLVT")
    people = {}
    specs = [
        # name, commune, periods on the roster, periods paid (one payout)
        ("a1", duong, (("2021-10", 0),), ("2021-10",)),
        ("a2", duong, (("2021-10", 0), ("2021-11", 0)), ("2021-10",)),
        ("a3", duong, (("2021-10", 0),), ("2021-10",)),
        ("a4", duong, (("2021-10", 0),), ("2021-10",)),
        ("a5", duong, (("2021-10", 0),), ("2021-10",)),
        ("a6", van, (("2021-10", 0),), ("2021-10",)),
        ("a7", duong, (("2021-10", 0),), ("2021-10",)),  # reversed below
        ("a8", duong, (("2021-09", 0),), ("2021-09",)),  # another period only
        ("a9", duong, (("2021-09", 0), ("2021-10", 0)), ("2021-09", "2021-10")),
        ("b1", lang_co, (("2021-10", 0),), ("2021-10",)),
        ("b2", lang_co, (("2021-10", 0),), ("2021-10",)),
    ]
    by_name = {}
    for n, (name, commune, periods, paying) in enumerate(specs, start=1):
        person = make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=commune,
            full_name=f"Nguyễn Thị Hoa {name.upper()}",
            id_number=f"0461530{n:05d}",
            phone=f"09{n:08d}",
            periods=periods,
            proxy={"id_number": PROXY_ID, "full_name": "Trần Văn Tư", "relationship": "Con"}
            if name == "a1"
            else None,
        )
        people[name] = person
        user = clerk_b if name.startswith("b") else clerk
        identity = PROXY_ID if name == "a1" else None
        by_name[name] = _pay(session, user, person, paying, identity)
    payouts.reverse_payout(
        session, world.users["supervisor"], by_name["a7"], reason="Trả nhầm người nhận"
    )
    session.rollback()
    ids = by_name
    return Paid(
        by_name=ids,
        htbd_10={ids[n] for n in ("a1", "a2", "a3", "a4", "a5", "a6", "a9")},
        duong_10={ids[n] for n in ("a1", "a2", "a3", "a4", "a5", "a9")},
        htbd_09={ids["a8"], ids["a9"]},
        plvt_10={ids["b1"], ids["b2"]},
    )


def counts(session) -> tuple[int, int, int, int, int]:
    """Return how many samples, items, answered items, failures and audit events exist."""
    session.rollback()
    return (
        session.scalar(select(func.count()).select_from(PaymentSample)),
        session.scalar(select(func.count()).select_from(PaymentSampleItem)),
        session.scalar(select(func.count(PaymentSampleItem.answer))),
        session.scalar(select(func.count()).select_from(Failure)),
        session.scalar(select(func.count()).select_from(AuditEvent)),
    )


def drawn(session, sample) -> list[int]:
    session.rollback()
    return list(
        session.scalars(
            select(PaymentSampleItem.payout_id)
            .where(PaymentSampleItem.sample_id == sample.id)
            .order_by(PaymentSampleItem.payout_id)
        )
    )


def events(session, action):
    session.rollback()
    return [
        json.loads(e.data)
        for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
    ]


# ---- the draw ---------------------------------------------------------------------


def test_the_same_seed_draws_the_same_sample_and_anyone_can_redraw_it(session, world, paid):
    auditor = world.users["auditor"]
    first = sampling.draw_sample(
        session, auditor, period="2021-10", point_code="HTBD", size=3, seed="kiem-tra-10"
    )
    again = sampling.draw_sample(
        session, auditor, period="2021-10", point_code="htbd", size="3", seed="kiem-tra-10"
    )
    assert first.id != again.id
    assert drawn(session, first) == drawn(session, again)
    assert len(drawn(session, first)) == 3
    # The published recipe: random.Random(seed).sample over the ids in id order.
    population = sorted(paid.htbd_10)
    assert drawn(session, first) == sorted(random.Random("kiem-tra-10").sample(population, 3))
    # Without a seed one is made and recorded; it redraws the same payouts.
    made = sampling.draw_sample(session, auditor, period="2021-10", point_code="HTBD", size=3)
    assert len(made.seed) == 16 and made.seed != "kiem-tra-10"
    redrawn = sampling.draw_sample(
        session, auditor, period="2021-10", point_code="HTBD", size=3, seed=made.seed
    )
    assert drawn(session, made) == drawn(session, redrawn)
    assert session.get(PaymentSample, first.id).population == 7


def test_size_and_percent_arithmetic():
    size = sampling.sample_size
    assert size(7, size=3, percent=None) == 3
    assert size(7, size=20, percent=None) == 7  # more than were paid: all of them
    assert size(7, size=None, percent=10) == 1  # 0.7 rounds up
    assert size(7, size=None, percent=50) == 4  # 3.5 rounds up
    assert size(7, size=None, percent=100) == 7
    assert size(200, size=None, percent=1) == 2
    assert size(201, size=None, percent=1) == 3
    assert size(1, size=None, percent=1) == 1  # never empty


def test_percent_and_size_drawn_through_the_service(session, world, paid):
    auditor = world.users["auditor"]
    half = sampling.draw_sample(session, auditor, period="2021-10", point_code="HTBD", percent=50)
    assert len(drawn(session, half)) == 4
    assert (half.requested_percent, half.requested_size) == (50, None)
    everyone = sampling.draw_sample(session, auditor, period="2021-10", point_code="HTBD", size=20)
    assert set(drawn(session, everyone)) == paid.htbd_10
    tenth = sampling.draw_sample(session, auditor, period="2021-10", commune="Lăng Cô", percent=10)
    assert len(drawn(session, tenth)) == 1


def test_only_the_periods_completed_payouts_of_the_point_or_commune_are_drawn(session, world, paid):
    auditor = world.users["auditor"]
    draw = sampling.draw_sample
    at_point = draw(session, auditor, period="2021-10", point_code="HTBD", size=500)
    assert set(drawn(session, at_point)) == paid.htbd_10
    assert paid.by_name["a7"] not in drawn(session, at_point)  # reversed
    assert paid.by_name["a8"] not in drawn(session, at_point)  # another period
    # By name: world.point_a.communes reloads in the database's order after a rollback.
    duong = session.scalar(select(Area).where(Area.name == "Thủy Dương"))
    in_commune = draw(session, auditor, period="2021-10", commune=duong.id, size=500)
    assert set(drawn(session, in_commune)) == paid.duong_10  # not a6 of Thủy Vân
    by_name = draw(session, auditor, period="2021-10", commune="thuy duong", size=500)
    assert set(drawn(session, by_name)) == paid.duong_10
    september = draw(session, auditor, period="2021-09", point_code="HTBD", size=500)
    assert set(drawn(session, september)) == paid.htbd_09  # a9's one payout paid both
    other_point = draw(session, auditor, period="2021-10", point_code="PLVT", size=500)
    assert set(drawn(session, other_point)) == paid.plvt_10
    assert session.get(PaymentSample, other_point.id).population == 2


BAD_DRAWS = [
    ({"size": 0}, "sample_size_invalid", 400),
    ({"size": 501}, "sample_size_invalid", 400),
    ({"size": -1}, "sample_size_invalid", 400),
    ({"size": "abc"}, "sample_size_invalid", 400),
    ({"size": "1.5"}, "sample_size_invalid", 400),
    ({"size": True}, "sample_size_invalid", 400),
    ({"percent": 0}, "sample_percent_invalid", 400),
    ({"percent": 101}, "sample_percent_invalid", 400),
    ({"size": 3, "percent": 10}, "sample_size_required", 400),
    ({}, "sample_size_required", 400),
    ({"size": 3, "seed": "có dấu"}, "sample_seed_invalid", 400),
    ({"size": 3, "seed": "x" * 65}, "sample_seed_invalid", 400),
    ({"size": 3, "point_code": None}, "sample_scope_required", 400),
    ({"size": 3, "commune": "Phú Bài"}, "sample_scope_required", 400),
    ({"size": 3, "point_code": "NOPE"}, "point_not_found", 404),
    ({"size": 3, "point_code": None, "commune": "Không Có"}, "commune_not_found", 404),
    ({"size": 3, "point_code": None, "commune": 999999}, "commune_not_found", 404),
    ({"size": 3, "period": "2021-13"}, "period_invalid", 400),
    ({"size": 3, "period": "2030-01"}, "period_not_found", 404),
    ({"size": 3, "period": "2021-11"}, "sample_population_empty", 422),  # nothing paid
    ({"size": 3, "period": "2021-09", "point_code": "PLVT"}, "sample_population_empty", 422),
]


def test_bad_draws_are_refused_and_change_nothing(session, world, paid, monkeypatch):
    before = counts(session)
    # A percentage of a large population may exceed the most a sample holds.
    monkeypatch.setattr(sampling, "MAX_SIZE", 5)
    with pytest.raises(ServiceError) as refused:
        sampling.draw_sample(
            session, world.users["auditor"], period="2021-10", point_code="HTBD", percent=80
        )
    assert (refused.value.code, refused.value.fields) == ("sample_too_large", {"size": 6, "max": 5})
    monkeypatch.undo()
    for kwargs, code, status in BAD_DRAWS:
        args = {"period": "2021-10", "point_code": "HTBD", **kwargs}
        with pytest.raises(ServiceError) as refused:
            sampling.draw_sample(session, world.users["auditor"], **args)
        assert (refused.value.code, refused.value.status) == (code, status), kwargs
    assert counts(session) == before


def test_a_commune_by_id_must_be_a_commune(session, world, paid):
    district = world.point_a.district
    with pytest.raises(ServiceError) as refused:
        sampling.draw_sample(
            session, world.users["auditor"], period="2021-10", commune=district.id, size=1
        )
    assert refused.value.code == "commune_not_found"


def test_only_auditors_draw_or_answer(session, world, paid):
    auditor = world.users["auditor"]
    sample = sampling.draw_sample(session, auditor, period="2021-10", point_code="HTBD", size=1)
    item_id = sample.items[0].id
    before = counts(session)
    for role in OTHER_ROLES:
        with pytest.raises(ServiceError) as refused:
            sampling.draw_sample(
                session, world.users[role], period="2021-10", point_code="HTBD", size=1
            )
        assert refused.value.status == 403, role
        with pytest.raises(ServiceError) as refused:
            sampling.record_answer(session, world.users[role], item_id=item_id, answer="in_full")
        assert refused.value.status == 403, role
    assert counts(session) == before


# ---- the answers ------------------------------------------------------------------


def _items(session, world, size=500):
    """Draw every 2021-10 payout of HTBD and return {payout_id: item_id}."""
    sample = sampling.draw_sample(
        session, world.users["auditor"], period="2021-10", point_code="HTBD", size=size
    )
    session.rollback()
    return sample, {
        i.payout_id: i.id
        for i in session.scalars(
            select(PaymentSampleItem).where(PaymentSampleItem.sample_id == sample.id)
        )
    }


def test_each_answer_kind_is_recorded(session, world, paid):
    auditor = world.users["auditor"]
    sample, items = _items(session, world)
    a1, a2, a3 = (items[paid.by_name[n]] for n in ("a1", "a2", "a3"))
    full = sampling.record_answer(session, auditor, item_id=a1, answer="in_full", note="Gặp bà")
    assert (full.answer, full.reported_vnd, full.failure_id) == (
        SampleAnswer.IN_FULL,
        540_000,
        None,
    )
    assert full.answered_by_id == auditor.id and full.answered_at is not None
    # The amount typed may repeat the answer: the full amount, or nothing.
    none = sampling.record_answer(
        session, auditor, item_id=a2, answer=SampleAnswer.NOT_RECEIVED, reported_vnd="0"
    )
    assert (none.answer, none.reported_vnd) == (SampleAnswer.NOT_RECEIVED, 0)
    assert none.failure_id is not None
    other = sampling.record_answer(
        session,
        auditor,
        item_id=a3,
        answer="other_amount",
        reported_vnd="500.000",
        note="Bà nói chỉ nhận 500 nghìn",
    )
    assert (other.answer, other.reported_vnd) == (SampleAnswer.OTHER_AMOUNT, 500_000)
    session.rollback()
    case = session.get(Failure, other.failure_id)
    assert (case.reason, case.status, case.is_case) == ("other", "open", True)
    assert case.detail_code == "sampling.other_amount"
    assert case.point_id == world.point_a.id  # the point that paid, not the auditor's (none)
    assert case.user_id == auditor.id
    assert case.beneficiary_id == session.get(Payout, paid.by_name["a3"]).beneficiary_id
    assert case.entitlement_id is not None
    text = followup.item_of(case)["detail"]
    assert f"#{sample.id}" in text and "540.000" in text and "500.000" in text
    assert session.scalar(select(FailureNote.text).where(FailureNote.failure_id == case.id)) == (
        "Bà nói chỉ nhận 500 nghìn"
    )
    nothing = session.get(Failure, none.failure_id)
    assert nothing.detail_code == "sampling.not_received"
    assert "540.000" in followup.item_of(nothing)["detail"]
    # Zero is another amount too (the person says nothing, in other words).
    zero = sampling.record_answer(
        session, auditor, item_id=items[paid.by_name["a4"]], answer="other_amount", reported_vnd=0
    )
    assert zero.reported_vnd == 0 and zero.failure_id is not None


BAD_ANSWERS = [
    (None, None, None, "sample_answer_invalid"),
    ("paid", None, None, "sample_answer_invalid"),
    ("other_amount", None, None, "sample_amount_required"),
    ("other_amount", "540.000", None, "sample_amount_same"),
    ("other_amount", "abc", None, "amount_invalid"),
    ("other_amount", "-5", None, "amount_invalid"),
    ("other_amount", "1.5", None, "amount_invalid"),
    ("in_full", "500.000", None, "sample_amount_contradicts"),
    ("not_received", "100", None, "sample_amount_contradicts"),
    ("in_full", None, "x" * 501, "sample_note_invalid"),
]


def test_bad_answers_are_refused_and_change_nothing(session, world, paid):
    _sample, items = _items(session, world)
    item_id = items[paid.by_name["a1"]]  # paid 540.000: "other amount 540.000" is refused
    before = counts(session)
    for answer, reported, note, code in BAD_ANSWERS:
        with pytest.raises(ServiceError) as refused:
            sampling.record_answer(
                session,
                world.users["auditor"],
                item_id=item_id,
                answer=answer,
                reported_vnd=reported,
                note=note,
            )
        assert (refused.value.code, refused.value.status) == (code, 400), (answer, reported)
    assert counts(session) == before


def test_an_answer_is_final(session, world, paid):
    auditor = world.users["auditor"]
    sample, items = _items(session, world)
    item_id = items[paid.by_name["a5"]]
    first = sampling.record_answer(session, auditor, item_id=item_id, answer="not_received")
    before = counts(session)
    for answer in ("in_full", "not_received"):
        with pytest.raises(ServiceError) as refused:
            sampling.record_answer(session, auditor, item_id=item_id, answer=answer)
        assert (refused.value.code, refused.value.status) == ("already_answered", 409)
        assert refused.value.fields["failure_id"] == first.failure_id
    assert counts(session) == before
    # An item of another sample, or none at all, is not found.
    with pytest.raises(ServiceError) as refused:
        sampling.record_answer(
            session, auditor, item_id=item_id, sample_id=sample.id + 1, answer="in_full"
        )
    assert refused.value.code == "sample_item_not_found"
    with pytest.raises(ServiceError):
        sampling.record_answer(session, auditor, item_id=999_999, answer="in_full")
    assert counts(session) == before


def test_a_discrepancy_waits_in_the_paying_points_queue(session, world, paid, as_role):
    auditor = world.users["auditor"]
    _sample, items = _items(session, world)
    item = sampling.record_answer(
        session, auditor, item_id=items[paid.by_name["a2"]], answer="not_received"
    )
    case_id = item.failure_id
    queue = as_role("supervisor").get("/followup/").get_data(as_text=True)
    assert f"#{case_id}<" in queue
    page = as_role("supervisor").get(f"/followup/{case_id}").get_data(as_text=True)
    assert "540.000" in page
    # The person's next payout (another period) does not close the case: it names the
    # entitlement paid, which stays paid.
    a2 = session.get(Payout, paid.by_name["a2"]).beneficiary
    _pay(session, world.users["clerk"], a2, ("2021-11",))
    session.rollback()
    assert session.get(Failure, case_id).status == "open"


def test_another_points_supervisor_does_not_see_the_case(session, world, paid, app):
    auditor = world.users["auditor"]
    _sample, items = _items(session, world)
    item = sampling.record_answer(
        session, auditor, item_id=items[paid.by_name["a3"]], answer="not_received"
    )
    client = app.test_client()
    login(client, world.users_b["supervisor"].username)
    assert f"#{item.failure_id}<" not in client.get("/followup/").get_data(as_text=True)
    assert client.get(f"/followup/{item.failure_id}").status_code == 404


def test_the_audit_trail_records_draws_answers_and_cases(session, world, paid):
    auditor = world.users["auditor"]
    sample, items = _items(session, world)
    first, second = items[paid.by_name["a1"]], items[paid.by_name["a2"]]  # 540.000 each
    sampling.record_answer(session, auditor, item_id=first, answer="in_full")
    sampling.record_answer(
        session, auditor, item_id=second, answer="other_amount", reported_vnd="440000"
    )
    (drawn_event,) = events(session, "sample.drawn")
    assert drawn_event["seed"] == sample.seed and drawn_event["point"] == "HTBD"
    assert sorted(drawn_event["payout_ids"]) == sorted(items)
    assert (drawn_event["population"], drawn_event["size"]) == (7, 7)
    answered = events(session, "sample.answered")
    assert [e["answer"] for e in answered] == ["in_full", "other_amount"]
    assert answered[1]["reported_vnd"] == 440_000 and answered[1]["paid_vnd"] == 540_000
    assert answered[1]["failure_id"] and answered[0]["failure_id"] is None
    recorded = events(session, "failure.recorded")
    assert recorded[-1]["detail_code"] == "sampling.other_amount"
    assert verify_chain(session).ok


# ---- the pages --------------------------------------------------------------------


def test_the_auditor_draws_answers_and_exports_through_the_pages(as_role, world, session, paid):
    auditor = as_role("auditor")
    index = auditor.get("/samples/")
    page = index.get_data(as_text=True)
    assert index.status_code == 200
    assert 'data-testid="draw-form"' in page and 'data-testid="samples-empty"' in page
    assert '<option value="2021-10">' in page and "HTBD" in page and "Lăng Cô" in page
    token = csrf_from(page)
    before = counts(session)
    # A bad draw: a clear message and nothing drawn.
    for data in (
        {"period": "2021-10", "point": "HTBD", "commune": "", "size": "", "percent": ""},
        {"period": "2021-10", "point": "HTBD", "size": "0"},
        {"period": "2021-10", "point": "", "commune": "", "size": "3"},
        {"period": "1999-01", "point": "HTBD", "size": "3"},
        {"period": "2021-10", "point": "HTBD", "size": "3", "seed": "'; drop"},
        {"period": "2021-10", "point": "HTBD", "size": "9" * 12},
    ):
        bad = auditor.post("/samples/", data={"csrf_token": token, **data})
        assert bad.status_code in (400, 404, 422), (data, bad.status_code)
        assert 'data-testid="flash-error"' in bad.get_data(as_text=True)
    assert counts(session) == before
    made = auditor.post(
        "/samples/",
        data={"csrf_token": token, "period": "2021-10", "point": "HTBD", "size": "7"},
    )
    assert made.status_code == 303
    url = made.headers["Location"]
    sample_id = int(url.rsplit("/", 1)[1])
    shown = auditor.get(url).get_data(as_text=True)
    assert shown.count('data-testid="sample-item"') == 7
    assert shown.count('data-testid="answer-form"') == 7
    # Phones in full (the auditor calls), ID numbers masked, names in full.
    assert "0900000001" in shown and "Nguyễn Thị Hoa A1" in shown
    assert "046153000001" not in shown and "********0001" in shown
    assert "Trần Văn Tư" in shown  # a1's proxy collected
    assert 'data-testid="progress-answered">0/7<' in shown
    session.rollback()
    items = {
        i.payout_id: i.id
        for i in session.scalars(
            select(PaymentSampleItem).where(PaymentSampleItem.sample_id == sample_id)
        )
    }
    token = csrf_from(shown)

    def answer(name, **data):
        item_id = items[paid.by_name[name]]
        return auditor.post(
            f"/samples/{sample_id}/items/{item_id}", data={"csrf_token": token, **data}
        )

    assert answer("a1", answer="in_full").status_code == 303
    assert answer("a2", answer="not_received", note="Không nhận được").status_code == 303
    refused = answer("a3", answer="other_amount", reported="")
    assert refused.status_code == 400 and 'data-testid="flash-error"' in refused.get_data(
        as_text=True
    )
    assert answer("a3", answer="other_amount", reported="300.000 đ").status_code == 303
    again = answer("a1", answer="not_received")
    assert again.status_code == 409
    assert 'data-testid="flash-error"' in again.get_data(as_text=True)
    shown = auditor.get(url).get_data(as_text=True)
    assert 'data-testid="progress-answered">3/7<' in shown
    assert 'data-testid="progress-discrepancies">2<' in shown
    assert shown.count('data-testid="answer-form"') == 4
    assert shown.count('data-testid="item-case"') == 2
    listed = auditor.get("/samples/").get_data(as_text=True)
    assert f'data-sample-id="{sample_id}"' in listed
    assert 'data-testid="sample-answered">3/7<' in listed
    assert '<span class="badge bad">2</span>' in listed

    # The exports, read back.
    response = auditor.get(f"/samples/{sample_id}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    body = response.get_data().decode("utf-8")
    assert body.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(body.lstrip("\ufeff"))))
    assert len(rows) == 7
    by_code = {r["beneficiary_code"]: r for r in rows}
    assert by_code["TTH0000003"]["answer"] == "other_amount"
    assert by_code["TTH0000003"]["reported"] == "300000"
    assert by_code["TTH0000003"]["difference"] == "-240000"
    assert by_code["TTH0000003"]["case"]
    assert by_code["TTH0000002"]["note"] == "Không nhận được"
    assert by_code["TTH0000001"]["collector_type"] == "proxy"
    assert by_code["TTH0000004"]["answer"] == ""
    assert all(r["sample_id"] == str(sample_id) and r["period"] == "2021-10" for r in rows)
    assert by_code["TTH0000001"]["phone"] == "090****001"  # masked in the file
    workbook = auditor.get(f"/samples/{sample_id}.xlsx")
    assert workbook.status_code == 200
    sheet = load_workbook(io.BytesIO(workbook.get_data())).active
    values = list(sheet.iter_rows(values_only=True))
    assert values[0] == sampling.EXPORT_COLUMNS and len(values) == 8
    header = values[0]
    answers = {r[header.index("answer")] for r in values[1:]} - {None, ""}
    assert answers == {"in_full", "not_received", "other_amount"}
    amounts = sorted(r[header.index("amount")] for r in values[1:])
    assert amounts == [540_000] * 6 + [1_080_000]  # a9's payout paid two periods
    exports = events(session, "export.written")[-2:]
    assert [(e["kind"], e["format"], e["rows"]) for e in exports] == [
        ("sample", "csv", 7),
        ("sample", "xlsx", 7),
    ]
    assert all(e["filters"] == {"sample_id": sample_id} for e in exports)
    assert auditor.get(f"/samples/{sample_id}.pdf").status_code == 404
    assert auditor.get("/samples/999999").status_code == 404
    assert auditor.get("/samples/999999.csv").status_code == 404


def test_an_answer_for_another_samples_item_is_not_found(as_role, world, session, paid):
    _one, items = _items(session, world, size=1)
    other = sampling.draw_sample(
        session, world.users["auditor"], period="2021-10", point_code="PLVT", size=1
    )
    auditor = as_role("auditor")
    token = csrf_from(auditor.get(f"/samples/{other.id}").get_data(as_text=True))
    (item_id,) = items.values()
    before = counts(session)
    response = auditor.post(
        f"/samples/{other.id}/items/{item_id}", data={"csrf_token": token, "answer": "in_full"}
    )
    assert response.status_code == 404
    assert counts(session) == before


def test_every_samples_route_refuses_everyone_but_auditors(app, world, session, paid):
    sample, items = _items(session, world, size=1)
    (item_id,) = items.values()
    before = counts(session)
    for role in OTHER_ROLES:
        client = app.test_client()
        login(client, world.users[role].username)
        token = csrf_from(client.get("/").get_data(as_text=True))
        for url in (
            "/samples/",
            f"/samples/{sample.id}",
            f"/samples/{sample.id}.csv",
            f"/samples/{sample.id}.xlsx",
        ):
            assert client.get(url).status_code == 403, (role, url)
        data = {"csrf_token": token, "period": "2021-10", "point": "HTBD", "size": "1"}
        assert client.post("/samples/", data=data).status_code == 403, role
        answer = {"csrf_token": token, "answer": "not_received"}
        url = f"/samples/{sample.id}/items/{item_id}"
        assert client.post(url, data=answer).status_code == 403, role
    assert counts(session)[:4] == before[:4]  # sign-ins are audited; nothing else changed
    assert not [e for e in events(session, "export.written") if e["kind"] == "sample"]


def test_anonymous_visitors_are_sent_to_sign_in(app, world, session, paid):
    sample = _items(session, world, size=1)[0]
    client = app.test_client()
    for url in ("/samples/", f"/samples/{sample.id}", f"/samples/{sample.id}.csv"):
        response = client.get(url)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_the_home_page_offers_samples_to_auditors_only(as_role):
    assert 'data-testid="tile-samples"' in as_role("auditor").get("/").get_data(as_text=True)
    assert 'data-testid="tile-samples"' not in as_role("supervisor").get("/").get_data(as_text=True)


# ---- the API ----------------------------------------------------------------------


def test_the_api_draws_reads_and_answers(app, world, session, paid):
    from tests.conftest import api_token, bearer

    client = app.test_client()
    auth = bearer(api_token(client, world.users["auditor"].username))
    before = counts(session)
    for body, code in (
        ({"period": "2021-10", "point": "HTBD"}, "sample_size_required"),
        ({"period": "2021-10", "point": "HTBD", "size": "3"}, "invalid_request"),  # strict JSON
        ({"period": "2021-10", "point": "HTBD", "commune": "Phú Bài", "size": 3}, None),
        ({"period": "2021-10", "point": "HTBD", "percent": 101}, "sample_percent_invalid"),
    ):
        response = client.post("/api/v1/samples", json=body, headers=auth)
        assert response.status_code == 400, (body, response.get_json())
        assert code is None or response.get_json()["error"] == code
    assert counts(session) == before
    made = client.post(
        "/api/v1/samples",
        json={"period": "2021-10", "commune": "Thủy Dương", "size": 2, "seed": "api-1"},
        headers=auth,
    )
    assert made.status_code == 201, made.get_json()
    sample = made.get_json()
    assert (sample["population"], sample["size"], sample["seed"]) == (6, 2, "api-1")
    assert sample["commune"] == "Thủy Dương" and sample["point"] is None
    expected = sorted(random.Random("api-1").sample(sorted(paid.duong_10), 2))
    assert [i["payout_id"] for i in sample["items"]] == expected
    item = sample["items"][0]
    assert item["phone"].startswith("09") and item["id_number"].startswith("****")
    url = f"/api/v1/samples/{sample['id']}/items/{item['item_id']}/answer"
    answered = client.post(
        url, json={"answer": "other_amount", "reported": 200_000, "note": "Gọi điện"}, headers=auth
    )
    assert answered.status_code == 200, answered.get_json()
    body = answered.get_json()
    assert (body["answer"], body["reported"], body["difference"]) == (
        "other_amount",
        200_000,
        200_000 - item["amount"],
    )
    assert body["failure_id"]
    again = client.post(url, json={"answer": "in_full"}, headers=auth)
    assert again.status_code == 409
    assert again.get_json()["error"] == "already_answered"
    assert again.get_json()["failure_id"] == body["failure_id"]
    shown = client.get(f"/api/v1/samples/{sample['id']}", headers=auth).get_json()
    assert (shown["answered"], shown["discrepancies"]) == (1, 1)
    assert client.get("/api/v1/samples/999999", headers=auth).status_code == 404
    clerk = bearer(api_token(client, world.users["clerk"].username))
    assert client.get(f"/api/v1/samples/{sample['id']}", headers=clerk).status_code == 403
    refused = client.post(url, json={"answer": "in_full"}, headers=clerk)
    assert refused.status_code == 403
    assert client.get(f"/api/v1/samples/{sample['id']}").status_code == 401
