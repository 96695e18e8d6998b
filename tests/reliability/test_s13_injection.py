"""RELIABILITY S13: ~200 injection payloads stored, then a real browser reads every page.

The payloads (SQL, HTML/JS, template expressions, CSV formulas, line breaks) go into
the free-text fields that are stored and shown again: the roster's village and
proxy relationship, a failure's detail, a case note, a reversal's reason; and into
the search box. Then ``payout-terminal serve`` is visited by Chromium, signed in as
a clerk and as an auditor: every GET page of the URL map (objects filled in with the
injected ones), the receipt PDF, and the CSV and XLSX exports. Pass criterion: 0
script executions, 0 database errors (no 500), no template evaluated ("7006652" =
1234*5678 never appears, nor "49" in place of {{7*7}}), CSV/XLSX cells starting with
= + - @ escaped, and the server's log has no forged line.
"""

from __future__ import annotations

import csv
import io
import itertools
import os
import re
from pathlib import Path

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from terminal.models import Beneficiary, Failure, FailureReason, Payout
from terminal.services import counter, failures, payouts, verifications
from tests.conftest import submit
from tests.factories import PASSWORD, set_float
from tests.reliability.conftest import SOAK
from tests.servers import free_port, served
from tests.services.test_receipts import pay_now
from tests.services.test_roster_import import person, run, write_csv
from tests.test_cli import _clean_env

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's Chromium is not installed"),
]

MARK = "window.__pwned=1"
CORES = [
    "' OR '1'='1",
    "'; DROP TABLE beneficiaries; --",
    '" OR 1=1 --',
    "1' UNION SELECT password_hash FROM users --",
    "%' AND 1=0 UNION SELECT 1 --",
    "\\'; SELECT pg_sleep(5); --",
    f"<script>{MARK}</script>",
    f'"><script>{MARK}</script>',
    f"<img src=x onerror={MARK}>",
    f"'><svg onload={MARK}>",
    f"javascript:{MARK}",
    f'<a href="javascript:{MARK}">x</a>',
    f"<iframe srcdoc='<script>parent.{MARK}</script>'>",
    f"</textarea><script>{MARK}</script>",
    f"<style>@import'//x'</style><body onload={MARK}>",
    "{{7*7}}",
    "{{1234*5678}}",
    "${1234*5678}",
    "#{1234*5678}",
    "<%= 1234*5678 %>",
    "{% print(1234*5678) %}",
    "{{config.items()}}",
    "{{ ''.__class__.__mro__ }}",
    "=1234*5678",
    "+1234*5678",
    "-1234*5678",
    "@SUM(1234*5678)",
    '=HYPERLINK("http://x","y")',
    "\t=1+1",
    "a\r\nlogin ok: user=admin channel=page",
    "x\nERROR forged line",
    "\u202e<script>" + MARK + "</script>",
    "😀' OR ''='",
]
AFFIXES = ["", "Thôn ", " x", "Xóm 3 ", "Tổ 5 - ", " (ghi chú)"]
# CI: every payload once, at the start of the field and behind text; soak: ~200.
PAYLOADS = [a + c for a, c in itertools.product(AFFIXES, CORES)][: 200 if SOAK else len(CORES)]


@pytest.fixture(scope="module")
def playwright_browser(chromium):
    """Return the run's Chromium (tests/conftest.py): one Playwright per process."""
    return chromium


def _inject(app, client, world, session, tmp_path) -> dict[str, object]:
    """Store every payload in the fields that keep free text; return objects to visit."""
    commune = world.point_a.communes[0]
    rows = [
        person(
            **{
                "Mã đối tượng": f"TTH{n + 1:07d}",
                "Họ và tên": "Nguyễn Thị Hoa",
                "Số CCCD/CMND": f"046153{n:06d}",
                "Số điện thoại": "",
                "Huyện": commune.district_name,
                "Xã/Phường": commune.name,
                "Thôn/Tổ": payload[:100],
                "Hình thức nhận": "Tiền mặt",
                "Đơn vị chi trả": "Bưu điện",
                "Số tài khoản": "",
                "Quan hệ": payload[:50],
                "CCCD người nhận thay": f"046195{n:06d}",
            }
        )
        for n, payload in enumerate(PAYLOADS)
    ]
    report = run(session, write_csv(tmp_path / "roster.csv", rows))
    assert report.added + report.rejected == len(rows), report.counts()
    assert report.added > len(rows) // 2, report.rejections[:5]
    clerk, supervisor = world.users["clerk"], world.users["supervisor"]
    set_float(session, "HTBD", 10**10)
    people = list(session.scalars(select(Beneficiary).order_by(Beneficiary.id)))
    for n, (person_, payload) in enumerate(zip(people, PAYLOADS, strict=False)):
        failures.log_failure(
            session,
            user=clerk,
            reason=FailureReason.OTHER,
            detail=payload,
            beneficiary_id=person_.id,
            escalated=True,
        )
        if n % 8 == 0:
            found = verifications.verify_collector(
                session,
                clerk,
                beneficiary_code=person_.code,
                collector="beneficiary",
                id_number=person_.id_number,
            )
            due = counter.beneficiary_file(session, clerk, person_.code).due
            if not due:
                continue
            payout = pay_now(
                app,
                session,
                clerk,
                payouts.PayoutOrder(found.verification.id, tuple(e.id for e in due), "cash", None),
            )
            if n % 16 == 0:
                payouts.reverse_payout(session, supervisor, payout.id, reason="Lý do " + payload)
    session.commit()
    # A case note through the real form.
    page_client = app.test_client()
    submit(page_client, "/login", {"username": supervisor.username, "password": PASSWORD})
    case = session.scalars(select(Failure).order_by(Failure.id)).first()
    submit(page_client, f"/followup/{case.id}", {"note": PAYLOADS[6], "status": "in_progress"})
    return {
        "payout_ids": [p.id for p in session.scalars(select(Payout).order_by(Payout.id))],
        "failure_ids": [f.id for f in session.scalars(select(Failure).limit(5))],
        "codes": [p.code for p in people[:5]],
    }


def _urls(app, objects) -> list[str]:
    """Return every GET page of the URL map, objects filled in with injected ones."""
    values = {
        "payout_id": objects["payout_ids"][0],
        "failure_id": objects["failure_ids"][0],
        "code": objects["codes"][0],
        "fmt": "csv",
    }
    urls = []
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint == "static":
            continue
        if rule.rule.startswith(("/api/", "/tablet/sw", "/r/", "/logout")):
            continue
        if set(rule.arguments) - set(values):
            continue
        urls.append(rule.build({k: values[k] for k in rule.arguments})[1])
    return sorted(set(urls))


def test_payloads_are_inert_on_every_page_pdf_and_export(
    app, client, world, session, db_url, tmp_path, playwright_browser
):
    objects = _inject(app, client, world, session, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(_clean_env(db_url, tmp_path))
    env["TERMINAL_RECEIPTS_DIR"] = app.config["RECEIPTS_DIR"]
    urls = _urls(app, objects)
    assert len(urls) >= 20, urls
    statuses: dict[str, int] = {}
    with served(env, port=free_port(), workers=1) as server:
        # The auditor reads every point's pages; the clerk the counter's own.
        for role, prefixes in (("clerk", ("/counter",)), ("auditor", ("/",))):
            context = playwright_browser.new_context(locale="vi-VN")
            page = context.new_page()
            dialogs: list[str] = []
            page.on("dialog", lambda d, seen=dialogs: (seen.append(d.message), d.dismiss()))
            page.goto(server.base + "/login")
            page.fill("input[name=username]", world.users[role].username)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()
            visits = [u for u in urls if u.startswith(prefixes)]
            if role == "clerk":
                visits += [f"/counter/?q={p}" for p in CORES[:: 1 if SOAK else 4]]
            for url in visits:
                answer = None if FILES.search(url) else _open(page, server.base + url)
                if answer is None:
                    # A file: fetched with the session, never run.
                    fetched = page.request.get(server.base + url)
                    statuses[f"{role} {url}"] = fetched.status
                    assert fetched.status < 500, (role, url, fetched.status)
                    assert b"7006652" not in fetched.body(), (role, url)
                    continue
                statuses[f"{role} {url}"] = answer.status
                assert answer.status < 500, (role, url, answer.status)
                assert page.evaluate("window.__pwned") is None, (role, url)
                text = page.content()
                assert "7006652" not in text, (role, url)
                # {{7*7}} stays itself wherever it is shown (49 alone is too common a
                # number to look for; 1234*5678 = 7006652 is the witness).
                assert "7*7}}" not in text or "{{7*7}}" in text, (role, url)
            assert dialogs == [], dialogs
            # The receipt PDF and the exports, fetched with the session.
            if role == "auditor":
                _check_files(page, server.base, objects)
            context.close()
        log = server.log()
    assert "Traceback" not in log and "database error" not in log, log[-3000:]
    for line in log.splitlines():
        assert not re.match(r"^(login ok: user=admin|ERROR forged line)", line), line
    print(f"\n[S13] {len(PAYLOADS)} payloads, {len(statuses)} page visits")


FILES = re.compile(
    r"(\.(csv|xlsx|pdf|json|js|webmanifest)|export|failures|corrections|healthz|payout-list)"
    r"(\?|$)"
)


def _open(page, url: str):
    """Open a URL in the tab; None when it is a download rather than a page."""
    try:
        return page.goto(url)
    except Exception as exc:  # playwright's Error: the answer was a file
        if "Download is starting" in str(exc):
            return None
        raise


def _check_files(page, base: str, objects) -> None:
    for payout_id in objects["payout_ids"][:2]:
        pdf = page.request.get(f"{base}/counter/payouts/{payout_id}/receipt.pdf")
        if pdf.status == 200:
            assert pdf.body().startswith(b"%PDF")
            assert b"7006652" not in pdf.body()
    cells: list[str] = []
    for url in ("/audit/payouts/export?format=csv", "/followup/failures?format=csv"):
        answer = page.request.get(base + url)
        if answer.status != 200:
            continue
        for row in csv.reader(io.StringIO(answer.body().decode("utf-8-sig"))):
            cells.extend(row)
    for url in ("/audit/payouts/export?format=xlsx", "/followup/failures?format=xlsx"):
        answer = page.request.get(base + url)
        if answer.status != 200:
            continue
        book = load_workbook(io.BytesIO(answer.body()), read_only=True)
        for sheet in book.worksheets:
            for row in sheet.iter_rows(values_only=True):
                cells.extend(str(c) for c in row if isinstance(c, str))
    assert cells, "no export could be read"
    for cell in cells:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert any("1234*5678" in c for c in cells)  # the payloads are there, inert
