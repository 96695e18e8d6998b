"""Vietnamese names as the generator draws them: surnames by frequency, generations, proxies.

The word lists are NFC whatever form this file is saved in. ``draw_name`` consumes the
random generator in a fixed order, so a seed always gives the same names.
"""

from __future__ import annotations

import bisect
import itertools
import random
import unicodedata
from collections.abc import Iterable, Sequence

from terminal.models.enums import Gender

__all__ = [
    "GENDERS",
    "GUARDIAN",
    "RELATIONSHIPS",
    "SURNAMES",
    "VILLAGE_WORDS",
    "draw_name",
    "nfc",
    "pick",
]


def nfc(words: Iterable[str]) -> tuple[str, ...]:
    """Return the words in NFC, whatever form this source file was saved in."""
    return tuple(unicodedata.normalize("NFC", w) for w in words)


def _words(spaced: str) -> tuple[str, ...]:
    """Return the space-separated words of a text, in NFC."""
    return nfc(spaced.split())


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
SURNAMES = nfc(name for name, _ in _SURNAMES)
_SURNAME_CUM = tuple(itertools.accumulate(weight for _, weight in _SURNAMES))

# Before ~1965 nearly every man was "Văn" and every woman "Thị"; later generations vary.
MIDDLE_MALE_OLD = nfc(["Văn"] * 8 + ["Đức", "Hữu"])
MIDDLE_MALE_NEW = nfc(["Văn"] * 3 + ["Đức", "Hữu", "Minh", "Quang", "Công", "Đình", "Xuân"])
MIDDLE_FEMALE_OLD = nfc(["Thị"] * 9 + ["Ngọc"])
MIDDLE_FEMALE_NEW = nfc(["Thị"] * 4 + ["Ngọc", "Thu", "Kim", "Thanh", "Mỹ", "Bảo"])
SECOND_MIDDLE_FEMALE = nfc(["Thu", "Ngọc", "Kim", "Thanh", "Minh", "Hồng"])
THI = MIDDLE_FEMALE_OLD[0]
VILLAGE_WORDS = nfc(["Tổ", "Thôn"])
GENDERS = (Gender.MALE.value, Gender.FEMALE.value)

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


# How the proxy is related to the beneficiary: child, daughter-in-law, grandchild or
# nephew/niece, wife, husband, legal guardian.
RELATIONSHIPS = nfc(["Con", "Con dâu", "Cháu", "Vợ", "Chồng", "Người giám hộ"])
CHILD, DAUGHTER_IN_LAW, GRANDCHILD, WIFE, HUSBAND, GUARDIAN = RELATIONSHIPS


def pick(rng: random.Random, cum: Sequence[int]) -> int:
    """Return an index drawn with the cumulative weights `cum`."""
    return bisect.bisect_right(cum, rng.random() * cum[-1])


def draw_name(rng: random.Random, gender: str, birth_year: int, surname: str | None = None) -> str:
    """Return a Vietnamese full name fitting the gender and generation."""
    old = birth_year < 1965 if rng.random() < 0.85 else birth_year >= 1965
    surname = surname or SURNAMES[pick(rng, _SURNAME_CUM)]
    if gender == "male":
        middle = rng.choice(MIDDLE_MALE_OLD if old else MIDDLE_MALE_NEW)
        given = rng.choice(GIVEN_MALE_OLD if old else GIVEN_MALE_NEW)
    else:
        middle = rng.choice(MIDDLE_FEMALE_OLD if old else MIDDLE_FEMALE_NEW)
        if middle == THI and not old and rng.random() < 0.2:
            middle = f"{THI} {rng.choice(SECOND_MIDDLE_FEMALE)}"  # "Nguyễn Thị Thu Hà"
        given = rng.choice(GIVEN_FEMALE_OLD if old else GIVEN_FEMALE_NEW)
    return f"{surname} {middle} {given}"
