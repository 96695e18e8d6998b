"""An agent's withdrawal with an OTP in a real browser, against the sandbox provider.

The served terminal's Phú Lộc agent point (PLVT) is switched to the ``http`` adapter
pointing at a ``payout-terminal provider-sandbox`` process; the agent verifies an
account holder, sends the code, types the code the sandbox "sent", and gets the
receipt. A second run with the provider too slow shows "do not hand over money".
"""

from __future__ import annotations

import json
import subprocess
import urllib.request

import pytest
from sqlalchemy import text

from terminal.db import make_engine
from tests.browser.conftest import SCRIPT, shoot, sign_in
from tests.servers import sandbox_process

pytestmark = pytest.mark.browser

# The server waits 1.5 s for the provider and retries once; the sandbox's slow answers
# take 4 s: a "timed out" answer leaves the withdrawal pending.
SERVER_ENV = {"TERMINAL_PROVIDER_TIMEOUT_MS": "1500", "TERMINAL_PROVIDER_RETRIES": "1"}


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_process(slow_seconds=4.0) as running:
        yield running


@pytest.fixture(scope="module")
def provider_point(served_terminal, sandbox):
    """Connect PLVT to the sandbox (the command line an administrator would run)."""
    done = subprocess.run(
        [
            str(SCRIPT),
            "create-point",
            "PLVT",
            "--name",
            "Điểm đại lý Viettel Phú Lộc",
            "--kind",
            "agent",
            "--district",
            "Phú Lộc",
            "--communes",
            ";".join(_communes(served_terminal.db_url)),
            "--adapter",
            "http",
            "--provider-url",
            sandbox.base,
        ],
        env=served_terminal.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "provider http://127.0.0.1" in done.stdout
    served_terminal.save()
    return served_terminal


def _communes(db_url):
    engine = make_engine(db_url)
    with engine.connect() as conn:
        names = (
            conn.execute(
                text(
                    "SELECT a.name FROM areas a JOIN point_communes pc ON pc.commune_id = a.id "
                    "JOIN payout_points p ON p.id = pc.point_id "
                    "WHERE p.code = 'PLVT' ORDER BY a.name"
                )
            )
            .scalars()
            .all()
        )
    engine.dispose()
    return names


def _account_holders(db_url, count):
    """Return (code, id_number) of account holders of PLVT's communes with a due period."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT b.code, b.id_number FROM beneficiaries b "
                "JOIN point_communes pc ON pc.commune_id = b.commune_id "
                "JOIN payout_points p ON p.id = pc.point_id "
                "JOIN entitlements e ON e.beneficiary_id = b.id "
                "WHERE p.code = 'PLVT' AND b.payment_method = 'account' AND b.status = 'active' "
                "AND b.account_no IS NOT NULL AND b.id_number IS NOT NULL AND e.status = 'due' "
                "AND b.category <> 'orphan' AND b.birth_year < 2000 "
                "AND NOT EXISTS (SELECT 1 FROM entitlements x WHERE x.beneficiary_id = b.id "
                "AND x.status = 'due' AND x.id <> e.id) "
                "ORDER BY b.code LIMIT :n"
            ),
            {"n": count},
        ).all()
    engine.dispose()
    assert len(rows) == count, "the demo data has too few account holders at PLVT"
    return rows


def _to_otp_page(page, base, code, id_number):
    page.goto(base + "/counter/")
    page.keyboard.type(code)
    page.keyboard.press("Enter")
    page.get_by_test_id("beneficiary-name").wait_for()
    page.keyboard.type(id_number)
    page.keyboard.press("Enter")
    page.get_by_test_id("withdraw-form").wait_for()
    return page


def _faults(sandbox, **rates):
    body = json.dumps({"otp_loss": 0, "timeout_rate": 0, "not_withdrawable": 0, **rates}).encode()
    request = urllib.request.Request(
        sandbox.base + "/sandbox/faults", data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).read()


def test_an_agent_withdraws_with_the_code_the_person_reads_out(
    page, provider_point, sandbox, live_server
):
    base = live_server
    ((code, id_number),) = _account_holders(provider_point.db_url, 1)
    _faults(sandbox)
    sign_in(page, base, "agent")
    _to_otp_page(page, base, code, id_number)
    assert page.evaluate("document.activeElement.dataset.testid") == "withdraw-submit"
    shoot(page, "withdrawal-1-confirm")
    page.keyboard.press("Enter")  # send the code
    page.get_by_test_id("otp-form").wait_for()
    assert page.evaluate("document.activeElement.dataset.testid") == "otp-input"
    client_ref = page.locator("dd.mono").inner_text().strip()
    otp = sandbox.otp(client_ref)
    assert otp is not None
    page.keyboard.type(otp)
    shoot(page, "withdrawal-2-otp")
    page.keyboard.press("Enter")
    page.get_by_test_id("result-paid").wait_for()
    assert "PLVT-" in page.get_by_test_id("receipt-no").inner_text()
    shoot(page, "withdrawal-3-paid")
    assert sandbox.ledger()["paid"][-1]["client_ref"] == client_ref


def test_a_slow_provider_says_do_not_hand_over_money(page, provider_point, sandbox, live_server):
    base = live_server
    # Another person: the sandbox remembers the first one's account as withdrawn.
    code, id_number = _account_holders(provider_point.db_url, 2)[1]
    _faults(sandbox)
    sign_in(page, base, "agent")
    _to_otp_page(page, base, code, id_number)
    page.get_by_test_id("withdraw-submit").click()
    page.get_by_test_id("otp-form").wait_for()
    otp = sandbox.otp(page.locator("dd.mono").inner_text().strip())
    _faults(sandbox, timeout_rate=1.0)
    page.get_by_test_id("otp-input").fill(otp)
    page.get_by_test_id("otp-submit").click()
    page.get_by_test_id("withdrawal-pending").wait_for(timeout=30000)
    assert "KHÔNG GIAO TIỀN" in page.get_by_test_id("withdrawal-pending").inner_text()
    shoot(page, "withdrawal-4-pending")
    _faults(sandbox)
