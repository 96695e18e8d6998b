"""Synthetic beneficiaries: realistic rows, a consistent paid history, the pilot's demo data."""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from datetime import date, time, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import and_, func, select, text
from sqlalchemy.orm import aliased

from terminal.models import (
    Area,
    AreaLevel,
    AuditEvent,
    Beneficiary,
    Entitlement,
    Failure,
    Payout,
    PayoutLine,
    PayoutPoint,
    Period,
    Proxy,
    Receipt,
    ReceiptCounter,
    User,
    point_communes,
)
from terminal.models.roster import authorisation_status
from terminal.rules import channel_for, format_receipt_no, receipt_year
from terminal.services import roster_file
from terminal.services.audit import verify_chain
from terminal.services.errors import InvalidInput, Refused
from terminal.services.roster import (
    close_period,
    data_error_case,
    entitlement_vnd,
    import_roster,
    is_owed,
)
from terminal.synthetic import (
    MONTHLY_VND,
    OTHER_PROVINCE_CODES,
    PILOT_DISTRICTS,
    RELATIONSHIPS,
    PaymentMix,
    demo_roster,
    generate,
    loading,
    places,
    synthetic_people,
)
from terminal.text import (
    cccd_facts,
    cccd_mismatch,
    clean_name,
    fold,
    name_keys,
    normalize_id_number,
)

TODAY = date(2026, 11, 1)
DISTRICTS = [(d.name, d.communes) for d in PILOT_DISTRICTS]
VIETNAM = timezone(timedelta(hours=7))
PROVINCES = {"046", *OTHER_PROVINCE_CODES}
FEMALE_MIDDLE = {"Thị", "Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bảo"}
MALE_MIDDLE = {"Văn", "Đức", "Hữu", "Minh", "Quang", "Công", "Đình", "Xuân"}


def _age(born: date, on: date = TODAY) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _share(items, predicate) -> float:
    items = list(items)
    return sum(1 for item in items if predicate(item)) / len(items)


@pytest.fixture(scope="module")
def crowd():
    """Five thousand people of the two pilot districts, as of 1 November 2026."""
    return list(synthetic_people(5000, seed=2021, districts=DISTRICTS, today=TODAY))


# ---- the people ------------------------------------------------------------------------


def test_the_same_seed_gives_the_same_people():
    first = list(synthetic_people(300, seed=7, districts=DISTRICTS, today=TODAY))
    again = list(synthetic_people(300, seed=7, districts=DISTRICTS, today=TODAY))
    other = list(synthetic_people(300, seed=8, districts=DISTRICTS, today=TODAY))
    assert first == again
    assert [p["full_name"] for p in first] != [p["full_name"] for p in other]


def test_codes_run_from_code_start():
    people = list(synthetic_people(3, seed=1, districts=DISTRICTS, code_start=42, today=TODAY))
    assert [p["code"] for p in people] == ["TTH0000042", "TTH0000043", "TTH0000044"]
    assert list(synthetic_people(0, seed=1, districts=DISTRICTS)) == []


def test_people_are_spread_over_every_commune(crowd):
    communes = Counter((p["district"], p["commune"]) for p in crowd)
    assert len(communes) == sum(len(d.communes) for d in PILOT_DISTRICTS)
    assert max(communes.values()) - min(communes.values()) <= 1
    assert all(re.fullmatch(r"(Thôn|Tổ) [0-9]{1,2}", p["village"]) for p in crowd)


def test_every_row_passes_the_roster_import_checks(crowd):
    positions, ignored = roster_file.map_header(list(roster_file.COLUMNS.values()))
    assert ignored == []
    flagged = 0
    for number, person in enumerate(crowd, start=2):
        cells = roster_file.roster_cells(person)
        row = roster_file.check_row(number, cells, positions, TODAY)
        assert isinstance(row, roster_file.RosterRow), row
        assert (row.code, row.full_name, row.id_number, row.phone) == (
            person["code"],
            person["full_name"],
            person["id_number"],
            person["phone"],
        )
        assert row.monthly_vnd == person["monthly_vnd"]
        # The only data errors are the deliberate CCCD contradictions.
        assert all(flag.startswith("Số CCCD/CMND:") for flag in row.flags), row.flags
        flagged += bool(row.flags)
    assert 0.01 <= flagged / len(crowd) <= 0.035


def test_names_are_vietnamese_nfc_and_gendered(crowd):
    for person in crowd:
        for name in (person["full_name"], person["proxy_name"]):
            if name is None:
                continue
            assert name == clean_name(name) == unicodedata.normalize("NFC", name)
            assert 3 <= len(name.split()) <= 4
        middle = person["full_name"].split()[1]
        assert middle in (FEMALE_MIDDLE if person["gender"] == "female" else MALE_MIDDLE)
    surnames = Counter(p["full_name"].split()[0] for p in crowd)
    assert 0.34 <= surnames["Nguyễn"] / len(crowd) <= 0.42
    assert {"Trần", "Lê", "Phạm", "Hoàng", "Huỳnh", "Võ", "Đặng", "Bùi"} <= set(surnames)


def test_id_numbers_are_cccds_consistent_but_for_a_few(crowd):
    with_id = [p for p in crowd if p["id_number"] is not None]
    for person in with_id:
        number = person["id_number"]
        assert len(number) == 12 and normalize_id_number(number) == number
        assert number[:3] in PROVINCES
    wrong = _share(
        with_id,
        lambda p: cccd_mismatch(p["id_number"], gender=p["gender"], birth_year=p["birth_year"]),
    )
    assert 0.01 <= wrong <= 0.035
    children = [p for p in crowd if p["date_of_birth"] and _age(p["date_of_birth"]) < 14]
    assert _share(children, lambda p: p["id_number"] is None) >= 0.75
    assert all(
        p["id_number"]
        for p in crowd
        if p["date_of_birth"] is None or _age(p["date_of_birth"]) >= 14
    )
    # Numbers never repeat within a run, proxies' included.
    numbers = [p["id_number"] for p in with_id] + [
        p["proxy_id_number"] for p in crowd if p["proxy_id_number"]
    ]
    assert len(set(numbers)) == len(numbers)


def test_phones_are_mobile_numbers_missing_mostly_for_the_very_old(crowd):
    for person in crowd:
        phone = person["phone"]
        assert phone is None or re.fullmatch(r"0[35789][0-9]{8}", phone)
    assert 0.35 <= _share(crowd, lambda p: p["phone"] is None) <= 0.45
    very_old = [p for p in crowd if TODAY.year - p["birth_year"] >= 90]
    assert _share(very_old, lambda p: p["phone"] is None) >= 0.7


def test_amounts_follow_the_category(crowd):
    expected = {
        "orphan": 900_000,
        "disabled_severe": 540_000,
        "disabled_extreme": 720_000,
        "elderly_80": 540_000,
        "other": 360_000,
    }
    assert expected == MONTHLY_VND
    for person in crowd:
        monthly, arrears = person["monthly_vnd"], person["arrears_vnd"]
        assert type(monthly) is int and type(arrears) is int
        assert monthly == expected[person["category"]]
        assert arrears in (0, monthly, 2 * monthly, 3 * monthly)
    assert 0.93 <= _share(crowd, lambda p: p["arrears_vnd"] == 0) <= 0.97
    assert set(Counter(p["category"] for p in crowd)) == set(expected)


def test_ages_fit_the_category(crowd):
    for person in crowd:
        born = person["date_of_birth"]
        if born is not None:
            assert born.year == person["birth_year"] and born <= TODAY
        category = person["category"]
        if category == "orphan":
            assert 0 <= _age(born) <= 15
        elif category == "elderly_80":
            assert 1925 <= person["birth_year"] <= 1946
            assert born is None or _age(born) >= 80
        else:
            assert 16 <= _age(born) <= 79
    elderly = [p for p in crowd if p["category"] == "elderly_80"]
    assert 0.10 <= _share(elderly, lambda p: p["date_of_birth"] is None) <= 0.20
    assert all(p["date_of_birth"] for p in crowd if p["category"] != "elderly_80")


def test_proxies_are_the_main_path(crowd):
    assert 0.64 <= _share(crowd, lambda p: p["proxy_name"] is not None) <= 0.74
    for person in crowd:
        relationship = person["proxy_relationship"]
        if person["category"] == "orphan":
            assert relationship == "Người giám hộ"
        if relationship is None:
            assert person["proxy_name"] is person["proxy_id_number"] is None
            continue
        assert relationship in RELATIONSHIPS
        gender, year = cccd_facts(person["proxy_id_number"])
        assert year <= TODAY.year - 18  # proxies are adults
        if relationship == "Vợ":
            assert (person["gender"], gender) == ("male", "female")
        if relationship == "Chồng":
            assert (person["gender"], gender) == ("female", "male")
        if relationship == "Con dâu":
            assert gender == "female"
        assert person["proxy_valid_from"] <= TODAY
        until = person["proxy_valid_until"]
        assert until is None or until > TODAY
    # The older and the more disabled, the likelier someone collects for them.
    elderly = [p for p in crowd if p["category"] == "elderly_80"]
    has_proxy = lambda p: p["proxy_name"] is not None  # noqa: E731
    assert _share([p for p in elderly if p["birth_year"] <= 1936], has_proxy) > _share(
        [p for p in elderly if p["birth_year"] >= 1942], has_proxy
    )
    assert _share([p for p in crowd if p["category"] == "disabled_extreme"], has_proxy) > _share(
        [p for p in crowd if p["category"] == "disabled_severe"], has_proxy
    )


def test_payment_follows_the_district(crowd):
    assert 0.95 <= _share(crowd, lambda p: p["status"] == "active") <= 0.99
    assert {p["status"] for p in crowd} == {"active", "suspended", "deceased", "moved"}
    for person in crowd:
        if person["payment_method"] == "cash":
            assert person["provider"] == "post" and person["account_no"] is None
        else:
            assert re.fullmatch(r"[0-9]{10}", person["account_no"])
    phu_loc = [p for p in crowd if p["district"] == "Phú Lộc"]
    assert {(p["payment_method"], p["provider"]) for p in phu_loc} == {("account", "viettel_pay")}
    huong_thuy = [p for p in crowd if p["district"] == "Hương Thủy"]
    accounts = [p for p in huong_thuy if p["payment_method"] == "account"]
    assert {p["provider"] for p in accounts} == {"vietinbank"}
    # The published share is met exactly, not just on average.
    assert len(accounts) == round(len(huong_thuy) * 2053 / 4716)


def test_the_caller_gives_each_district_its_mix():
    people = list(
        synthetic_people(
            400,
            seed=3,
            districts=[("Huyện A", ["Xã 1", "Xã 2"]), ("Huyện B", ["Xã 3", "Xã 4"])],
            mixes={
                "Huyện A": PaymentMix(0.25, "vietinbank"),
                "Huyện B": PaymentMix(0.0, "viettel_pay"),
            },
            today=TODAY,
        )
    )
    methods = Counter((p["district"], p["payment_method"], p["provider"]) for p in people)
    assert methods == {
        ("Huyện A", "account", "vietinbank"): 50,
        ("Huyện A", "cash", "post"): 150,
        ("Huyện B", "cash", "post"): 200,
    }


def test_bad_arguments_are_refused(session):
    with pytest.raises(InvalidInput):
        list(synthetic_people(5, seed=1, districts=[]))
    with pytest.raises(InvalidInput):
        list(synthetic_people(5, seed=1, districts=DISTRICTS, code_start=9_999_999))
    for kwargs in ({"beneficiaries": 0}, {"periods": 0}, {"first_period": "2021-13"}):
        with pytest.raises(InvalidInput):
            generate(session, **{"beneficiaries": 10, **kwargs})
    with pytest.raises(InvalidInput):
        demo_roster(session, period="2021-10", scale=0)
    with pytest.raises(InvalidInput):
        demo_roster(session, period="10/2021")
    assert session.scalar(select(func.count(Beneficiary.id))) == 0


# ---- generate ----------------------------------------------------------------------------


def _check_receipts(session, *, in_time_order: bool = True) -> dict[tuple[int, int], int]:
    """Assert receipts are gapless per point and year; return how many each has."""
    rows = session.execute(
        select(Receipt.point_id, Receipt.year, Receipt.seq, Receipt.receipt_no, PayoutPoint.code)
        .join(PayoutPoint, PayoutPoint.id == Receipt.point_id)
        .add_columns(Payout.paid_at)
        .join(Payout, Payout.id == Receipt.payout_id)
        .order_by(Receipt.point_id, Receipt.year, Receipt.seq)
    ).all()
    groups = defaultdict(list)
    for point_id, year, seq, number, code, paid_at in rows:
        # Numbered by the counter's own rule, in the payment's Vietnam year.
        assert number == format_receipt_no(code, year, seq) == f"{code}-{year}-{seq:06d}"
        assert year == receipt_year(paid_at) == paid_at.astimezone(VIETNAM).year
        groups[(point_id, year)].append((seq, paid_at))
    counters = {(c.point_id, c.year): c.last_seq for c in session.scalars(select(ReceiptCounter))}
    for key, numbered in groups.items():
        assert [seq for seq, _ in numbered] == list(range(1, len(numbered) + 1))
        times = [paid_at for _, paid_at in numbered]
        # Within one run a point pays commune after commune, so numbers follow the clock.
        assert not in_time_order or times == sorted(times)
        assert counters[key] == len(numbered)
    assert set(counters) == set(groups)
    return {key: len(v) for key, v in groups.items()}


def test_generate_writes_a_consistent_paid_history(session, world, monkeypatch):
    monkeypatch.setattr(loading, "BATCH", 700)  # several batches, and pages of payouts
    areas_before = session.scalar(select(func.count(Area.id)))
    events_before = verify_chain(session).events
    seen = []
    report = generate(
        session, beneficiaries=2000, periods=3, first_period="2022-01", progress=seen.append
    )
    assert seen == [700, 1400, 2000]
    assert report.periods == ("2021-11", "2021-12", "2022-01")
    assert (report.first_code, report.last_code) == ("TTH1000001", "TTH1002000")
    assert (report.districts, report.communes, report.points) == (2, 5, 2)
    assert session.scalar(select(func.count(Area.id))) == areas_before  # areas reused

    count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
    active = session.scalar(
        select(func.count(Beneficiary.id)).where(Beneficiary.status == "active")
    )
    assert count(Beneficiary) == report.beneficiaries == 2000
    assert count(Proxy) == report.proxies
    assert 0.64 <= report.proxies / 2000 <= 0.74
    assert count(Entitlement) == report.entitlements == 3 * active
    assert count(Payout) == count(PayoutLine) == count(Receipt) == report.payouts == 2 * active
    assert count(Failure) == report.data_errors > 0

    by_period = session.execute(
        select(Period.code, Entitlement.status)
        .join(Period, Period.id == Entitlement.period_id)
        .distinct()
    ).all()
    assert {(code, status.value) for code, status in by_period} == {
        ("2021-11", "paid"),
        ("2021-12", "paid"),
        ("2022-01", "due"),
    }

    # Every paid entitlement has exactly one payout line; nothing due has any.
    lines_per = session.execute(
        select(Entitlement.status, func.count(PayoutLine.id))
        .outerjoin(PayoutLine, PayoutLine.entitlement_id == Entitlement.id)
        .group_by(Entitlement.id, Entitlement.status)
    ).all()
    assert {(status.value, n) for status, n in lines_per} == {("paid", 1), ("due", 0)}
    paid_total = session.scalar(
        select(func.sum(Entitlement.amount_vnd)).where(Entitlement.status == "paid")
    )
    assert paid_total == session.scalar(select(func.sum(Payout.amount_vnd)))
    assert paid_total == session.scalar(select(func.sum(PayoutLine.amount_vnd)))
    assert (
        session.scalar(
            select(func.count(Entitlement.id)).where(
                Entitlement.status == "paid", Entitlement.arrears_vnd != 0
            )
        )
        == 0
    )

    counts = _check_receipts(session)
    assert sum(counts.values()) == report.payouts

    codes = dict(session.execute(select(PayoutPoint.id, PayoutPoint.code)).all())
    kinds = dict(session.execute(select(PayoutPoint.id, PayoutPoint.kind)).all())
    served = set(session.execute(select(point_communes.c.point_id, point_communes.c.commune_id)))
    staff_point = dict(session.execute(select(User.id, User.payout_point_id)).all())
    payouts = session.execute(
        select(
            Payout.paid_at,
            Payout.point_id,
            Payout.user_id,
            Payout.channel,
            Payout.provider_ref,
            Payout.collector_type,
            Payout.proxy_id,
            Beneficiary.id,
            Beneficiary.commune_id,
            Beneficiary.payment_method,
            Proxy.beneficiary_id,
            Proxy.valid_from,
            Proxy.valid_until,
        )
        .join(Beneficiary, Beneficiary.id == Payout.beneficiary_id)
        .outerjoin(Proxy, Proxy.id == Payout.proxy_id)
    ).all()
    for row in payouts:
        local = row.paid_at.astimezone(VIETNAM)
        assert row.paid_at.tzinfo is not None
        assert local.weekday() < 5 and time(7, 30) <= local.time() <= time(16, 30)
        assert (row.point_id, row.commune_id) in served
        assert staff_point[row.user_id] == row.point_id
        assert codes[row.point_id] in ("HTBD", "PLVT")
        assert row.channel is channel_for(kinds[row.point_id], row.payment_method)
        assert row.channel.value == row.payment_method.value  # neither point is a home team
        assert (row.provider_ref is not None) == (row.channel.value == "account")
        if row.collector_type.value == "proxy":
            assert row.beneficiary_id == row.id
            assert row.valid_from <= local.date()
            assert row.valid_until is None or local.date() <= row.valid_until
            assert (
                authorisation_status(
                    local.date(), valid_from=row.valid_from, valid_until=row.valid_until
                )
                == "active"
            )
        else:
            assert row.proxy_id is None
    assert 0.6 <= _share(payouts, lambda r: r.proxy_id is not None) <= 0.74

    for person in session.scalars(select(Beneficiary).limit(200)):
        assert (person.name_key, person.given_key) == name_keys(person.full_name)
        assert person.name_key == fold(person.full_name)
        words = person.name_key.split()
        assert person.given_key == " ".join([words[-1], *words[:-1]])
        assert (person.data_error is not None) == bool(
            person.id_number
            and cccd_mismatch(
                person.id_number, gender=person.gender.value, birth_year=person.birth_year
            )
        )

    chain = verify_chain(session)
    assert chain.ok and chain.events == events_before + 3  # two staff users, one generation
    event = session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))
    assert (event.actor, event.action, event.object_id) == (
        "generate",
        "data.generated",
        "synthetic",
    )
    assert '"payouts":' in event.data and f'"beneficiaries":{report.beneficiaries}' in event.data


def test_generate_twice_adds_new_people_and_continues_the_receipts(session, world):
    first = generate(session, beneficiaries=400, periods=2, first_period="2022-01")
    areas = session.scalar(select(func.count(Area.id)))
    users = session.scalar(select(func.count(User.id)))
    second = generate(session, beneficiaries=400, periods=2, first_period="2022-01", seed=2021)
    assert second.first_code == "TTH1000401" and second.last_code == "TTH1000800"
    codes = session.scalars(select(Beneficiary.code)).all()
    assert len(codes) == len(set(codes)) == 800
    # Another run adds other people, not the same ones again under new codes.
    names = session.execute(select(Beneficiary.full_name, Beneficiary.id_number)).all()
    assert len(set(names)) > 750
    assert session.scalar(select(func.count(Area.id))) == areas
    assert session.scalar(select(func.count(User.id))) == users
    assert session.scalar(select(func.count(Period.id))) == 2
    counts = _check_receipts(session, in_time_order=False)  # two runs share the months
    assert sum(counts.values()) == first.payouts + second.payouts
    assert verify_chain(session).ok


def test_generate_on_an_empty_database_makes_areas_points_and_staff(session, monkeypatch):
    monkeypatch.setattr(places, "PEOPLE_PER_COMMUNE", 100)  # country scale, in miniature
    report = generate(session, beneficiaries=250, periods=3, first_period="2022-02")
    districts = session.scalars(select(Area.name).where(Area.level == AreaLevel.DISTRICT)).all()
    communes = session.scalars(
        select(Area.name).where(Area.level == AreaLevel.COMMUNE).order_by(Area.id)
    ).all()
    assert districts == ["Huyện Số 001"]
    assert communes == ["Xã Số 001-01", "Xã Số 001-02", "Xã Số 001-03"]
    point = session.scalar(select(PayoutPoint))
    assert point.code == "G001" and [c.name for c in point.communes] == sorted(communes)
    clerk = session.scalar(select(User).where(User.username == "gen.g001"))
    assert clerk.role.value == "clerk" and clerk.payout_point_id == point.id
    # December 2021 and January 2022 are paid: each year numbers its receipts from 1.
    counts = _check_receipts(session)
    assert set(counts) == {(point.id, 2021), (point.id, 2022)}
    assert counts[(point.id, 2021)] == counts[(point.id, 2022)] == report.payouts // 2

    # A bigger second run needs a fourth commune: the district's point takes it on.
    generate(session, beneficiaries=350, periods=1, first_period="2022-02")
    communes = session.scalars(select(Area.name).where(Area.level == AreaLevel.COMMUNE)).all()
    assert sorted(communes) == [f"Xã Số 001-0{n}" for n in range(1, 5)]
    assert session.scalar(select(func.count(PayoutPoint.id))) == 1
    session.expire_all()
    assert len(session.get(PayoutPoint, point.id).communes) == 4
    assert verify_chain(session).ok


# ---- the pilot's demo --------------------------------------------------------------------


def test_demo_roster_writes_the_two_pilot_districts(session, world):
    events_before = verify_chain(session).events
    report = demo_roster(session, period="2021-10", scale=0.05)
    assert report.beneficiaries == 236 + 418  # 4,716 and 8,364 scaled, rounded
    assert report.payouts == 0 and report.periods == ("2021-10",)

    rows = session.execute(
        select(Beneficiary.commune_id, Beneficiary.payment_method, Beneficiary.provider)
    ).all()
    district_of = {
        c.id: c.parent.name
        for c in session.scalars(select(Area).where(Area.level == AreaLevel.COMMUNE))
    }
    by_district = defaultdict(list)
    for commune_id, method, provider in rows:
        by_district[district_of[commune_id]].append((method.value, provider.value))
    assert {d: len(v) for d, v in by_district.items()} == {"Hương Thủy": 236, "Phú Lộc": 418}
    assert set(by_district["Phú Lộc"]) == {("account", "viettel_pay")}
    huong_thuy = Counter(by_district["Hương Thủy"])
    assert set(huong_thuy) == {("account", "vietinbank"), ("cash", "post")}
    assert abs(huong_thuy[("account", "vietinbank")] / 236 - 0.435) <= 0.05

    # Every pilot commune exists once (the world made five of them), and has people.
    for pilot in PILOT_DISTRICTS:
        names = session.scalars(
            select(Area.name).where(
                Area.level == AreaLevel.COMMUNE, Area.parent.has(name=pilot.name)
            )
        ).all()
        assert sorted(names) == sorted(pilot.communes)
    assert len({commune_id for commune_id, _, _ in rows}) == 12 + 17

    period = session.scalar(select(Period).where(Period.code == "2021-10"))
    assert period.status.value == "open"
    active = session.scalar(
        select(func.count(Beneficiary.id)).where(Beneficiary.status == "active")
    )
    due = session.scalar(
        select(func.count(Entitlement.id)).where(
            Entitlement.period_id == period.id, Entitlement.status == "due"
        )
    )
    assert due == active == report.entitlements
    assert session.scalar(select(func.count(Payout.id))) == 0
    chain = verify_chain(session)
    assert chain.ok and chain.events == events_before + 1
    assert session.execute(text("SELECT count(*) FROM receipts")).scalar() == 0


# ---- one home for each rule ------------------------------------------------------------------


def _as_roster_rows(session, period_code):
    """Return every beneficiary in the database as the roster row that describes them."""
    district, commune = aliased(Area), aliased(Area)
    owed = (
        select(Entitlement.beneficiary_id, Entitlement.arrears_vnd)
        .join(Period, Period.id == Entitlement.period_id)
        .where(Period.code == period_code)
        .subquery()
    )
    rows = session.execute(
        select(Beneficiary, commune.name, district.name, Proxy, owed.c.arrears_vnd)
        .join(commune, commune.id == Beneficiary.commune_id)
        .join(district, district.id == commune.parent_id)
        .outerjoin(Proxy, and_(Proxy.beneficiary_id == Beneficiary.id, Proxy.revoked_at.is_(None)))
        .outerjoin(owed, owed.c.beneficiary_id == Beneficiary.id)
        .order_by(Beneficiary.code)
    ).all()
    for person, commune_name, district_name, proxy, arrears in rows:
        yield {
            "code": person.code,
            "full_name": person.full_name,
            "date_of_birth": person.date_of_birth,
            "birth_year": person.birth_year,
            "gender": person.gender,
            "category": person.category,
            "id_number": person.id_number,
            "phone": person.phone,
            "district": district_name,
            "commune": commune_name,
            "village": person.village,
            "monthly_vnd": person.monthly_vnd,
            "arrears_vnd": arrears or 0,
            "payment_method": person.payment_method,
            "provider": person.provider,
            "account_no": person.account_no,
            "status": person.status,
            "proxy_name": proxy.full_name if proxy else None,
            "proxy_id_number": proxy.id_number if proxy else None,
            "proxy_relationship": proxy.relationship_label if proxy else None,
            "proxy_valid_from": proxy.valid_from if proxy else None,
            "proxy_valid_until": proxy.valid_until if proxy else None,
        }


def test_generated_people_are_what_the_roster_import_writes(session, world, tmp_path):
    # Fed back as the month's roster, what generate wrote is exactly what the import
    # would have written: name keys, guardians, data errors, entitlements, all unchanged.
    report = generate(session, beneficiaries=800, periods=2, first_period="2022-01", seed=4)
    failures = session.scalar(select(func.count(Failure.id)))
    path = tmp_path / "roster.csv"
    assert roster_file.write_roster_csv(_as_roster_rows(session, "2022-01"), path) == 800
    session.rollback()
    imported = import_roster(
        session, path, period="2022-01", actor="admin1", today=date(2021, 12, 1)
    )
    assert imported.counts() == {
        "added": 0,
        "updated": 0,
        "unchanged": report.beneficiaries,
        "stopped": 0,
        "missing": 0,
        "rejected": 0,
    }, imported.changes[:5]
    assert (
        imported.entitlements_created,
        imported.entitlements_updated,
        imported.entitlements_cancelled,
    ) == (0, 0, 0)
    assert len(imported.flags) == report.data_errors > 0  # the same data errors, found again
    assert session.scalar(select(func.count(Failure.id))) == failures  # and no new case


def test_rows_follow_the_roster_rules(session, world):
    report = generate(session, beneficiaries=600, periods=2, first_period="2022-01", seed=6)
    proxies = session.scalars(select(Proxy)).all()
    assert any(p.is_guardian for p in proxies) and not all(p.is_guardian for p in proxies)
    for proxy in proxies:
        assert proxy.is_guardian == roster_file.is_guardian(proxy.relationship_label)
    owed = Counter()
    for entitlement in session.scalars(select(Entitlement)):
        assert entitlement.amount_vnd == entitlement_vnd(
            entitlement.monthly_vnd, entitlement.arrears_vnd
        )
        owed[entitlement.beneficiary_id] += 1
    for person in session.scalars(select(Beneficiary)):
        assert owed[person.id] == (2 if is_owed(person.status) else 0)
    cases = session.scalars(select(Failure)).all()
    assert len(cases) == report.data_errors > 0
    for case in cases:
        person = session.get(Beneficiary, case.beneficiary_id)
        flag = roster_file.id_number_flag(
            person.id_number, gender=person.gender.value, birth_year=person.birth_year
        )
        assert flag is not None and person.data_error == flag
        expected = data_error_case(
            person.id, period="2021-12", flags=[flag], today=date(2021, 12, 1), at=case.created_at
        )
        found = {key: getattr(case, key) for key in expected}
        assert found == expected


def test_generate_refuses_a_closed_period(session, world):
    generate(session, beneficiaries=20, first_period="2021-10")
    close_period(session, "2021-10", actor_id=world.users["admin"].id, actor="admin1")
    with pytest.raises(Refused) as refused:
        generate(session, beneficiaries=20, first_period="2021-10")
    assert refused.value.code == "period_closed"
    with pytest.raises(Refused):
        demo_roster(session, period="2021-10", scale=0.01)
    session.rollback()
    assert session.scalar(select(func.count(Beneficiary.id))) == 20
    assert verify_chain(session).ok


def test_the_package_keeps_no_copy_of_a_rule():
    # The shapes the copies had before the package imported its rules: a receipt number's
    # digits, the UTC+7 clock, a data error's wording, a period pattern, folding by hand.
    copies = re.compile(
        r"\{year\}-\{seq|\btimezone\(|CCCD/CMND|Roster \{|(\[0-9\]|\\d)\{4\}\)?-|\"NFD\""
    )
    package = Path(loading.__file__).parent
    for source in sorted(package.glob("*.py")):
        found = [m.group(0) for m in copies.finditer(source.read_text(encoding="utf-8"))]
        assert not found, f"{source.name}: {found}"
