"""Synthetic beneficiaries: realistic people, benchmark data at country scale, the pilot's demo.

Three verbs:

- ``synthetic_people`` yields people as roster rows (the keys of roster-format.md),
  deterministic for a seed, with the pilot's proportions: ~69 % collect through a proxy,
  ~40 % have no phone, ~2 % carry a CCCD that contradicts their gender or birth year.
- ``generate`` writes N of them (up to millions) with K months of history: entitlements,
  and for every month but the last, payouts with lines and gapless receipts.
- ``demo_roster`` writes the 2021 pilot's two districts (Hương Thủy, Phú Lộc) with one open
  period, for ``payout-terminal seed-demo``.

Speed comes from Core ``executemany`` inserts in batches with ids allocated up front (so no
row is read back to learn its id), and from streaming: memory stays bounded whatever N is.
Money is whole đồng in ``int``; the floats below are probabilities and shares only.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import math
import random
import re
import secrets
import time
import unicodedata
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Table, and_, bindparam, func, insert, select, text, update
from sqlalchemy.orm import Session

from terminal.db import refresh_statistics, write_transaction
from terminal.models import (
    Area,
    AreaLevel,
    Beneficiary,
    BeneficiaryStatus,
    Category,
    Channel,
    CollectorType,
    Entitlement,
    EntitlementStatus,
    Failure,
    FailureReason,
    FailureStatus,
    PaymentMethod,
    Payout,
    PayoutLine,
    PayoutPoint,
    PayoutStatus,
    Period,
    PeriodStatus,
    PointKind,
    Provider,
    Proxy,
    Receipt,
    ReceiptCounter,
    Role,
    User,
    point_communes,
)
from terminal.services import auth as auth_service
from terminal.services import places
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput
from terminal.text import cccd_facts, cccd_mismatch, fold

__all__ = [
    "MONTHLY_VND",
    "PILOT_DISTRICTS",
    "GenerateReport",
    "PaymentMix",
    "PilotDistrict",
    "demo_roster",
    "generate",
    "synthetic_people",
]

# Vietnam has kept UTC+7 without daylight saving since 1975.
VIETNAM = timezone(timedelta(hours=7), "ICT")

CODE_PREFIX = "TTH"  # Thừa Thiên Huế, as in the ministry's sample list
CODE_DIGITS = 7
PROVINCE_CODE = "046"  # CCCD digits 1-3 of Thừa Thiên Huế
# People born elsewhere and living here carry their birth province's code.
OTHER_PROVINCE_CODES = ("001", "038", "040", "042", "044", "045", "048", "049", "051", "079")

BATCH = 10_000  # rows per executemany: big enough to amortise, small enough to stream
PEOPLE_PER_COMMUNE = 2_000  # the pilot's communes hold 1,000-3,000 beneficiaries each
COMMUNES_PER_DISTRICT = 15
FOLLOW_UP_DAYS = 5  # a flagged data error is due back from the ministry within T+5

MONTHLY_VND: dict[str, int] = {
    Category.ORPHAN.value: 900_000,
    Category.DISABLED_SEVERE.value: 540_000,
    Category.DISABLED_EXTREME.value: 720_000,
    Category.ELDERLY_80.value: 540_000,
    Category.OTHER.value: 360_000,
}

# How the proxy is related to the beneficiary: child, daughter-in-law, grandchild or
# nephew/niece, wife, husband, legal guardian.
RELATIONSHIPS = tuple(
    unicodedata.normalize("NFC", r)
    for r in ("Con", "Con dâu", "Cháu", "Vợ", "Chồng", "Người giám hộ")
)
CHILD, DAUGHTER_IN_LAW, GRANDCHILD, WIFE, HUSBAND, GUARDIAN = RELATIONSHIPS

# ---- who the people are ------------------------------------------------------------


def _nfc(words: Iterable[str]) -> tuple[str, ...]:
    """Return the words in NFC, whatever form this source file was saved in."""
    return tuple(unicodedata.normalize("NFC", w) for w in words)


def _words(spaced: str) -> tuple[str, ...]:
    """Return the space-separated words of a text, in NFC."""
    return _nfc(spaced.split())


# Surnames per thousand people, after the national statistics (Nguyễn ~38 %).
_SURNAMES = (
    ("Nguyễn", 380),
    ("Trần", 110),
    ("Lê", 95),
    ("Phạm", 70),
    ("Phan", 45),
    ("Hoàng", 35),
    ("Võ", 25),
    ("Đặng", 21),
    ("Huỳnh", 20),
    ("Vũ", 20),
    ("Bùi", 20),
    ("Trương", 20),
    ("Đinh", 18),
    ("Hồ", 15),
    ("Đỗ", 14),
    ("Ngô", 13),
    ("Hà", 12),
    ("Lâm", 12),
    ("Mai", 12),
    ("Dương", 10),
    ("Cao", 10),
    ("Lương", 10),
    ("Tạ", 8),
    ("Lý", 5),
)
SURNAMES = _nfc(name for name, _ in _SURNAMES)
_SURNAME_CUM = tuple(itertools.accumulate(weight for _, weight in _SURNAMES))

# Before ~1965 nearly every man was "Văn" and every woman "Thị"; later generations vary.
MIDDLE_MALE_OLD = _nfc(["Văn"] * 8 + ["Đức", "Hữu"])
MIDDLE_MALE_NEW = _nfc(["Văn"] * 3 + ["Đức", "Hữu", "Minh", "Quang", "Công", "Đình", "Xuân"])
MIDDLE_FEMALE_OLD = _nfc(["Thị"] * 9 + ["Ngọc"])
MIDDLE_FEMALE_NEW = _nfc(["Thị"] * 4 + ["Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bảo"])
SECOND_MIDDLE_FEMALE = _nfc(["Thu", "Ngọc", "Kim", "Thanh", "Minh", "Hồng"])
THI = MIDDLE_FEMALE_OLD[0]
VILLAGE_WORDS = _nfc(["Tổ", "Thôn"])
GENDERS = ("male", "female")

GIVEN_MALE_OLD = _words(
    "Hùng Dũng Sơn Hải Bình Thắng Lợi Phúc Lộc Thọ Tài Cường Hòa Hiếu Trung Nghĩa Tâm "
    "Thành Tuấn Long Minh Nam Mạnh Khải Tín Chiến Lực Châu Quý Toàn"
)
GIVEN_MALE_NEW = _words(
    "Huy Khánh Đạt Quân Phong Tùng Kiên Hoàng Nam Minh Anh Bảo Khang Phát Thịnh Vinh "
    "Hiếu Tuấn Long Việt Trí Duy Khoa Nhật Hưng Thái Hậu Sang"
)
GIVEN_FEMALE_OLD = _words(
    "Hoa Lan Hương Mai Cúc Đào Hồng Liên Sen Lựu Nở Thủy Hạnh Nga Loan Tuyết Xuân Thu "
    "Hiền Lý Huệ Nhàn Thanh Yến Oanh Phượng Gái Mận Bích Dung"
)
GIVEN_FEMALE_NEW = _words(
    "Linh Trang Thảo Vy My Ngọc Hà Phương Anh Chi Nhung Hằng Uyên Quỳnh Nhi Giang "
    "Hương Lan Hạnh Trâm Diệp Hân Ngân Thư Yến Vân Tiên Nhàn"
)

# Mobile prefixes by network; Viettel holds about half the market.
_PHONE_PREFIXES = (
    ("032 033 034 035 036 037 038 039 086 096 097 098", 50),  # Viettel
    ("081 082 083 084 085 088 091 094", 25),  # VinaPhone
    ("070 076 077 078 079 089 090 093", 20),  # MobiFone
    ("052 056 058 059 092 099", 5),  # Vietnamobile, Gmobile
)
PHONE_PREFIXES = tuple((tuple(prefixes.split()), weight) for prefixes, weight in _PHONE_PREFIXES)

# Category shares of the pilot's lists (80+ is the largest group).
_CATEGORIES = (
    (Category.ORPHAN.value, 6),
    (Category.DISABLED_SEVERE.value, 25),
    (Category.DISABLED_EXTREME.value, 12),
    (Category.ELDERLY_80.value, 42),
    (Category.OTHER.value, 15),
)
_CATEGORY_CUM = tuple(itertools.accumulate(w for _, w in _CATEGORIES))

# ---- how they are paid -----------------------------------------------------------------


@dataclass(frozen=True)
class PaymentMix:
    """How one district pays: the share paid into accounts, and through which providers."""

    account_share: float  # 0.0-1.0 of the district's beneficiaries
    account_provider: Provider
    cash_provider: Provider = Provider.POST

    def __post_init__(self) -> None:
        """Refuse a share that is not a fraction."""
        if not 0.0 <= self.account_share <= 1.0:
            raise ValueError("account_share must be between 0 and 1")


@dataclass(frozen=True)
class PilotDistrict:
    """A district of the 2021 pilot with its communes and its published figures."""

    name: str
    communes: tuple[str, ...]
    beneficiaries: int
    mix: PaymentMix


PILOT_DISTRICTS: tuple[PilotDistrict, ...] = (
    PilotDistrict(
        name="Hương Thủy",
        communes=_nfc(
            [
                "Phú Bài",
                "Thủy Dương",
                "Thủy Phương",
                "Thủy Châu",
                "Thủy Lương",
                "Thủy Vân",
                "Thủy Thanh",
                "Thủy Bằng",
                "Thủy Tân",
                "Thủy Phù",
                "Phú Sơn",
                "Dương Hòa",
            ]
        ),
        beneficiaries=4_716,
        # October 2021: 2,053 of 4,716 paid through VietinBank accounts, the rest in cash
        # by the provincial post office.
        mix=PaymentMix(2_053 / 4_716, Provider.VIETINBANK),
    ),
    PilotDistrict(
        name="Phú Lộc",
        communes=_nfc(
            [
                "Phú Lộc",
                "Lăng Cô",
                "Vinh Mỹ",
                "Vinh Hưng",
                "Vinh Hiền",
                "Giang Hải",
                "Lộc Bình",
                "Lộc Vĩnh",
                "Lộc Tiến",
                "Lộc Thủy",
                "Lộc Trì",
                "Lộc Điền",
                "Lộc An",
                "Lộc Hòa",
                "Lộc Sơn",
                "Lộc Bổn",
                "Xuân Lộc",
            ]
        ),
        beneficiaries=8_364,
        # September 2021: all 8,364 paid through Viettel Pay accounts.
        mix=PaymentMix(1.0, Provider.VIETTEL_PAY),
    ),
)
_PILOT_MIX = {fold(d.name): d.mix for d in PILOT_DISTRICTS}


def _default_mix(district: str, index: int) -> PaymentMix:
    """Return the payment mix of a district the caller said nothing about."""
    pilot = _PILOT_MIX.get(fold(district))
    if pilot is not None:
        return pilot
    # Elsewhere half are on accounts; alternate the two pilot banks between districts.
    provider = Provider.VIETTEL_PAY if index % 2 == 0 else Provider.VIETINBANK
    return PaymentMix(0.5, provider)


# ---- synthetic people ------------------------------------------------------------------


def _years_before(day: date, years: int) -> date:
    """Return the same day `years` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _month_start(day: date, months_back: int = 0) -> date:
    """Return the first day of the month `months_back` months before `day`'s."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def _commune_plan(count: int, communes: int) -> list[int]:
    """Return how many of `count` people live in each commune: blocks as even as can be."""
    return [(count * (i + 1)) // communes - (count * i) // communes for i in range(communes)]


class _People:
    """The random choices behind one stream of synthetic people (one seeded generator)."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.phone_cum = tuple(itertools.accumulate(w for _, w in PHONE_PREFIXES))
        self.serials: dict[tuple[str, int, int], tuple[int, int]] = {}

    def pick(self, cum: Sequence[int]) -> int:
        """Return an index drawn with the cumulative weights `cum`."""
        return bisect.bisect_right(cum, self.rng.random() * cum[-1])

    def birth_date(self, age: int) -> date:
        """Return a random birth date of someone who is `age` today."""
        lo = _years_before(self.today, age + 1).toordinal() + 1
        hi = _years_before(self.today, age).toordinal()
        return date.fromordinal(self.rng.randint(lo, hi))

    def name(self, gender: str, birth_year: int, surname: str | None = None) -> str:
        """Return a Vietnamese full name fitting the gender and generation."""
        rng = self.rng
        old = birth_year < 1965 if rng.random() < 0.85 else birth_year >= 1965
        surname = surname or SURNAMES[self.pick(_SURNAME_CUM)]
        if gender == "male":
            middle = rng.choice(MIDDLE_MALE_OLD if old else MIDDLE_MALE_NEW)
            given = rng.choice(GIVEN_MALE_OLD if old else GIVEN_MALE_NEW)
        else:
            middle = rng.choice(MIDDLE_FEMALE_OLD if old else MIDDLE_FEMALE_NEW)
            if middle == THI and not old and rng.random() < 0.2:
                middle = f"{THI} {rng.choice(SECOND_MIDDLE_FEMALE)}"  # "Nguyễn Thị Thu Hà"
            given = rng.choice(GIVEN_FEMALE_OLD if old else GIVEN_FEMALE_NEW)
        return f"{surname} {middle} {given}"

    def cccd(self, gender: str, birth_year: int, *, wrong: bool = False) -> str:
        """Return a 12-digit CCCD whose digits 4-6 encode the gender and birth year."""
        rng = self.rng
        province = PROVINCE_CODE if rng.random() < 0.9 else rng.choice(OTHER_PROVINCE_CODES)
        century = (birth_year - 1900) // 100
        code = century * 2 + (1 if gender == "female" else 0)
        year = birth_year % 100
        # The last six digits look random but never repeat within a run: a counter per
        # (province, gender, year) scrambled by a multiplier coprime to 10**6, from a
        # random start. Drawing them at random would give thousands of duplicates per 1M.
        bucket = (province, code, year)
        count, start = self.serials.get(bucket) or (0, rng.randrange(1_000_000))
        self.serials[bucket] = (count + 1, start)
        serial = (start + count * 740_191) % 1_000_000
        if wrong:
            # The errors clerks make: the gender digit flipped, or the year off by one.
            if rng.random() < 0.5:
                code ^= 1
            else:
                year = (year + rng.choice((-1, 1))) % 100
        return f"{province}{code}{year:02d}{serial:06d}"

    def phone(self) -> str:
        """Return a 10-digit Vietnamese mobile number."""
        prefixes = PHONE_PREFIXES[self.pick(self.phone_cum)][0]
        return f"{self.rng.choice(prefixes)}{self.rng.randrange(10_000_000):07d}"


def _age_for(people: _People, category: str) -> int:
    """Return an age fitting the category: orphans 0-15, 80+ up to 100, others 16-79."""
    rng = people.rng
    if category == Category.ORPHAN.value:
        return rng.randrange(16)
    if category == Category.ELDERLY_80.value:
        # Fewer people at each year past 80 (mean ~85).
        return 80 + min(20, int(rng.expovariate(1 / 5.5)))
    if category == Category.OTHER.value:
        return 16 + int(64 * rng.random() ** 0.6)  # lone elderly and carers: skewed older
    return 16 + rng.randrange(64)


def _proxy_share(category: str, age: int) -> float:
    """Return the chance that someone collects through a proxy (pilot: 68-70 % overall)."""
    if category == Category.ORPHAN.value:
        return 1.0
    if category == Category.ELDERLY_80.value:
        return min(0.95, 0.53 + 0.028 * (age - 80))
    if category == Category.DISABLED_EXTREME.value:
        return 0.9
    if category == Category.DISABLED_SEVERE.value:
        return 0.6 + 0.002 * age
    return 0.3 + 0.003 * age


def _phone_missing(age: int) -> float:
    """Return the chance of having no phone: most of the very old and the young have none."""
    if age < 16:
        return 0.75
    if age < 60:
        return 0.15
    if age < 80:
        return 0.3
    if age < 90:
        return 0.6
    return 0.85


def _proxy(people: _People, person: dict[str, Any], age: int) -> dict[str, Any]:
    """Return the proxy fields of someone who collects through another person."""
    rng = people.rng
    gender = person["gender"]
    category = person["category"]
    surname = None
    if category == Category.ORPHAN.value or age < 20:
        relationship = GUARDIAN  # a child is paid only through a guardian
        proxy_age = rng.randint(25, 70)
        proxy_gender = "female" if rng.random() < 0.6 else "male"
    else:
        if age >= 60:
            choices = ((CHILD, 40), (DAUGHTER_IN_LAW, 20), (GRANDCHILD, 25), ("spouse", 15))
        elif age >= 38:
            choices = ((CHILD, 30), ("spouse", 45), (GRANDCHILD, 10), (GUARDIAN, 15))
        else:
            choices = (("spouse", 35), (GUARDIAN, 65))
        relationship = rng.choices([c for c, _ in choices], [w for _, w in choices])[0]
        if relationship == "spouse":
            relationship = WIFE if gender == "male" else HUSBAND
            proxy_gender = "female" if gender == "male" else "male"
            # Wives are mostly a little younger than their husbands.
            proxy_age = min(95, max(18, age + rng.randint(-7, 4 if gender == "male" else 7)))
        elif relationship in (CHILD, DAUGHTER_IN_LAW):
            proxy_gender = "female" if relationship == DAUGHTER_IN_LAW else rng.choice(GENDERS)
            proxy_age = max(18, age - rng.randint(20, min(40, age - 18)))
            if relationship == CHILD and gender == "male":
                surname = person["full_name"].split(" ", 1)[0]  # children take the father's
        elif relationship == GRANDCHILD:
            proxy_gender = rng.choice(GENDERS)
            proxy_age = max(18, age - rng.randint(40, 60))
            if gender == "male" and rng.random() < 0.5:
                surname = person["full_name"].split(" ", 1)[0]
        else:  # a parent or carer appointed guardian of a disabled adult
            proxy_gender = rng.choice(GENDERS)
            proxy_age = rng.randint(max(age + 18, 35), max(age + 18, 75))
    proxy_year = people.today.year - proxy_age
    valid_from = _month_start(people.today, rng.randint(1, 48))
    if person["date_of_birth"] is not None and person["date_of_birth"] > valid_from:
        valid_from = person["date_of_birth"]  # a newborn's guardian is appointed at birth
    # Five-year authorisations ending in December, or open-ended until revoked.
    valid_until = None if rng.random() < 0.35 else date(valid_from.year + 5, 12, 31)
    return {
        "proxy_name": people.name(proxy_gender, proxy_year, surname),
        "proxy_id_number": people.cccd(proxy_gender, proxy_year),
        "proxy_relationship": relationship,
        "proxy_valid_from": valid_from,
        "proxy_valid_until": valid_until,
    }


_NO_PROXY = {
    "proxy_name": None,
    "proxy_id_number": None,
    "proxy_relationship": None,
    "proxy_valid_from": None,
    "proxy_valid_until": None,
}


def synthetic_people(
    count: int,
    *,
    seed: int,
    districts: Sequence[tuple[str, Sequence[str]]],
    code_start: int = 1_000_001,
    today: date | None = None,
    mixes: Mapping[str, PaymentMix] | None = None,
) -> Iterator[dict[str, Any]]:
    """Yield `count` realistic beneficiaries as roster rows, the same ones for a seed.

    People are spread evenly over the communes, in blocks (codes run commune by commune,
    as the ministry numbers them). `mixes` gives a district's payment mix by name; a pilot
    district defaults to its published mix, any other to half on accounts. The share on
    accounts is met exactly per district, leaning towards people who have a phone.
    """
    if count < 0:
        raise InvalidInput("count must not be negative", code="count_invalid")
    areas = [(d, c) for d, communes in districts for c in communes]
    if count and not areas:
        raise InvalidInput("synthetic people need at least one commune", code="communes_required")
    if code_start < 0 or code_start + count - 1 >= 10**CODE_DIGITS:
        raise InvalidInput("codes would overflow TTH + 7 digits", code="code_overflow")
    today = today or datetime.now(VIETNAM).date()
    rng = random.Random(seed)
    people = _People(rng, today)
    mixes = mixes or {}
    district_mix = {
        name: mixes.get(name) or _default_mix(name, index)
        for index, (name, _communes) in enumerate(districts)
    }
    providers = {
        name: (Provider(mix.account_provider).value, Provider(mix.cash_provider).value)
        for name, mix in district_mix.items()
    }
    plan = _commune_plan(count, len(areas)) if areas else []
    # Accounts left to hand out and people left to see, per district: the quota is exact.
    left_people: dict[str, int] = defaultdict(int)
    for (district, _commune), size in zip(areas, plan, strict=True):
        left_people[district] += size
    left_accounts = {d: round(n * district_mix[d].account_share) for d, n in left_people.items()}
    code = code_start
    for (district, commune), size in zip(areas, plan, strict=True):
        account_provider, cash_provider = providers[district]
        # Towns number residential groups (Tổ), the countryside villages (Thôn).
        village_word = VILLAGE_WORDS[0] if rng.random() < 0.3 else VILLAGE_WORDS[1]
        villages = rng.randint(4, 14)
        for _ in range(size):
            person = _person(people, code, district, commune, village_word, villages)
            has_phone = person["phone"] is not None
            n, k = left_people[district], left_accounts[district]
            if k >= n:
                account = True
            elif k <= 0:
                account = False
            else:
                # Old people without a phone cannot open an account and stay on cash.
                account = rng.random() < min(1.0, k / n * (1.3 if has_phone else 0.55))
            left_people[district] = n - 1
            if account:
                left_accounts[district] = k - 1
                person["payment_method"] = PaymentMethod.ACCOUNT.value
                person["provider"] = account_provider
                person["account_no"] = f"{rng.randrange(10**10):010d}"
            else:
                person["payment_method"] = PaymentMethod.CASH.value
                person["provider"] = cash_provider
                person["account_no"] = None
            yield person
            code += 1


def _person(
    people: _People, code: int, district: str, commune: str, village_word: str, villages: int
) -> dict[str, Any]:
    """Return one person's roster row, without the payment columns."""
    rng = people.rng
    category = _CATEGORIES[people.pick(_CATEGORY_CUM)][0]
    age = _age_for(people, category)
    if category == Category.ELDERLY_80.value:
        gender = "female" if rng.random() < 0.62 else "male"  # women outlive men
    else:
        gender = "male" if rng.random() < 0.52 else "female"
    born = people.birth_date(age)
    birth_year = born.year
    # ~15 % of the very old know only their year of birth.
    date_of_birth = None if age >= 80 and rng.random() < 0.15 else born
    full_name = people.name(gender, birth_year)
    if age < 14 and rng.random() < 0.85:
        id_number = None  # a CCCD is optional under 14
    else:
        id_number = people.cccd(gender, birth_year, wrong=rng.random() < 0.02)
    phone = None if rng.random() < _phone_missing(age) else people.phone()
    monthly = MONTHLY_VND[category]
    arrears = monthly * rng.randint(1, 3) if rng.random() < 0.05 else 0
    roll = rng.random()
    if roll < 0.97:
        status = BeneficiaryStatus.ACTIVE.value
    elif roll < 0.982:
        status = BeneficiaryStatus.SUSPENDED.value
    elif roll < 0.994:
        status = BeneficiaryStatus.DECEASED.value
    else:
        status = BeneficiaryStatus.MOVED.value
    person: dict[str, Any] = {
        "code": f"{CODE_PREFIX}{code:0{CODE_DIGITS}d}",
        "full_name": full_name,
        "date_of_birth": date_of_birth,
        "birth_year": birth_year,
        "gender": gender,
        "category": category,
        "id_number": id_number,
        "phone": phone,
        "district": district,
        "commune": commune,
        "village": f"{village_word} {rng.randint(1, villages)}",
        "monthly_vnd": monthly,
        "arrears_vnd": arrears,
        "payment_method": None,
        "provider": None,
        "account_no": None,
        "status": status,
    }
    if rng.random() < _proxy_share(category, age):
        person.update(_proxy(people, person, age))
    else:
        person.update(_NO_PROXY)
    return person


# ---- writing them ------------------------------------------------------------------------


@dataclass(frozen=True)
class GenerateReport:
    """What a generation wrote, and how long it took."""

    beneficiaries: int
    proxies: int
    entitlements: int
    payouts: int
    districts: int  # districts the people live in
    communes: int  # communes the people live in
    points: int  # payout points serving those communes
    seconds: float
    periods: tuple[str, ...] = ()
    first_code: str | None = None
    last_code: str | None = None
    data_errors: int = 0  # people with a contradictory CCCD, each opened as a follow-up case


@dataclass(frozen=True)
class _Commune:
    """A commune people are written into, with its district."""

    district_id: int
    district: str
    commune_id: int
    commune: str


@dataclass(frozen=True)
class _Point:
    """The payout point that pays a commune's people."""

    id: int
    code: str
    kind: PointKind
    receipt_format: str


@dataclass
class _Slot:
    """Where a commune's people fall in its point's month: payouts go commune by commune."""

    rank: int  # this commune's place among the point's communes
    communes: int  # how many of this run's communes the point serves
    people: int  # the size of this commune's block of people
    seen: int = 0


@dataclass(frozen=True)
class _PeriodRef:
    """A period being written: its row, its first instant and its working days."""

    id: int
    code: str
    starts_at: datetime
    weekdays: tuple[date, ...]


def _parse_period(code: str) -> tuple[int, int]:
    """Return (year, month) of a YYYY-MM period code or refuse it."""
    match = re.fullmatch(r"([0-9]{4})-([0-9]{2})", (code or "").strip())
    if not match or not 1 <= int(match.group(2)) <= 12 or not 2000 <= int(match.group(1)) <= 2100:
        raise InvalidInput("the period must be YYYY-MM, e.g. 2021-10", code="period_invalid")
    return int(match.group(1)), int(match.group(2))


def _period_codes(last: str, count: int) -> list[str]:
    """Return `count` consecutive month codes ending with `last`, oldest first."""
    year, month = _parse_period(last)
    months = [_month_start(date(year, month, 1), back) for back in range(count - 1, -1, -1)]
    return [f"{m.year:04d}-{m.month:02d}" for m in months]


def _weekdays(year: int, month: int) -> tuple[date, ...]:
    """Return the working days (Monday to Friday) of a month."""
    day = date(year, month, 1)
    days = []
    while day.month == month:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return tuple(days)


def _period_refs(session: Session, codes: Sequence[str]) -> list[_PeriodRef]:
    """Return the periods with these codes, creating the missing ones as open."""
    refs = []
    for code in codes:
        period = session.scalar(select(Period).where(Period.code == code))
        if period is None:
            period = Period(code=code, status=PeriodStatus.OPEN)
            session.add(period)
            session.flush()
        year, month = _parse_period(code)
        starts = datetime(year, month, 1, tzinfo=VIETNAM).astimezone(UTC)
        refs.append(_PeriodRef(period.id, code, starts, _weekdays(year, month)))
    return refs


def _next_code(session: Session, floor: int) -> int:
    """Return the first synthetic code number above every TTH + 7-digit code in use."""
    column = Beneficiary.code
    highest = session.scalars(
        select(column)
        .where(column >= f"{CODE_PREFIX}{0:0{CODE_DIGITS}d}")
        .where(column <= f"{CODE_PREFIX}{10**CODE_DIGITS - 1}")
        .order_by(column.desc())
        .limit(100)
    )
    for code in highest:
        digits = code[len(CODE_PREFIX) :]
        # The range also holds codes like "TTH12X...": only exact TTH + 7 digits count.
        if len(digits) == CODE_DIGITS and digits.isascii() and digits.isdigit():
            return max(floor, int(digits) + 1)
    return floor


# PostgreSQL hands out ids from the column's own sequence: safe beside other writers.
_RESERVE_IDS = text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)")


class _Ids:
    """Primary keys handed out before the insert, so that no row is read back for its id."""

    def __init__(self, session: Session, table: Table) -> None:
        self.session = session
        self.table = table
        self.sqlite = session.get_bind().dialect.name == "sqlite"
        if self.sqlite:
            # The writer holds SQLite's write lock (BEGIN IMMEDIATE): nobody else inserts.
            self.next = (session.scalar(select(func.max(table.c.id))) or 0) + 1

    def take(self, count: int) -> Sequence[int]:
        """Return `count` unused ids, in increasing order."""
        if self.sqlite:
            ids = range(self.next, self.next + count)
            self.next += count
            return ids
        return sorted(
            self.session.execute(
                _RESERVE_IDS,
                {"t": self.table.name, "n": count},
            ).scalars()
        )


@contextmanager
def _indexes_built_after(session: Session, tables: Sequence[Table]) -> Iterator[None]:
    """Drop the secondary indexes of the empty tables among these, and build them after.

    Keeping an index up to date row by row costs several times more than building it once
    at the end (PERFORMANCE.md: 1M rows load in 3.8 s plus 1-2 s per index, or 18 s with
    the indexes in place). Only empty tables are treated so: nobody is searching them yet.
    Unique indexes stay, since they are rules. On an error the transaction's rollback
    brings the dropped indexes back.
    """
    connection = session.connection()
    dropped = []
    for table in tables:
        if session.execute(select(table.c.id).limit(1)).first() is not None:
            continue
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            if not index.unique:
                index.drop(connection)
                dropped.append(index)
    yield
    for index in dropped:
        index.create(connection)


def _batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """Yield lists of up to `size` items."""
    iterator = iter(items)
    while batch := list(itertools.islice(iterator, size)):
        yield batch


_fold_word = functools.lru_cache(maxsize=8192)(fold)


def _name_keys(full_name: str) -> tuple[str, str]:
    """Return the folded name and the folded name starting at the given name."""
    # fold() works word by word, so folding the few hundred distinct words once each is
    # the same as folding millions of names, at a fraction of the cost.
    words = [_fold_word(w) for w in full_name.split(" ")]
    return " ".join(words), " ".join([words[-1], *words[:-1]])


class _RosterWriter:
    """Writes people, their proxies and entitlements (and data-error cases) in batches."""

    def __init__(
        self,
        session: Session,
        *,
        communes: Sequence[_Commune],
        periods: Sequence[_PeriodRef],
        slots: Mapping[int, _Slot] | None = None,
        seed: int = 0,
    ) -> None:
        self.session = session
        self.commune_ids = {(c.district, c.commune): c.commune_id for c in communes}
        self.periods = periods
        self.slots = slots or {}
        self.rng = random.Random(f"{seed}-paid-at")
        self.ids = _Ids(session, Beneficiary.__table__)
        # Rows carry the date they would have entered the system: the first period's start.
        self.created_at = periods[0].starts_at
        self.beneficiaries = self.proxies = self.entitlements = self.data_errors = 0
        self.first_id: int | None = None
        self.last_id = 0
        self.first_code: str | None = None
        self.last_code: str | None = None

    def write(self, people: Sequence[dict[str, Any]]) -> None:
        """Insert one batch of people with everything that hangs off them."""
        ids = self.ids.take(len(people))
        beneficiaries, proxies, entitlements, failures = [], [], [], []
        created = self.created_at
        last_period = len(self.periods) - 1
        for person_id, person in zip(ids, people, strict=True):
            commune_id = self.commune_ids[(person["district"], person["commune"])]
            name_key, given_key = _name_keys(person["full_name"])
            error = None
            id_number = person["id_number"]
            # cccd_facts is cheap; cccd_mismatch words the problem, for the 2 % that have one.
            if id_number is not None and cccd_facts(id_number) != (
                person["gender"],
                person["birth_year"],
            ):
                mismatch = cccd_mismatch(
                    id_number, gender=person["gender"], birth_year=person["birth_year"]
                )
                if mismatch:
                    # Worded as the roster import words it, so follow-up reads one way.
                    error = f"Số CCCD/CMND: {mismatch}"
                    failures.append(self._failure(person_id, error))
            beneficiaries.append(
                {
                    "id": person_id,
                    "code": person["code"],
                    "full_name": person["full_name"],
                    "name_key": name_key,
                    "given_key": given_key,
                    "date_of_birth": person["date_of_birth"],
                    "birth_year": person["birth_year"],
                    "gender": person["gender"],
                    "category": person["category"],
                    "id_number": person["id_number"],
                    "phone": person["phone"],
                    "commune_id": commune_id,
                    "village": person["village"],
                    "address": f"{person['village']}, {person['commune']}, {person['district']}",
                    "payment_method": person["payment_method"],
                    "provider": person["provider"],
                    "account_no": person["account_no"],
                    "monthly_vnd": person["monthly_vnd"],
                    "status": person["status"],
                    "data_error": error,
                    "created_at": created,
                }
            )
            if person["proxy_name"] is not None:
                proxies.append(
                    {
                        "beneficiary_id": person_id,
                        "full_name": person["proxy_name"],
                        "id_number": person["proxy_id_number"],
                        "relationship": person["proxy_relationship"],
                        "is_guardian": person["proxy_relationship"] == GUARDIAN,
                        "valid_from": person["proxy_valid_from"],
                        "valid_until": person["proxy_valid_until"],
                        "created_at": created,
                    }
                )
            slot = self.slots.get(commune_id)
            if slot is not None:
                slot.seen += 1
            if person["status"] != BeneficiaryStatus.ACTIVE.value:
                continue  # suspended, deceased and moved people are owed nothing
            for index, period in enumerate(self.periods):
                paid = index < last_period
                arrears = 0 if paid else person["arrears_vnd"]
                monthly = person["monthly_vnd"]
                entitlements.append(
                    {
                        "beneficiary_id": person_id,
                        "period_id": period.id,
                        "monthly_vnd": monthly,
                        "arrears_vnd": arrears,
                        "amount_vnd": monthly + arrears,
                        "status": (EntitlementStatus.PAID if paid else EntitlementStatus.DUE).value,
                        "created_at": period.starts_at,
                        # A paid entitlement changed status when it was paid: the payout
                        # writer reads this back as the payout's time.
                        "updated_at": self._paid_at(period, slot) if paid else None,
                    }
                )
        session = self.session
        session.execute(insert(Beneficiary.__table__), beneficiaries)
        if proxies:
            session.execute(insert(Proxy.__table__), proxies)
        if entitlements:
            session.execute(insert(Entitlement.__table__), entitlements)
        if failures:
            session.execute(insert(Failure.__table__), failures)
        self.beneficiaries += len(beneficiaries)
        self.proxies += len(proxies)
        self.entitlements += len(entitlements)
        self.data_errors += len(failures)
        if self.first_id is None:
            self.first_id, self.first_code = ids[0], people[0]["code"]
        self.last_id, self.last_code = ids[-1], people[-1]["code"]

    def _failure(self, person_id: int, error: str) -> dict[str, Any]:
        """Return the follow-up case of a data error, as the roster import opens one."""
        return {
            "beneficiary_id": person_id,
            "reason": FailureReason.DATA_ERROR.value,
            "detail": f"Roster {self.periods[0].code}: {error}",
            "status": FailureStatus.OPEN.value,
            "due_by": self.created_at.astimezone(VIETNAM).date() + timedelta(days=FOLLOW_UP_DAYS),
            "note": "",
            "created_at": self.created_at,
        }

    def _paid_at(self, period: _PeriodRef, slot: _Slot | None) -> datetime:
        """Return when this person was paid: a weekday, 07:30-16:30 Vietnam time.

        A point pays its communes one after the other through the month and each
        commune's people in code order, so receipt numbers rise with the time of payment.
        """
        if slot is None:
            raise RuntimeError("a paid period needs the communes' payout points")
        position = (slot.seen - 1 + self.rng.random()) / slot.people
        working_minutes = (slot.rank + position) / slot.communes * len(period.weekdays) * 540
        day_index, minute = divmod(working_minutes, 540)
        day = period.weekdays[min(int(day_index), len(period.weekdays) - 1)]
        local = datetime(day.year, day.month, day.day, 7, 30, tzinfo=VIETNAM)
        return (local + timedelta(seconds=int(minute * 60))).astimezone(UTC)


class _PayoutWriter:
    """Pays the entitlements of the paid periods: payouts, lines, receipts and counters."""

    def __init__(
        self,
        session: Session,
        *,
        points: Mapping[int, _Point],
        staff: Mapping[int, int],
        beneficiary_ids: tuple[int, int],
        seed: int,
    ) -> None:
        self.session = session
        self.points = points  # by commune id
        self.staff = staff  # user id by point id
        self.low, self.high = beneficiary_ids
        self.rng = random.Random(f"{seed}-payouts")
        self.ids = _Ids(session, Payout.__table__)
        self.payouts = 0
        point_ids = sorted({p.id for p in points.values()})
        counters = session.execute(
            select(ReceiptCounter.point_id, ReceiptCounter.year, ReceiptCounter.last_seq)
            .where(ReceiptCounter.point_id.in_(point_ids))
            .with_for_update()
        ).all()
        self.known = {(p, y): seq for p, y, seq in counters}
        self.seq: dict[tuple[int, int], int] = dict(self.known)

    def pay(self, period: _PeriodRef) -> None:
        """Pay every entitlement of this run in one period, in code order."""
        ent, ben, prx = Entitlement.__table__, Beneficiary.__table__, Proxy.__table__
        above, up_to = bindparam("above"), bindparam("up_to")
        query = (
            select(
                ent.c.id,
                ent.c.beneficiary_id,
                ent.c.amount_vnd,
                ent.c.updated_at,
                ben.c.commune_id,
                ben.c.payment_method,
                ben.c.provider,
                prx.c.id,
                prx.c.is_guardian,
                prx.c.valid_from,
                prx.c.valid_until,
            )
            .join(ben, ben.c.id == ent.c.beneficiary_id)
            .outerjoin(prx, and_(prx.c.beneficiary_id == ben.c.id, prx.c.revoked_at.is_(None)))
            .where(
                # Pages are windows of beneficiary ids, not LIMITs, and "+ 0" keeps the
                # planner off the (period_id, status) index: without statistics on the fresh
                # rows either would let a page read (and sort) the whole rest of the period.
                ent.c.beneficiary_id > above,
                ent.c.beneficiary_id <= up_to,
                ent.c.period_id + 0 == period.id,
                ent.c.status == EntitlementStatus.PAID.value,
            )
            .order_by(ent.c.beneficiary_id)
        )
        year = int(period.code[:4])
        for start in range(self.low - 1, self.high, BATCH):
            window = {"above": start, "up_to": min(start + BATCH, self.high)}
            rows = self.session.execute(query, window).all()
            if rows:
                self._write(rows, year)

    def _write(self, rows: Sequence[Any], year: int) -> None:
        """Insert the payouts, lines and receipts of one batch of paid entitlements."""
        rng = self.rng
        ids = self.ids.take(len(rows))
        payouts, lines, receipts = [], [], []
        for payout_id, row in zip(ids, rows, strict=True):
            (ent_id, person_id, amount, paid_at, commune_id, method, provider) = row[:7]
            proxy_id, guardian, valid_from, valid_until = row[7:]
            point = self.points[commune_id]
            day = paid_at.astimezone(VIETNAM).date()
            via_proxy = (
                proxy_id is not None
                and valid_from <= day
                and (valid_until is None or day <= valid_until)
                # Some with a proxy still come themselves; a guardian always collects.
                and (guardian or rng.random() < 0.95)
            )
            if method == PaymentMethod.ACCOUNT:
                channel = Channel.ACCOUNT.value
                bank = "VTP" if provider == Provider.VIETTEL_PAY else "VTB"
                provider_ref = f"{bank}-{day:%Y%m%d}-{rng.randrange(10**8):08d}"
            else:
                channel = (
                    Channel.CASH_HOME if point.kind == PointKind.DELIVERY else Channel.CASH
                ).value
                provider_ref = None
            key = (point.id, year)
            seq = self.seq.get(key, 0) + 1
            self.seq[key] = seq
            payouts.append(
                {
                    "id": payout_id,
                    "point_id": point.id,
                    "user_id": self.staff[point.id],
                    "beneficiary_id": person_id,
                    "channel": channel,
                    "collector_type": (
                        CollectorType.PROXY if via_proxy else CollectorType.BENEFICIARY
                    ).value,
                    "proxy_id": proxy_id if via_proxy else None,
                    "provider_ref": provider_ref,
                    "amount_vnd": amount,
                    "status": PayoutStatus.COMPLETED.value,
                    "paid_at": paid_at,
                }
            )
            lines.append({"payout_id": payout_id, "entitlement_id": ent_id, "amount_vnd": amount})
            receipts.append(
                {
                    "payout_id": payout_id,
                    "receipt_no": f"{point.code}-{year}-{seq:06d}",
                    "point_id": point.id,
                    "year": year,
                    "seq": seq,
                    "format": point.receipt_format,
                    "reprint_count": 0,
                    "created_at": paid_at,
                }
            )
        session = self.session
        session.execute(insert(Payout.__table__), payouts)
        session.execute(insert(PayoutLine.__table__), lines)
        session.execute(insert(Receipt.__table__), receipts)
        self.payouts += len(payouts)

    def finish(self) -> None:
        """Move every receipt counter touched to the last number used."""
        table = ReceiptCounter.__table__
        for (point_id, year), seq in sorted(self.seq.items()):
            if (point_id, year) in self.known:
                if self.known[(point_id, year)] != seq:
                    self.session.execute(
                        update(table)
                        .where(table.c.point_id == point_id, table.c.year == year)
                        .values(last_seq=seq)
                    )
            else:
                self.session.execute(
                    insert(table).values(point_id=point_id, year=year, last_seq=seq)
                )


_ROSTER_TABLES = (
    Beneficiary.__table__,
    Proxy.__table__,
    Entitlement.__table__,
    Failure.__table__,
)
_PAYOUT_TABLES = (Payout.__table__, PayoutLine.__table__, Receipt.__table__)


# ---- areas, points and staff -------------------------------------------------------------


def _communes_in_use(session: Session) -> list[_Commune]:
    """Return every commune with its district, in the order they were created."""
    district = Area.__table__.alias("district")
    commune = Area.__table__.alias("commune")
    rows = session.execute(
        select(district.c.id, district.c.name, commune.c.id, commune.c.name)
        .join(commune, commune.c.parent_id == district.c.id)
        .where(
            district.c.level == AreaLevel.DISTRICT.value,
            commune.c.level == AreaLevel.COMMUNE.value,
        )
        .order_by(district.c.id, commune.c.id)
    ).all()
    return [_Commune(*row) for row in rows]


def _plan_areas(session: Session, beneficiaries: int) -> list[_Commune]:
    """Return the communes to fill: every existing one, plus synthetic ones if too few."""
    wanted = math.ceil(beneficiaries / PEOPLE_PER_COMMUNE)
    with write_transaction(session):
        communes = _communes_in_use(session)
        known = {c.commune_id for c in communes}
        number = 0
        district: Area | None = None
        while len(communes) < wanted:
            d_no, c_no = divmod(number, COMMUNES_PER_DISTRICT)
            if c_no == 0 or district is None:
                district = places.get_or_create_district(session, f"Huyện Số {d_no + 1:03d}")
            area = places.get_or_create_commune(
                session, district, f"Xã Số {d_no + 1:03d}-{c_no + 1:02d}"
            )
            if area.id not in known:  # made by an earlier run: already counted
                known.add(area.id)
                communes.append(_Commune(district.id, district.name, area.id, area.name))
            number += 1
    # Keep each district's communes together: people are written district by district.
    return sorted(communes, key=lambda c: (c.district_id, c.commune_id))


def _serving_points(session: Session, commune_ids: Sequence[int]) -> dict[int, _Point]:
    """Return, per commune, the point that pays it: active first, counters before teams."""
    best: dict[int, tuple[tuple[bool, bool, int], _Point]] = {}
    table = PayoutPoint.__table__
    for chunk in _batched(commune_ids, 5_000):
        rows = session.execute(
            select(
                point_communes.c.commune_id,
                table.c.id,
                table.c.code,
                table.c.kind,
                table.c.receipt_format,
                table.c.active,
            )
            .join(table, table.c.id == point_communes.c.point_id)
            .where(point_communes.c.commune_id.in_(chunk))
        ).all()
        for commune_id, point_id, code, kind, fmt, active in rows:
            rank = (not active, kind == PointKind.DELIVERY, point_id)
            if commune_id not in best or rank < best[commune_id][0]:
                best[commune_id] = (rank, _Point(point_id, code, PointKind(kind), str(fmt)))
    return {commune_id: point for commune_id, (_rank, point) in best.items()}


def _ensure_points(session: Session, communes: Sequence[_Commune]) -> dict[int, _Point]:
    """Return the point of every commune, creating one synthetic point per district if none."""
    points = _serving_points(session, [c.commune_id for c in communes])
    unserved: dict[int, list[_Commune]] = defaultdict(list)
    for c in communes:
        if c.commune_id not in points:
            unserved[c.district_id].append(c)
    if not unserved:
        return points
    synthetic = session.execute(
        select(PayoutPoint.id, PayoutPoint.code, PayoutPoint.district_id).where(
            PayoutPoint.code.like("G%")
        )
    ).all()
    numbered = [(int(code[1:]), pid, did) for pid, code, did in synthetic if code[1:].isdigit()]
    next_number = max((n for n, _, _ in numbered), default=0) + 1
    own = {}
    for _number, point_id, district_id in sorted(numbered, reverse=True):
        own[district_id] = point_id  # the lowest-numbered G point of a district wins
    for district_id, missing in unserved.items():
        district_name = missing[0].district
        names = [c.commune for c in missing]
        if district_id in own:
            # An earlier run's point for this district: it takes on the new communes too.
            existing = session.get(PayoutPoint, own[district_id])
            assert existing is not None
            code, name, kind = existing.code, existing.name, existing.kind
            names = [a.name for a in existing.communes] + names
        else:
            code, name, kind = f"G{next_number:03d}", f"Điểm chi trả {district_name}", None
            next_number += 1
        point, _created = places.save_point(
            session,
            code=code,
            name=name,
            kind=kind or PointKind.POST_OFFICE,
            district=district_name,
            communes=names,
            actor="generate",
        )
        ref = _Point(point.id, point.code, point.kind, point.receipt_format.value)
        for c in missing:
            points[c.commune_id] = ref
    return points


_STAFF_ROLE = {
    PointKind.POST_OFFICE: Role.CLERK,
    PointKind.AGENT: Role.AGENT,
    PointKind.DELIVERY: Role.DELIVERY,
}


def _ensure_staff(session: Session, points: Iterable[_Point]) -> dict[int, int]:
    """Return a synthetic staff user per point (gen.<code>), creating the missing ones."""
    staff = {}
    for point in sorted(set(points), key=lambda p: p.id):
        username = f"gen.{point.code.lower()}"
        found = session.execute(
            select(User.id, User.payout_point_id).where(User.username == username)
        ).first()
        if found is not None:
            if found.payout_point_id != point.id:
                raise InvalidInput(
                    f"user {username} exists but does not belong to point {point.code}",
                    code="synthetic_user_conflict",
                )
            staff[point.id] = found.id
            continue
        user = auth_service.create_user(
            session,
            username=username,
            role=_STAFF_ROLE[point.kind],
            # Nobody signs in as this user: the password is random and never shown.
            password=secrets.token_urlsafe(24),
            full_name="Nhân viên dữ liệu mẫu",
            point_code=point.code,
            actor="generate",
        )
        staff[point.id] = user.id
    return staff


def _slots(
    communes: Sequence[_Commune], points: Mapping[int, _Point], total: int
) -> dict[int, _Slot]:
    """Return each commune's place in its point's month, and its share of the people."""
    sizes = _commune_plan(total, len(communes))
    served: dict[int, list[int]] = defaultdict(list)
    for c in communes:
        served[points[c.commune_id].id].append(c.commune_id)
    slots = {}
    for c, size in zip(communes, sizes, strict=True):
        mine = served[points[c.commune_id].id]
        slots[c.commune_id] = _Slot(rank=mine.index(c.commune_id), communes=len(mine), people=size)
    return slots


def _districts_arg(communes: Sequence[_Commune]) -> list[tuple[str, list[str]]]:
    """Return the communes grouped by district, as synthetic_people takes them."""
    grouped: list[tuple[str, list[str]]] = []
    for c in communes:
        if not grouped or grouped[-1][0] != c.district:
            grouped.append((c.district, []))
        grouped[-1][1].append(c.commune)
    return grouped


# ---- the public verbs ------------------------------------------------------------------------


def generate(
    session: Session,
    *,
    beneficiaries: int,
    periods: int = 1,
    seed: int = 2021,
    progress: Callable[[int], None] | None = None,
    first_period: str | None = None,
) -> GenerateReport:
    """Write synthetic beneficiaries with `periods` months of history, for benchmarks.

    The months are the `periods` consecutive ones ending with `first_period` (default:
    this month). Every month but the last is paid (a payout, its line and a gapless receipt
    per active person); the last stays due. Existing communes are filled first, synthetic
    ones ("Xã Số 001-01" in "Huyện Số 001") added while there are fewer than one per ~2,000
    people. Communes without a payout point, and (when anything is paid) the staff user of
    each point, are set up first by their own services, which commit and audit them; then
    everything else is one transaction, closed by one audit event.
    """
    if beneficiaries < 1:
        raise InvalidInput("generate at least one beneficiary", code="count_invalid")
    if periods < 1:
        raise InvalidInput("generate at least one period", code="periods_invalid")
    started = time.perf_counter()
    last = first_period or datetime.now(VIETNAM).strftime("%Y-%m")
    codes = _period_codes(last, periods)

    communes = _plan_areas(session, beneficiaries)
    points = _ensure_points(session, communes)
    # create_user commits on its own, so staff exists before the big transaction starts.
    staff = _ensure_staff(session, points.values()) if periods > 1 else {}

    with write_transaction(session):
        refs = _period_refs(session, codes)
        code_start = _next_code(session, 1_000_001)
        writer = _RosterWriter(
            session,
            communes=communes,
            periods=refs,
            slots=_slots(communes, points, beneficiaries),
            seed=seed,
        )
        people = synthetic_people(
            beneficiaries,
            # Mixed with the first code, so that a second run adds other people, not twins.
            seed=seed * 10**8 + code_start,
            districts=_districts_arg(communes),
            code_start=code_start,
            today=refs[0].starts_at.astimezone(VIETNAM).date(),
        )
        with _indexes_built_after(session, _ROSTER_TABLES):
            for batch in _batched(people, BATCH):
                writer.write(batch)
                if progress is not None:
                    progress(writer.beneficiaries)
        payouts = 0
        if periods > 1:
            assert writer.first_id is not None
            with _indexes_built_after(session, _PAYOUT_TABLES):
                payer = _PayoutWriter(
                    session,
                    points=points,
                    staff=staff,
                    beneficiary_ids=(writer.first_id, writer.last_id),
                    seed=seed,
                )
                for ref in refs[:-1]:
                    payer.pay(ref)
                payer.finish()
            payouts = payer.payouts
        report = GenerateReport(
            beneficiaries=writer.beneficiaries,
            proxies=writer.proxies,
            entitlements=writer.entitlements,
            payouts=payouts,
            districts=len({c.district_id for c in communes}),
            communes=len(communes),
            points=len({p.id for p in points.values()}),
            seconds=0.0,
            periods=tuple(codes),
            first_code=writer.first_code,
            last_code=writer.last_code,
            data_errors=writer.data_errors,
        )
        _record(session, report, actor="generate", object_id="synthetic", seed=seed)
    refresh_statistics(session)
    return _timed(report, started)


def demo_roster(
    session: Session, *, period: str, scale: float = 1.0, seed: int = 2021
) -> GenerateReport:
    """Write the 2021 pilot's beneficiaries and one open period of due entitlements.

    Hương Thủy: 4,716 people, 43.5 % on VietinBank accounts, the rest in cash at the post
    office; Phú Lộc: 8,364, all on Viettel Pay. Both counts are multiplied by `scale`
    (at least one person per district). The districts are normally there already (the
    demo's payout points made them); any missing commune is created.
    """
    year, month = _parse_period(period)
    if not scale > 0 or math.isinf(scale):
        raise InvalidInput("scale must be a positive number", code="scale_invalid")
    started = time.perf_counter()
    today = date(year, month, 1)
    with write_transaction(session):
        pilots = []
        for pilot in PILOT_DISTRICTS:
            district = places.get_or_create_district(session, pilot.name)
            communes = [
                _Commune(district.id, district.name, area.id, area.name)
                for area in (
                    places.get_or_create_commune(session, district, name) for name in pilot.communes
                )
            ]
            pilots.append((pilot, district.name, communes))
        all_communes = [c for _, _, communes in pilots for c in communes]
        refs = _period_refs(session, [f"{year:04d}-{month:02d}"])
        code_start = _next_code(session, 1_000_001)
        writer = _RosterWriter(session, communes=all_communes, periods=refs)
        with _indexes_built_after(session, _ROSTER_TABLES):
            for index, (pilot, district_name, communes) in enumerate(pilots):
                count = max(1, round(pilot.beneficiaries * scale))
                people = synthetic_people(
                    count,
                    # A stream per district: scaling one never reshuffles the other's people.
                    seed=seed * 100 + index,
                    districts=[(district_name, [c.commune for c in communes])],
                    code_start=code_start,
                    today=today,
                    mixes={district_name: pilot.mix},
                )
                for batch in _batched(people, BATCH):
                    writer.write(batch)
                code_start += count
        points = _serving_points(session, [c.commune_id for c in all_communes])
        report = GenerateReport(
            beneficiaries=writer.beneficiaries,
            proxies=writer.proxies,
            entitlements=writer.entitlements,
            payouts=0,
            districts=len(pilots),
            communes=len(all_communes),
            points=len({p.id for p in points.values()}),
            seconds=0.0,
            periods=(refs[0].code,),
            first_code=writer.first_code,
            last_code=writer.last_code,
            data_errors=writer.data_errors,
        )
        _record(session, report, actor="seed-demo", object_id="demo", seed=seed)
    return _timed(report, started)


def _record(
    session: Session, report: GenerateReport, *, actor: str, object_id: str, seed: int
) -> None:
    """Append the one audit event of a generation, with its counts."""
    data = asdict(report)
    del data["seconds"]  # not known yet, and no business of the audit trail
    data["seed"] = seed
    record_event(
        session,
        actor=actor,
        action="data.generated",
        object_type="database",
        object_id=object_id,
        data=data,
    )


def _timed(report: GenerateReport, started: float) -> GenerateReport:
    """Return the report with the seconds the whole generation took."""
    return replace(report, seconds=time.perf_counter() - started)
