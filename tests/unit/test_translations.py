"""The Vietnamese catalogue is complete and compiled: no English leaks into the UI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
PO = ROOT / "terminal" / "translations" / "vi" / "LC_MESSAGES" / "messages.po"
MO = PO.with_suffix(".mo")


def _catalog():
    with PO.open("rb") as handle:
        return read_po(handle, locale="vi")


def test_every_message_is_translated():
    missing = [m.id for m in _catalog() if m.id and not m.string]
    assert missing == []


def test_placeholders_survive_translation():
    import re

    for message in _catalog():
        if not message.id:
            continue
        names = set(re.findall(r"%\((\w+)\)s", message.id))
        assert names == set(re.findall(r"%\((\w+)\)s", message.string)), message.id


def test_compiled_catalogue_matches_the_po_file():
    with MO.open("rb") as handle:
        compiled = {m.id: m.string for m in read_mo(handle) if m.id}
    source = {m.id: m.string for m in _catalog() if m.id and m.string}
    assert compiled == source, "run `make i18n` to recompile the catalogue"


def test_every_message_in_the_code_is_in_the_catalogue(tmp_path):
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "-k",
            "lazy_gettext",
            "--no-location",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    with pot.open("rb") as handle:
        wanted = {m.id for m in read_po(handle) if m.id}
    known = {m.id for m in _catalog() if m.id}
    assert sorted(wanted - known) == [], "run `make i18n` and translate the new messages"
