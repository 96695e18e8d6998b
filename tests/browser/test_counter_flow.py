"""The counter flow end to end in a real browser, by keyboard only, with screenshots."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from terminal.clock import today_local
from tests.browser.conftest import SCRIPT, shoot, sign_in

pytestmark = pytest.mark.browser

# A copy of shared/data/sample-roster.csv, so the suite runs from any clone.
SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample-roster.csv"


@pytest.fixture(scope="module")
def roster_imported(served_terminal):
    """Import the sample roster for this month once; every test starts from it."""
    period = today_local().strftime("%Y-%m")
    done = subprocess.run(
        [str(SCRIPT), "import-roster", str(SAMPLE), "--period", period],
        env=served_terminal.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    served_terminal.save()


@pytest.fixture
def counter_server(roster_imported, live_server):
    """A served terminal with the sample roster imported for this month."""
    return live_server


def sign_out(page):
    page.get_by_test_id("logout").click()
    page.wait_for_url("**/login")


def record_cash_advance(page, base):
    sign_in(page, base, "supervisor")
    page.goto(base + "/counter/cash")
    page.keyboard.type("50.000.000")
    page.keyboard.press("Enter")
    page.get_by_test_id("flash-success").wait_for()
    assert "50.000.000 đ" in page.get_by_test_id("cash-position").inner_text()
    shoot(page, "counter-cash")
    sign_out(page)


def focused_testid(page):
    return page.evaluate("document.activeElement && document.activeElement.dataset.testid")


def test_proxy_paid_by_keyboard_in_four_screens(page, counter_server):
    base = counter_server
    record_cash_advance(page, base)
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/")
    # Screen 1: the search field has focus; the proxy's ID number finds the beneficiary.
    assert focused_testid(page) == "search-input"
    page.keyboard.type("046071390487")
    shoot(page, "counter-1-search")
    page.keyboard.press("Enter")
    # Screen 2: the beneficiary, with the proxy chosen and the ID ready: Enter verifies.
    page.get_by_test_id("beneficiary-name").wait_for()
    assert "Hồ Văn Dũng" in page.get_by_test_id("beneficiary-name").inner_text()
    assert focused_testid(page) == "verify-submit"
    shoot(page, "counter-2-beneficiary")
    page.keyboard.press("Enter")
    # Screen 3: the confirmation with the total in digits and words: Enter pays.
    page.get_by_test_id("pay-form").wait_for()
    assert "Phạm Văn Thủy" in page.get_by_test_id("collector-name").inner_text()
    assert page.get_by_test_id("total-digits").inner_text() == "540.000 đ"
    assert "Năm trăm bốn mươi nghìn đồng" in page.get_by_test_id("total-words").inner_text()
    assert focused_testid(page) == "pay-submit"
    shoot(page, "counter-3-confirm")
    page.keyboard.press("Enter")
    # Screen 4: paid, with the receipt number; the print button has focus.
    page.get_by_test_id("result-paid").wait_for()
    receipt = page.get_by_test_id("receipt-no").inner_text()
    assert receipt.startswith(f"HTBD-{today_local().year}-")
    assert focused_testid(page) == "print"
    shoot(page, "counter-4-result")
    # Back, then the confirmation again (F5/back button): never a second payout.
    page.go_back()
    page.wait_for_load_state()
    page.goto(base + "/counter/today")
    assert page.get_by_test_id("today").inner_text().count(receipt) == 1


def test_beneficiary_scans_the_card_qr(page, counter_server):
    base = counter_server
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/")
    page.keyboard.type("ly thi nghia")
    page.keyboard.press("Enter")
    page.get_by_test_id("results").wait_for()
    shoot(page, "counter-results")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    page.get_by_test_id("beneficiary-name").wait_for()
    assert focused_testid(page) == "identity"
    # A keyboard-wedge scanner types the card's QR text and presses Enter.
    page.keyboard.type(
        "046163488218||Ly Thi Nghia|25061963|Nu|Thon 5, Thuy Van, Huong Thuy|10082021"
    )
    page.keyboard.press("Enter")
    page.get_by_test_id("card-compare").wait_for()
    shoot(page, "counter-qr-compare")
    # An account withdrawal needs the provider's reference: that field has focus.
    assert focused_testid(page) == "provider-ref"
    page.keyboard.type("VTB-20211015-0042")
    page.keyboard.press("Enter")
    page.get_by_test_id("result-paid").wait_for()
    assert "VTB-20211015-0042" in page.content()


def test_proxy_card_after_a_name_search_is_recognised(page, counter_server):
    """The path most people take: found by name, then the proxy's card, default choice."""
    base = counter_server
    record_cash_advance(page, base)
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/b/TTH0000002")
    assert focused_testid(page) == "identity"
    assert page.get_by_test_id("collector-auto").locator("input").is_checked()
    page.keyboard.type("046071390487")
    page.keyboard.press("Enter")
    page.get_by_test_id("pay-form").wait_for()
    assert "Phạm Văn Thủy" in page.get_by_test_id("collector-name").inner_text()
    shoot(page, "counter-proxy-recognised")


def test_wrong_id_is_refused_on_screen(page, counter_server):
    base = counter_server
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/b/TTH0000003")
    page.keyboard.type("046163488219")
    page.keyboard.press("Enter")
    error = page.get_by_test_id("verify-error")
    error.wait_for()
    assert "không khớp" in error.inner_text()
    shoot(page, "counter-refused")


def test_double_click_pays_once(page, counter_server):
    base = counter_server
    record_cash_advance(page, base)
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/b/TTH0000002")
    page.get_by_test_id("identity").fill("046071390487")
    page.locator("label.choice", has_text="Phạm Văn Thủy").click()
    page.get_by_test_id("verify-submit").click()
    page.get_by_test_id("pay-form").wait_for()
    page.get_by_test_id("pay-submit").dblclick()
    page.get_by_test_id("result-paid").wait_for()
    page.goto(base + "/counter/today")
    assert page.get_by_test_id("today").locator("tbody tr").count() == 1


def test_counter_on_a_tablet(tablet, counter_server):
    base = counter_server
    tablet.goto(base + "/login")
    tablet.fill("#username", "clerk")
    tablet.fill("#password", "clerk-demo-2021")
    tablet.get_by_test_id("login-submit").tap()
    tablet.wait_for_url(base + "/")
    tablet.goto(base + "/counter/b/TTH0000002")
    for testid in ("verify-submit",):
        box = tablet.get_by_test_id(testid).bounding_box()
        assert box["height"] >= 48
    shoot(tablet, "counter-tablet-beneficiary")


def test_the_receipt_qr_opens_a_page_saying_genuine(page, counter_server):
    """Pay, print the receipt, decode its QR like a phone would, and follow it."""
    import pypdfium2
    import zxingcpp

    base = counter_server
    record_cash_advance(page, base)
    sign_in(page, base, "clerk")
    page.goto(base + "/counter/b/TTH0000002")
    page.locator("label.choice", has_text="Phạm Văn Thủy").click()
    page.get_by_test_id("identity").fill("046071390487")
    page.get_by_test_id("verify-submit").click()
    page.get_by_test_id("pay-submit").click()
    page.get_by_test_id("result-paid").wait_for()
    pdf_url = page.get_by_test_id("print").get_attribute("href")
    pdf = page.request.get(base + pdf_url)
    assert pdf.headers["content-type"] == "application/pdf"
    document = pypdfium2.PdfDocument(pdf.body())
    image = document[0].render(scale=200 / 72).to_pil()
    document.close()
    codes = [code.text for code in zxingcpp.read_barcodes(image)]
    assert len(codes) == 1 and codes[0].startswith(base + "/r/")
    visitor = page.context.browser.new_page()  # a phone: nobody signed in
    visitor.goto(codes[0])
    visitor.get_by_test_id("verdict-genuine").wait_for()
    assert "540.000 đ" in visitor.get_by_test_id("check-amount").inner_text()
    shoot(visitor, "receipt-check-genuine")
    visitor.close()


# ---- the follow-up queue ----------------------------------------------------------------


def open_cases(page, base, count=3):
    """Report failures through the API as the clerk would from a tablet."""
    token = page.request.post(
        base + "/api/v1/tokens", data={"username": "clerk", "password": "clerk-demo-2021"}
    ).json()["token"]
    ids = []
    for reason in ("otp_not_received", "recipient_absent", "other")[:count]:
        made = page.request.post(
            base + "/api/v1/failures",
            data={"beneficiary_code": "TTH0000002", "reason": reason, "detail": "Báo từ quầy"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status == 201, made.text()
        ids.append(made.json()["id"])
    return ids


def test_a_supervisor_works_the_queue_by_keyboard(page, counter_server):
    base = counter_server
    ids = open_cases(page, base)
    sign_in(page, base, "supervisor")
    page.goto(base + "/followup/")
    rows = page.get_by_test_id("case-row")
    assert rows.count() >= 3
    shoot(page, "followup-queue")
    page.get_by_test_id("case-link").first.focus()
    page.keyboard.press("Enter")
    page.get_by_test_id("case-form").wait_for()
    # The status has focus: one step down is "in progress", the next field the owner.
    assert focused_testid(page) == "case-status-select"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert focused_testid(page) == "case-owner-select"
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert focused_testid(page) == "case-note"
    page.keyboard.type("Đã gọi điện, hẹn chi trả thứ Hai")
    page.keyboard.press("Tab")
    assert focused_testid(page) == "case-save"
    page.keyboard.press("Enter")
    page.get_by_test_id("flash-success").wait_for()
    assert "Đã gọi điện, hẹn chi trả thứ Hai" in page.get_by_test_id("thread").inner_text()
    assert "đang xử lý" in page.get_by_test_id("case-status").inner_text()
    assert page.get_by_test_id("case-owner").inner_text() != "(chưa giao)"
    shoot(page, "followup-case")
    page.goto(base + "/followup/summary")
    text = page.get_by_test_id("summary-text").input_value()
    assert text.startswith("Theo dõi xử lý ngày") and "Mở mới" in text
    shoot(page, "followup-summary")
    assert ids


def test_a_supervisor_works_the_queue_by_touch_on_a_tablet(tablet, counter_server):
    base = counter_server
    open_cases(tablet, base, count=1)
    tablet.goto(base + "/login")
    tablet.fill("#username", "supervisor")
    tablet.fill("#password", "supervisor-demo-2021")
    tablet.get_by_test_id("login-submit").tap()
    tablet.wait_for_url(base + "/")
    tablet.get_by_test_id("tile-followup").tap()
    tablet.get_by_test_id("queue").wait_for()
    tablet.get_by_test_id("case-link").first.tap()
    tablet.get_by_test_id("case-form").wait_for()
    for testid in ("case-status-select", "case-owner-select", "case-save"):
        box = tablet.get_by_test_id(testid).bounding_box()
        assert box["height"] >= 44, (testid, box)
    tablet.get_by_test_id("case-status-select").select_option("resolved")
    tablet.get_by_test_id("case-note").fill("Người nhà nhận thay, đã chi")
    tablet.get_by_test_id("case-save").tap()
    tablet.get_by_test_id("flash-success").wait_for()
    assert "đã xử lý" in tablet.get_by_test_id("case-status").inner_text()
    shoot(tablet, "followup-case-tablet")
