"""The auditor's workspace in a real browser: find a payout, export, prove the log untouched.

The served terminal holds the demo's points and users plus three months of generated
payouts (``payout-terminal generate``). Screenshots: audit-1-log ... audit-8-daybook.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest

from tests.browser.conftest import SCRIPT, shoot, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def history(served_terminal):
    """Add three months of generated payouts once; every test starts from them."""
    done = subprocess.run(
        [str(SCRIPT), "generate", "--beneficiaries", "300", "--periods", "3"],
        env=served_terminal.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    served_terminal.save()


@pytest.fixture
def base(history, live_server):
    return live_server


def test_an_auditor_finds_a_payout_exports_it_and_proves_the_log(page, base, tmp_path):
    sign_in(page, base, "auditor")
    page.get_by_test_id("tile-payout-log").click()
    rows = page.get_by_test_id("payout-row")
    rows.first.wait_for()
    assert rows.count() == 50  # a page; the rest behind "next"
    shoot(page, "audit-1-log")

    # A receipt number read off a paper receipt, typed into the quick find: its payout.
    wanted = rows.nth(7).inner_text().split()[0]
    assert wanted.count("-") == 2, wanted
    page.get_by_test_id("quick-find").fill(wanted)
    page.get_by_test_id("quick-find").press("Enter")
    page.get_by_test_id("payout-title").wait_for()
    assert page.get_by_test_id("receipt-no").inner_text().strip() == wanted
    for part in ("payout-facts", "verification", "receipt", "lines", "events"):
        assert page.get_by_test_id(part).is_visible(), part
    shoot(page, "audit-2-payout")

    # Narrow the log to one point and cash, then export what is shown.
    page.get_by_test_id("back-to-log").click()
    page.get_by_test_id("filter-point").fill("HTBD")
    page.get_by_test_id("filter-channel").select_option("cash")
    page.get_by_test_id("filter-submit").click()
    page.get_by_test_id("payout-row").first.wait_for()
    shoot(page, "audit-3-filtered")
    with page.expect_download() as download:
        page.get_by_test_id("export-csv").click()
    saved = tmp_path / "payouts.csv"
    download.value.save_as(saved)
    table = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8-sig"))))
    assert table and {r["payout_point"] for r in table} == {"HTBD"}
    assert {r["channel"] for r in table} == {"cash"}

    # The trail: the export is in it, the chain verifies, a checkpoint is kept and checked.
    page.get_by_test_id("brand").click()
    page.get_by_test_id("tile-trail").click()
    assert "export.written" in page.get_by_test_id("events").inner_text()
    page.get_by_test_id("verify-chain").click()
    result = page.get_by_test_id("chain-result")
    result.wait_for()
    assert "Nguyên vẹn" in result.inner_text()
    with page.expect_download() as download:
        page.get_by_test_id("download-checkpoint").click()
    kept = tmp_path / "checkpoint.json"
    download.value.save_as(kept)
    assert json.loads(kept.read_text())["seq"] > 0
    page.get_by_test_id("checkpoint-file").set_input_files(str(kept))
    page.get_by_test_id("check-checkpoint").click()
    checked = page.get_by_test_id("checkpoint-result")
    checked.wait_for()
    assert "Nhật ký nối tiếp điểm kiểm tra" in checked.inner_text()
    shoot(page, "audit-4-trail")


def test_coverage_samples_and_the_day(page, base):
    sign_in(page, base, "auditor")
    page.get_by_test_id("tile-coverage").click()
    page.get_by_test_id("coverage-summary-line").wait_for()
    line = page.get_by_test_id("coverage-summary-line").inner_text()
    assert "đối tượng" in line and "%" in line
    rows = page.get_by_test_id("coverage-row").count()
    assert rows >= 1 and page.get_by_test_id("chart-bar").count() == rows
    shoot(page, "audit-5-coverage")

    page.get_by_test_id("brand").click()
    page.get_by_test_id("tile-samples").click()
    # Last month: the generated history paid it (this month has no payouts yet).
    periods = page.get_by_test_id("draw-form").locator("select").first
    periods.select_option(index=1)
    page.get_by_test_id("draw-scope").locator("select").first.select_option("HTBD")
    page.get_by_test_id("draw-size").locator("input").first.fill("5")
    page.get_by_test_id("draw-submit").click()
    items = page.get_by_test_id("sample-item")
    items.first.wait_for()
    assert items.count() == 5
    items.first.get_by_test_id("answer-in-full").click()
    page.get_by_test_id("progress-answered").wait_for()
    assert page.get_by_test_id("progress-answered").inner_text().strip().startswith("1")
    shoot(page, "audit-6-sample")
    page.get_by_test_id("logout").click()

    sign_in(page, base, "supervisor")
    page.get_by_test_id("tile-daybook").click()
    page.get_by_test_id("settlement-figures").wait_for()
    shoot(page, "audit-7-daybook")
    page.get_by_test_id("nav-payout-list").click()
    page.get_by_test_id("list-chooser").wait_for()
    shoot(page, "audit-8-payout-list")
