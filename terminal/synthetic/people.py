"""Synthetic people as roster rows: who they are, who collects for them, how they are paid.

``synthetic_people`` yields rows with the keys of roster-format.md, deterministic for a
seed, with the pilot's proportions: ~69 % collect through a proxy, ~40 % have no phone,
~2 % carry a CCCD that contradicts their gender or birth year. The rows pass the roster
import's checks (``roster_file.check_row``), which is how a generated roster file is made.
"""

from __future__ import annotations

import itertools
import random
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from typing import Any

from terminal.models import BeneficiaryStatus, Category, PaymentMethod, Provider
from terminal.services.counter import today_local
from terminal.services.errors import InvalidInput
from terminal.synthetic.names import (
    CHILD,
    DAUGHTER_IN_LAW,
    GENDERS,
    GRANDCHILD,
    GUARDIAN,
    HUSBAND,
    VILLAGE_WORDS,
    WIFE,
    draw_name,
    pick,
)
from terminal.synthetic.places import PaymentMix, default_mix
from terminal.text import cccd_birth_digits

__all__ = ["CODE_DIGITS", "CODE_PREFIX", "MONTHLY_VND", "synthetic_people"]

CODE_PREFIX = "TTH"  # Thừa Thiên Huế, as in the ministry's sample list
CODE_DIGITS = 7
PROVINCE_CODE = "046"  # CCCD digits 1-3 of Thừa Thiên Huế
# People born elsewhere and living here carry their birth province's code.
OTHER_PROVINCE_CODES = ("001", "038", "040", "042", "044", "045", "048", "049", "051", "079")

MONTHLY_VND: dict[str, int] = {
    Category.ORPHAN.value: 900_000,
    Category.DISABLED_SEVERE.value: 540_000,
    Category.DISABLED_EXTREME.value: 720_000,
    Category.ELDERLY_80.value: 540_000,
    Category.OTHER.value: 360_000,
}

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


def _years_before(day: date, years: int) -> date:
    """Return the same day `years` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def month_start(day: date, months_back: int = 0) -> date:
    """Return the first day of the month `months_back` months before `day`'s."""
    index = day.year * 12 + day.month - 1 - months_back
    return date(index // 12, index % 12 + 1, 1)


def commune_plan(count: int, communes: int) -> list[int]:
    """Return how many of `count` people live in each commune: blocks as even as can be."""
    return [(count * (i + 1)) // communes - (count * i) // communes for i in range(communes)]


class _People:
    """The random choices behind one stream of synthetic people (one seeded generator)."""

    def __init__(self, rng: random.Random, today: date) -> None:
        self.rng = rng
        self.today = today
        self.phone_cum = tuple(itertools.accumulate(w for _, w in PHONE_PREFIXES))
        self.serials: dict[tuple[str, str, int], tuple[int, int]] = {}

    def pick(self, cum: Sequence[int]) -> int:
        """Return an index drawn with the cumulative weights `cum`."""
        return pick(self.rng, cum)

    def birth_date(self, age: int) -> date:
        """Return a random birth date of someone who is `age` today."""
        lo = _years_before(self.today, age + 1).toordinal() + 1
        hi = _years_before(self.today, age).toordinal()
        return date.fromordinal(self.rng.randint(lo, hi))

    def name(self, gender: str, birth_year: int, surname: str | None = None) -> str:
        """Return a Vietnamese full name fitting the gender and generation."""
        return draw_name(self.rng, gender, birth_year, surname)

    def cccd(self, gender: str, birth_year: int, *, wrong: bool = False) -> str:
        """Return a 12-digit CCCD whose digits 4-6 encode the gender and birth year."""
        rng = self.rng
        province = PROVINCE_CODE if rng.random() < 0.9 else rng.choice(OTHER_PROVINCE_CODES)
        # The last six digits look random but never repeat within a run: a counter per
        # (province, gender, year) scrambled by a multiplier coprime to 10**6, from a
        # random start. Drawing them at random would give thousands of duplicates per 1M.
        bucket = (province, gender, birth_year)
        count, start = self.serials.get(bucket) or (0, rng.randrange(1_000_000))
        self.serials[bucket] = (count + 1, start)
        serial = (start + count * 740_191) % 1_000_000
        if wrong:
            # The errors clerks make: the gender digit flipped, or the year's last two
            # digits off by one (the century digit stays as it was).
            if rng.random() < 0.5:
                gender = GENDERS[1] if gender == GENDERS[0] else GENDERS[0]
            else:
                two = birth_year % 100
                birth_year += (two + rng.choice((-1, 1))) % 100 - two
        return f"{province}{cccd_birth_digits(gender, birth_year)}{serial:06d}"

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
    valid_from = month_start(people.today, rng.randint(1, 48))
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
    today = today or today_local()
    rng = random.Random(seed)
    people = _People(rng, today)
    mixes = mixes or {}
    district_mix = {
        name: mixes.get(name) or default_mix(name, index)
        for index, (name, _communes) in enumerate(districts)
    }
    providers = {
        name: (Provider(mix.account_provider).value, Provider(mix.cash_provider).value)
        for name, mix in district_mix.items()
    }
    plan = commune_plan(count, len(areas)) if areas else []
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
