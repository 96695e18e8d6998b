"""The supervisors' home-delivery pages in a real browser: a route, a tablet, screenshots."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.db import make_engine, write_transaction
from terminal.models import Area, Beneficiary, Period, PeriodStatus
from tests.browser.conftest import shoot, sign_in
from tests.factories import make_beneficiary

pytestmark = pytest.mark.browser

# A few more people of the delivery team's communes who collect cash, in two villages,
# with codes of their own so the filter finds exactly them among the demo's.
CASH_PEOPLE = (
    ("TTH9000001", "Nguyễn Thị Lài", "Thôn Hòa An", "046130000101"),
    ("TTH9000002", "Trần Văn Khánh", "Thôn Hòa An", "046135000102"),
    ("TTH9000003", "Lê Thị Mận", "Thôn Hòa An", "046138000103"),
    ("TTH9000004", "Phan Văn Ấm", "Thôn Trung Sơn", None),
    ("TTH9000005", "Hồ Thị Gái", "Thôn Trung Sơn", "046140000105"),
)


@pytest.fixture(scope="module")
def delivery_server(served_terminal):
    """The demo with cash people at the delivery team's commune, saved for every test."""
    engine = make_engine(served_terminal.db_url)
    with Session(engine, expire_on_commit=False) as session:
        commune = session.scalar(select(Area).where(Area.name == "Lộc Trì"))
        period = session.scalar(
            select(Period.code)
            .where(Period.status == PeriodStatus.OPEN)
            .order_by(Period.code.desc())
            .limit(1)
        )
        year, month = map(int, period.split("-"))
        earlier = f"{year - (month == 1)}-{(month - 2) % 12 + 1:02d}"
        for n, (code, name, village, id_number) in enumerate(CASH_PEOPLE):
            person = make_beneficiary(
                session,
                code,
                commune=commune,
                full_name=name,
                id_number=id_number,
                phone=None,
                birth_year=1930 + n,
                periods=((period, 0),) if n else ((earlier, 0), (period, 0)),
            )
            with write_transaction(session):
                session.get(Beneficiary, person.id).village = village
    engine.dispose()
    served_terminal.save()
    return served_terminal


@pytest.fixture
def base(delivery_server, live_server):
    """The served terminal's URL, its data as the module saved it."""
    return live_server


def test_a_route_and_a_tablet_by_the_delivery_teams_head(page, base):
    sign_in(page, base, "delivery-lead")
    page.get_by_test_id("tile-delivery").click()
    page.wait_for_url(base + "/delivery/")
    page.get_by_test_id("new-route").click()
    page.wait_for_url(re.compile(r".*/delivery/routes/new.*"))

    # The page opens on the delivery user; the people are grouped by village.
    assert page.get_by_test_id("route-user").evaluate("e => e === document.activeElement")
    assert "Lê Thị Thu" in page.get_by_test_id("route-user").inner_text()
    assert page.get_by_test_id("village").count() >= 2
    visible = (
        "[...document.querySelectorAll('[data-testid=candidate]')]"
        ".filter(r => r.offsetParent !== null).length === "
    )
    # The filter narrows the list as one types, with or without accents, or by code.
    page.get_by_test_id("route-filter").fill("le thi man")
    page.wait_for_function(visible + "1")
    page.get_by_test_id("route-filter").fill("TTH9000")
    page.wait_for_function(visible + "5")
    villages = page.locator("[data-testid=village]:visible")
    assert villages.count() == 2
    # The whole first village in one press (the script ticks it without a round trip)...
    villages.nth(0).get_by_test_id("village-toggle").click()
    page.wait_for_function(
        "document.querySelector('[data-testid=selected-count]').textContent === '3'"
    )
    # ...and one person of the other village by keyboard.
    page.locator("[data-testid=candidate][data-code=TTH9000004] [data-testid=pick]").focus()
    page.keyboard.press("Space")
    page.wait_for_function(
        "document.querySelector('[data-testid=selected-count]').textContent === '4'"
    )
    shoot(page, "delivery-2-new-route")
    page.get_by_test_id("create-route").click()
    page.wait_for_url(re.compile(r".*/delivery/routes/\d+$"))
    page.get_by_test_id("flash-success").wait_for()
    people = page.get_by_test_id("route-person")
    assert people.count() == 4
    assert page.get_by_test_id("count-on-route").inner_text() == "4"
    assert "1.080.000 đ" in page.get_by_test_id("route-people").inner_text()

    route_url = page.url

    # At the counter the person is marked as the route's, and nothing is offered to pay.
    page.goto(base + "/counter/b/TTH9000001")
    notice = page.get_by_test_id("reserved-for-delivery").inner_text()
    assert "Lê Thị Thu" in notice and "#" + route_url.rsplit("/", 1)[1] in notice
    assert page.get_by_test_id("nothing-payable-here").is_visible()
    assert page.get_by_test_id("verify-form").count() == 0
    shoot(page, "delivery-5-counter-notice")
    page.get_by_test_id("open-route").click()
    page.wait_for_url(route_url + "#p-TTH9000001")

    # Phan Văn Ấm goes back to the counter.
    row = page.locator("[data-testid=route-person][data-code=TTH9000004]")
    row.get_by_test_id("release").click()
    page.get_by_test_id("flash-success").wait_for()
    row = page.locator("[data-testid=route-person][data-code=TTH9000004]")
    row.locator("[data-status=released]").wait_for()
    assert page.get_by_test_id("count-on-route").inner_text() == "3"
    shoot(page, "delivery-3-route")

    # A tablet for the delivery user: its pairing code, shown once.
    page.get_by_test_id("nav-devices").click()
    page.wait_for_url(base + "/delivery/devices")
    page.get_by_test_id("device-name").focus()
    page.keyboard.type("Máy tính bảng 1 – Lộc Trì")
    page.keyboard.press("Enter")
    qr = page.get_by_test_id("pair-qr")
    qr.wait_for()
    assert qr.evaluate("img => img.complete && img.naturalWidth > 0")
    link = page.get_by_test_id("pair-link").inner_text()
    token = page.get_by_test_id("pair-token").inner_text()
    assert link == f"{base}/tablet/#pair={token}"
    # The QR code says the same link: decoded by the jsQR the tablet itself uses.
    page.add_script_tag(url=base + "/static/tablet/vendor/jsQR.js")
    decoded = page.evaluate(
        """() => {
          const img = document.querySelector('[data-testid=pair-qr]');
          const canvas = document.createElement('canvas');
          canvas.width = img.naturalWidth * 2; canvas.height = img.naturalHeight * 2;
          const context = canvas.getContext('2d');
          context.fillStyle = '#fff'; context.fillRect(0, 0, canvas.width, canvas.height);
          context.drawImage(img, 0, 0, canvas.width, canvas.height);
          const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
          const code = jsQR(pixels.data, canvas.width, canvas.height);
          return code && code.data;
        }"""
    )
    assert decoded == link
    shoot(page, "delivery-4-device-qr")

    page.get_by_test_id("pair-done").click()
    page.wait_for_url(base + "/delivery/devices")
    assert token not in page.content()
    row = page.get_by_test_id("device-row")
    assert row.count() == 1
    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_test_id("revoke").click()
    page.get_by_test_id("flash-success").wait_for()
    page.locator("[data-testid=device-state][data-state=revoked]").wait_for()

    page.get_by_test_id("nav-routes").click()
    page.wait_for_url(base + "/delivery/")
    assert page.get_by_test_id("route-row").count() == 1
    assert page.get_by_test_id("route-people").first.inner_text().startswith("3")
    shoot(page, "delivery-1-routes")
