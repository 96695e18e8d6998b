"""RELIABILITY S12: names through the whole path, roster file to search, on this database.

tests/unit/test_text.py proves the name rules one value at a time and
tests/services/test_roster_import.py one NFD row. This imports a roster holding
every hard case at once, imports it again spelled in NFD, and searches it through
the API. Pass criterion: stored NFC; NFC and NFD never make two beneficiaries;
"nguyen", "Nguyễn", "NGUYỄN" (and the NFD spelling) return the same set; zero-width
and bidi controls and NUL stripped or refused; the length limit held at 200 and
201 characters.
"""

from __future__ import annotations

import unicodedata

import pytest
from sqlalchemy import select

from terminal.models import Beneficiary
from terminal.services.roster_file import RosterFileError
from tests.conftest import api_token, bearer
from tests.services.test_roster_import import count, person, run, write_csv

LIMIT = 200
NAMES = {
    "TTH0000101": "Nguyễn Thị Hoa",
    "TTH0000102": unicodedata.normalize("NFD", "Nguyễn Văn An"),
    "TTH0000103": "NGUYỄN VĂN BÌNH",
    "TTH0000104": "Nguyen Van Cuong",
    "TTH0000105": "H'Hen Niê",
    "TTH0000106": "H\u2019Hen Niê",
    "TTH0000107": "Ksor\u200b Y Blông",  # zero-width space
    "TTH0000108": "Nguyễn \u202eThị\u202c Lan",  # bidi override
    "TTH0000109": "Nguyễn Thị \u2066Mai\u2069",  # bidi isolate
    "TTH0000110": "Hoa 😀",
    "TTH0000112": "Nguyễn " + "a" * (LIMIT - 7),
    "TTH0000113": "Nguyễn " + "a" * (LIMIT - 6),
}
CONTROLS = ("\u200b", "\u202e", "\u202c", "\u2066", "\u2069", "\x00")
REFUSED = {"TTH0000110", "TTH0000113"}


def _rows(spell):
    return [
        person(
            **{
                "Mã đối tượng": code,
                "Họ và tên": spell(name),
                "Số CCCD/CMND": f"046153{n:06d}",
                "Số điện thoại": "",
                "Người nhận thay": "",
                "CCCD người nhận thay": "",
                "Quan hệ": "",
                "Ủy quyền từ ngày": "",
                "Ủy quyền đến ngày": "",
            }
        )
        for n, (code, name) in enumerate(NAMES.items())
    ]


def test_hard_names_are_stored_nfc_once_and_found_alike(client, world, session, tmp_path):
    first = run(session, write_csv(tmp_path / "a.csv", _rows(lambda name: name)))
    stored = {
        b.code: b.full_name
        for b in session.scalars(select(Beneficiary).where(Beneficiary.code.in_(list(NAMES))))
    }
    # Refused or kept, never kept with a control or an emoji in it.
    assert REFUSED.isdisjoint(stored), first.rejections
    assert first.rejected >= len(REFUSED)
    for code, name in stored.items():
        assert name == unicodedata.normalize("NFC", name), code
        assert not any(c in name for c in CONTROLS), (code, name)
        assert len(name) <= LIMIT
    assert stored["TTH0000102"] == "Nguyễn Văn An"
    assert stored["TTH0000107"] == "Ksor Y Blông"
    assert {"TTH0000105", "TTH0000106"} <= set(stored)  # apostrophes are name characters
    assert len(stored["TTH0000112"]) == LIMIT

    # A NUL anywhere in a roster file refuses the whole file (forms and the API refuse
    # it too: tests/views/test_hostile_input.py).
    before = count(session, Beneficiary)
    nul = _rows(lambda name: name)[:1]
    nul[0]["Họ và tên"] = "Hoa\x00Lan"
    with pytest.raises(RosterFileError):
        run(session, write_csv(tmp_path / "nul.csv", nul))
    assert count(session, Beneficiary) == before

    # The same file in NFD: nobody new.
    before = count(session, Beneficiary)
    again = run(
        session,
        write_csv(tmp_path / "b.csv", _rows(lambda n: unicodedata.normalize("NFD", n))),
    )
    assert again.added == 0, again.counts()
    assert count(session, Beneficiary) == before

    # Every spelling of "Nguyễn" finds the same people.
    auditor = bearer(api_token(client, world.users["auditor"].username))
    found = {}
    for q in ("nguyen", "Nguyễn", "NGUYỄN", "nguyễn", unicodedata.normalize("NFD", "Nguyễn")):
        answer = client.get(
            "/api/v1/beneficiaries", query_string={"q": q, "limit": 100}, headers=auditor
        )
        assert answer.status_code == 200, answer.get_json()
        found[q] = {item["code"] for item in answer.get_json()["items"]}
    sets = list(found.values())
    assert all(s == sets[0] for s in sets), found
    assert {"TTH0000101", "TTH0000102", "TTH0000103", "TTH0000104"} <= sets[0]
