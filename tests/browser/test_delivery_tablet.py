"""The home-delivery tablet app in a real browser: offline payouts, sync, conflicts, revocation.

Set up through the API as a supervisor would (the PLTN team's head registers a tablet
for the delivery user and gives it a route), then the tablet is paired by its link,
goes offline, pays people at home with signatures, comes back and syncs. The database
is the judge: each entitlement is paid once, however often the tablet sends it.
"""

from __future__ import annotations

import json
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from sqlalchemy import text

from terminal.db import make_engine
from terminal.text import fold
from tests.browser.conftest import ARGS, CHROMIUM, shoot, sync_api
from tests.servers import SCRIPT

expect = sync_api.expect

pytestmark = pytest.mark.browser

LEAD = ("delivery-lead", "delivery-lead-demo-2021")
DELIVERY = "delivery"
AGENT = ("agent", "agent-demo-2021")
ON_ROUTE = 4  # people given to the tablet in each test

# ---------------------------------------------------------------------------
# Set-up through the API and the database


def api(base, method, path, body=None, token=None, headers=None):
    """Call the terminal's API; return (status, parsed JSON or None)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Accept", "application/json")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as error:
        raw = error.read()
        return error.code, json.loads(raw) if raw else None


def token_of(base, username, password):
    """Return a user's API token."""
    status, body = api(base, "POST", "/api/v1/tokens", {"username": username, "password": password})
    assert status == 201, body
    return body["token"]


def query(db_url, sql, **params):
    """Run a query on the served terminal's database; return its rows."""
    engine = make_engine(db_url)
    try:
        with engine.begin() as conn:
            result = conn.execute(text(sql), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


PEOPLE_SQL = """
SELECT b.code, b.id_number, b.full_name, e.id, e.amount_vnd
FROM beneficiaries b
JOIN point_communes pc ON pc.commune_id = b.commune_id
JOIN payout_points p ON p.id = pc.point_id
JOIN entitlements e ON e.beneficiary_id = b.id
JOIN periods pe ON pe.id = e.period_id
WHERE p.code = 'PLTN' AND b.status = 'active' AND b.payment_method = :method
  AND b.id_number IS NOT NULL AND e.status = 'due' AND pe.status = 'open'
  AND NOT EXISTS (SELECT 1 FROM entitlements x WHERE x.beneficiary_id = b.id
                  AND x.status = 'due' AND x.id <> e.id)
ORDER BY b.code
"""


@pytest.fixture(scope="module")
def delivery_terminal(served_terminal):
    """The served demo terminal with enough cash beneficiaries in PLTN's communes.

    The demo's Phú Lộc roster is paid by account (the 2021 pilot paid all 8,364 there
    by Viettel Pay); home delivery pays cash, so a few of them are put on cash as an
    administrator's roster change would.
    """
    db_url = served_terminal.db_url
    have = query(db_url, PEOPLE_SQL, method="cash")
    if len(have) < 8:
        codes = [row[0] for row in query(db_url, PEOPLE_SQL, method="account")[: 8 - len(have)]]
        for code in codes:
            query(
                db_url,
                "UPDATE beneficiaries SET payment_method = 'cash', provider = 'post', "
                "account_no = NULL WHERE code = :code",
                code=code,
            )
    served_terminal.save()
    return served_terminal


def cash_people(db_url, count=ON_ROUTE):
    """Return (code, id_number, full_name, entitlement_id, amount) of PLTN cash beneficiaries."""
    rows = query(db_url, PEOPLE_SQL, method="cash")
    assert len(rows) >= count, "too few cash beneficiaries with one due entitlement at PLTN"
    return rows[:count]


def open_period(db_url):
    """Return the code of the open period."""
    return query(db_url, "SELECT code FROM periods WHERE status = 'open'")[0][0]


def give_route(base, db_url, count=ON_ROUTE):
    """Register a tablet for the delivery user and give it a route; return what the test needs."""
    lead = token_of(base, *LEAD)
    status, device = api(
        base, "POST", "/api/v1/devices", {"name": "Máy tính bảng 1", "username": DELIVERY}, lead
    )
    assert status == 201, device
    people = cash_people(db_url, count)
    status, route = api(
        base,
        "POST",
        "/api/v1/routes",
        {
            "username": DELIVERY,
            "period": open_period(db_url),
            "beneficiary_codes": [p[0] for p in people],
        },
        lead,
    )
    assert status == 201, route
    return {
        "lead": lead,
        "device_id": device["device_id"],
        "token": device["token"],
        "route_id": route["route_id"],
        "people": people,
    }


def live_lines(db_url, entitlement_ids):
    """Return the live payout lines of some entitlements: (entitlement_id, payout_id)."""
    ids = ",".join(str(int(i)) for i in entitlement_ids)
    return query(
        db_url,
        f"SELECT entitlement_id, payout_id FROM payout_lines "
        f"WHERE reversed_at IS NULL AND entitlement_id IN ({ids}) ORDER BY entitlement_id",
    )


# ---------------------------------------------------------------------------
# Driving the app


def pair(page, base, token):
    """Open the pairing link; wait for the route and for the service worker to control the page."""
    page.goto(f"{base}/tablet/#pair={token}")
    page.get_by_test_id("village-list").wait_for()
    assert "#pair" not in page.url  # the token left the address bar
    page.wait_for_function(
        "() => navigator.serviceWorker && navigator.serviceWorker.controller !== null"
    )


# The tablet's IndexedDB as the page sees it: {store: [rows]} for the stores named.
READ_STORES = """async (names) => {
    const db = await new Promise((ok) => {
        const r = indexedDB.open("payout-tablet");
        r.onsuccess = () => ok(r.result);
    });
    const rows = (name) => new Promise((ok) => {
        const r = db.transaction(name).objectStore(name).getAll();
        r.onsuccess = () => ok(r.result);
    });
    const out = {};
    for (const name of names) out[name] = await rows(name);
    return out;
}"""

# Move the stored route's end into the past (as if the tablet stayed in a drawer for weeks).
EXPIRE_ROUTE = """async () => {
    const db = await new Promise((ok) => {
        const r = indexedDB.open("payout-tablet");
        r.onsuccess = () => ok(r.result);
    });
    const meta = db.transaction("meta", "readwrite").objectStore("meta");
    await new Promise((ok) => {
        const r = meta.get("route");
        r.onsuccess = () => {
            r.result.value.expires_at = "2001-01-01T00:00:00+07:00";
            meta.put(r.result).onsuccess = ok;
        };
    });
}"""


def stores(page, *names):
    """Return the rows of some of the tablet's IndexedDB stores."""
    return page.evaluate(READ_STORES, list(names))


def open_person(page, code):
    page.get_by_test_id("person-row").and_(page.locator(f"[data-code='{code}']")).click()
    page.get_by_test_id("person-screen").wait_for()


def sign(page):
    """Draw a signature on the pad with the mouse (pointer events, like a finger)."""
    pad = page.get_by_test_id("signature-pad")
    pad.scroll_into_view_if_needed()
    box = pad.bounding_box()
    x, y = box["x"], box["y"]
    page.mouse.move(x + 40, y + 150)
    page.mouse.down()
    for step in range(1, 25):
        page.mouse.move(x + 40 + step * 18, y + 150 + (40 if step % 2 else -40), steps=3)
    page.mouse.up()


def verify_by_id(page, id_number):
    page.get_by_test_id("start-verify").click()
    page.get_by_test_id("verify-screen").wait_for()
    page.get_by_test_id("verify-id").fill(id_number)
    page.get_by_test_id("verify-id-submit").click()
    page.get_by_test_id("pay-screen").wait_for()


def pay(page):
    sign(page)
    page.get_by_test_id("pay-confirm").click()
    page.get_by_test_id("receipt-screen").wait_for()


def waiting(page):
    return int(page.get_by_test_id("queue-number").inner_text())


def sync_and_wait(page, banner="sync-done"):
    page.get_by_test_id("sync").click()
    page.get_by_test_id(banner).wait_for()


# ---------------------------------------------------------------------------
# Tests


def test_offline_payouts_sync_once_even_when_sent_twice(tablet, delivery_terminal, live_server):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    page = tablet
    pair(page, base, setup["token"])
    assert page.get_by_test_id("device-owner").inner_text().startswith("Lê Thị Thu")
    shoot(page, "tablet-2-route")

    # Offline from here: the reload comes from the service worker's cache.
    page.context.set_offline(True)
    page.reload()
    page.get_by_test_id("village-list").wait_for()
    assert page.get_by_test_id("net-state").inner_text() == "Mất mạng"
    assert page.get_by_test_id("person-row").count() == ON_ROUTE

    # The search folds diacritics: a name typed without its accents is found.
    first = setup["people"][0]
    page.get_by_test_id("route-search").fill(fold(first[2]))
    assert page.locator(f"[data-testid=person-row][data-code='{first[0]}']").is_visible()
    page.get_by_test_id("route-search").fill("")

    paid = setup["people"][:3]
    for index, (code, id_number, _name, _entitlement, amount) in enumerate(paid):
        open_person(page, code)
        if index == 0:
            shoot(page, "tablet-3-person")
            # A wrong ID number pays nothing.
            page.get_by_test_id("start-verify").click()
            page.get_by_test_id("verify-id").fill("0" * 12)
            page.get_by_test_id("verify-id-submit").click()
            assert "KHÔNG KHỚP" in page.get_by_test_id("verify-error").inner_text()
            shoot(page, "tablet-4-verify")
            page.get_by_test_id("verify-id").fill(id_number)
            page.get_by_test_id("verify-id-submit").click()
            page.get_by_test_id("pay-screen").wait_for()
        else:
            verify_by_id(page, id_number)
        # Without a signature nothing is recorded.
        if index == 0:
            page.get_by_test_id("pay-confirm").click()
            assert "chữ ký" in page.get_by_test_id("pay-error").inner_text()
            assert waiting(page) == 0
        assert (
            page.get_by_test_id("pay-total").inner_text() == f"{amount:,}".replace(",", ".") + " đ"
        )
        if index == 0:
            sign(page)
            shoot(page, "tablet-5-sign")
            page.get_by_test_id("pay-confirm").click()
            page.get_by_test_id("receipt-screen").wait_for()
            shoot(page, "tablet-6-receipt")
        else:
            pay(page)
        assert "Phiếu tạm" in page.get_by_test_id("receipt-note").inner_text()
        page.get_by_test_id("receipt-done").click()
        page.get_by_test_id("village-list").wait_for()
    assert waiting(page) == 3
    # Paid here: not payable a second time, even offline.
    open_person(page, paid[0][0])
    assert page.get_by_test_id("start-verify").count() == 0
    page.get_by_test_id("back").click()
    page.get_by_test_id("sync").click()
    page.get_by_test_id("sync-offline").wait_for()
    page.get_by_test_id("open-queue").click()
    shoot(page, "tablet-7-offline-queue")
    page.get_by_test_id("back").click()

    entitlements = [p[3] for p in paid]
    assert live_lines(db_url, entitlements) == []

    # Back online: the app syncs at once, and that first answer is lost on the way back.
    lost = []

    def lose_answer(route):
        answer = route.fetch()
        lost.append(answer.status)
        route.abort("connectionreset")

    page.route("**/api/v1/sync", lose_answer)
    page.context.set_offline(False)
    page.get_by_test_id("sync-failed").wait_for()
    assert lost == [200]
    assert waiting(page) == 3  # nothing answered: everything still queued
    first_lines = live_lines(db_url, entitlements)
    assert len(first_lines) == 3  # ... but the server did apply them

    # The second send: each item answered "duplicate", nothing paid twice.
    page.unroute("**/api/v1/sync")
    with page.expect_response("**/api/v1/sync") as answer:
        sync_and_wait(page)
    statuses = {r["status"] for r in answer.value.json()["results"]}
    assert statuses == {"duplicate"}
    assert waiting(page) == 0
    assert live_lines(db_url, entitlements) == first_lines
    count = query(
        db_url,
        "SELECT count(DISTINCT payout_id) FROM payout_lines WHERE reversed_at IS NULL "
        f"AND entitlement_id IN ({','.join(str(i) for i in entitlements)})",
    )[0][0]
    assert count == 3

    # The person's card shows the real receipt number and its QR.
    open_person(page, paid[0][0])
    receipt_no = page.get_by_test_id("receipt-no").first.inner_text()
    assert receipt_no.startswith("PLTN-")
    assert page.get_by_test_id("receipt-verify-qr").count() == 1
    shoot(page, "tablet-8-synced")


def test_a_payout_made_elsewhere_meanwhile_is_a_conflict(tablet, delivery_terminal, live_server):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    code, id_number, _name, entitlement, _amount = setup["people"][0]
    page = tablet
    pair(page, base, setup["token"])
    page.context.set_offline(True)
    open_person(page, code)
    verify_by_id(page, id_number)
    pay(page)
    page.get_by_test_id("receipt-done").click()
    assert waiting(page) == 1

    # Meanwhile the supervisor releases the person and the agent point pays them cash.
    status, _ = api(
        base, "DELETE", f"/api/v1/routes/{setup['route_id']}/people/{code}", token=setup["lead"]
    )
    assert status == 204
    agent = token_of(base, *AGENT)
    status, verification = api(
        base,
        "POST",
        "/api/v1/verifications",
        {"beneficiary_code": code, "id_number": id_number},
        agent,
    )
    assert status == 201, verification
    status, payout = api(
        base,
        "POST",
        "/api/v1/payouts",
        {
            "verification_id": verification["verification_id"],
            "entitlement_ids": [entitlement],
            "channel": "cash",
        },
        agent,
        headers={"Idempotency-Key": "counter-pays-first-0001"},
    )
    assert status == 201, payout

    page.context.set_offline(False)  # the app syncs as soon as it is back online
    page.get_by_test_id("sync-conflict").wait_for()
    banner = page.get_by_test_id("sync-conflict").inner_text()
    assert "Có thể đã trả hai lần — tổ trưởng sẽ xử lý" in banner
    case = query(
        db_url,
        "SELECT id FROM failures WHERE reason = 'possible_double_payment' AND entitlement_id = :e",
        e=entitlement,
    )
    assert len(case) == 1
    assert f"#{case[0][0]}" in banner
    assert len(live_lines(db_url, [entitlement])) == 1  # paid once, by the counter
    assert waiting(page) == 0
    open_person(page, code)
    state = page.get_by_test_id("item-conflict")
    assert "Có thể đã trả hai lần" in state.inner_text()
    assert f"#{case[0][0]}" in state.inner_text()
    shoot(page, "tablet-9-conflict")


def test_a_revoked_tablet_keeps_its_queue(tablet, delivery_terminal, live_server):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    code, id_number, *_ = setup["people"][1]
    page = tablet
    pair(page, base, setup["token"])
    open_person(page, code)
    page.context.set_offline(True)
    verify_by_id(page, id_number)
    pay(page)
    page.get_by_test_id("receipt-done").click()

    # Revoked while the tablet is out of reach; it learns so at its next sync.
    status, _ = api(base, "DELETE", f"/api/v1/devices/{setup['device_id']}", token=setup["lead"])
    assert status == 204
    page.context.set_offline(False)
    page.get_by_test_id("device-revoked").wait_for()
    assert (
        "Thiết bị chưa được ghép hoặc đã bị thu hồi"
        in page.get_by_test_id("device-revoked").inner_text()
    )
    assert waiting(page) == 1  # the payout is still on the tablet
    assert page.get_by_test_id("pair-queue-kept").is_visible()
    assert live_lines(db_url, [setup["people"][1][3]]) == []
    # The route's personal data is gone; the queue is not.
    local = stores(page, "people", "queue")
    assert len(local["people"]) == 0 and len(local["queue"]) == 1
    shoot(page, "tablet-1-pair")

    # Paired for another delivery user, the queue would be recorded in their name: refused.
    made = subprocess.run(
        [str(SCRIPT), "create-user", "delivery2", "--role", "delivery", "--point", "PLTN",
         "--password-stdin"],
        input="another-delivery-pass-42\n", env=delivery_terminal.env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    for username in ("delivery2", DELIVERY):
        status, device = api(
            base, "POST", "/api/v1/devices", {"name": "Tablet", "username": username},
            setup["lead"],
        )  # fmt: skip
        assert status == 201, device
        page.get_by_test_id("pair-token").fill(device["token"])
        page.get_by_test_id("pair-submit").click()
        if username == "delivery2":
            page.get_by_test_id("pair-error").filter(has_text="delivery").wait_for()
            assert waiting(page) == 1
    # Paired again for the same person, the kept payout syncs in their name.
    page.get_by_test_id("village-list").wait_for()
    sync_and_wait(page)
    assert waiting(page) == 0
    assert len(live_lines(db_url, [setup["people"][1][3]])) == 1


def test_sign_out_is_refused_while_items_wait(tablet, delivery_terminal, live_server):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    page = tablet
    pair(page, base, setup["token"])
    code = setup["people"][2][0]
    open_person(page, code)
    page.get_by_test_id("visit-note").fill("Hàng xóm nói đi chợ")
    page.get_by_test_id("visit-absent").click()
    history = page.get_by_test_id("person-history")
    expect(history.get_by_test_id("item-applied")).to_contain_text(
        "Vắng nhà"
    )  # online: synced at once
    assert waiting(page) == 0
    page.get_by_test_id("back").click()
    page.context.set_offline(True)
    open_person(page, setup["people"][3][0])
    page.get_by_test_id("visit-refused").click()
    page.get_by_test_id("visit-recorded").wait_for()
    assert waiting(page) == 1
    page.get_by_test_id("back").click()
    page.get_by_test_id("open-device").click()
    page.get_by_test_id("sign-out").click()
    expect(page.get_by_test_id("signout-error")).to_contain_text("Còn 1 mục chưa đồng bộ")
    page.context.set_offline(False)
    expect(page.get_by_test_id("queue-number")).to_have_text("0")
    visits = query(db_url, "SELECT outcome, note FROM visits ORDER BY id")
    assert [v[0] for v in visits] == ["absent", "refused"]
    page.get_by_test_id("sign-out").click()
    page.get_by_test_id("signed-out").wait_for()
    page.get_by_test_id("pair-form").wait_for()
    state = query(
        db_url, "SELECT revoked_at IS NOT NULL FROM devices WHERE id = :d", d=setup["device_id"]
    )
    assert state == [(True,)]


def test_only_a_real_answer_empties_the_queue(tablet, delivery_terminal, live_server):
    """A captive portal's page, a redirect, a server error or a bad body keep the item queued."""
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    code, id_number, _name, entitlement, _amount = setup["people"][0]
    page = tablet
    pair(page, base, setup["token"])
    page.context.set_offline(True)
    open_person(page, code)
    verify_by_id(page, id_number)
    pay(page)
    page.get_by_test_id("receipt-done").click()
    not_answers = [
        {"status": 200, "content_type": "text/html", "body": "<html>Wi-Fi login</html>"},
        {"status": 302, "headers": {"Location": "/login"}, "body": ""},
        {"status": 503, "content_type": "application/json", "body": '{"error": "unavailable"}'},
        {"status": 200, "content_type": "application/json", "body": "{not json"},
        {"status": 200, "content_type": "application/json", "body": '{"results": "nope"}'},
        {"status": 403, "content_type": "application/json", "body": '{"error": "forbidden"}'},
    ]

    def answer_with(fake):
        return lambda route: route.fulfill(**fake)

    # Back online, the app syncs at once: the first non-answer meets that sync.
    page.route("**/api/v1/sync", answer_with(not_answers[0]))
    page.context.set_offline(False)
    page.get_by_test_id("sync-failed").wait_for()
    assert waiting(page) == 1
    page.unroute("**/api/v1/sync")
    for fake in not_answers[1:]:
        page.get_by_test_id("open-queue").click()  # a fresh screen: the next banner is new
        page.get_by_test_id("back").click()
        page.route("**/api/v1/sync", answer_with(fake))
        page.get_by_test_id("sync").click()
        page.get_by_test_id("sync-failed").wait_for()
        assert waiting(page) == 1, fake
        page.unroute("**/api/v1/sync")
    assert live_lines(db_url, [entitlement]) == []
    sync_and_wait(page)
    assert waiting(page) == 0
    assert len(live_lines(db_url, [entitlement])) == 1


def test_an_expired_route_is_wiped_but_not_the_queue(tablet, delivery_terminal, live_server):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    code, id_number, *_ = setup["people"][0]
    page = tablet
    pair(page, base, setup["token"])
    page.context.set_offline(True)
    open_person(page, code)
    verify_by_id(page, id_number)
    pay(page)
    page.evaluate(EXPIRE_ROUTE)
    page.reload()
    page.get_by_test_id("route-expired").wait_for()
    page.get_by_test_id("no-route").wait_for()
    assert waiting(page) == 1
    local = stores(page, "people", "queue")
    assert (len(local["people"]), len(local["queue"])) == (0, 1)


# ---------------------------------------------------------------------------
# The CCCD's QR code through a (fake) camera


def cccd_video(path: Path, payload: str) -> Path:
    """Write a short Y4M video (C420) showing a CCCD's QR code, for Chromium's fake camera."""
    import qrcode
    from PIL import Image

    width, height = 640, 480
    code = qrcode.QRCode(border=4, box_size=8, error_correction=qrcode.constants.ERROR_CORRECT_M)
    code.add_data(payload)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white").convert("L")
    side = min(height - 40, image.size[0])
    image = image.resize((side, side), Image.NEAREST)
    frame = Image.new("L", (width, height), 255)
    frame.paste(image, ((width - side) // 2, (height - side) // 2))
    luma = frame.tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420\n".encode())
        for _ in range(10):
            out.write(b"FRAME\n" + luma + chroma + chroma)
    return path


def test_the_camera_reads_the_cccd_qr(browser, delivery_terminal, live_server, tmp_path):
    base, db_url = live_server, delivery_terminal.db_url
    setup = give_route(base, db_url)
    code, id_number, name, *_ = next(p for p in setup["people"] if len(p[1]) == 12)
    payload = f"{id_number}||{name}|01011940|Nữ|Thôn 3, Lộc Thủy, Phú Lộc|15082021"
    video = cccd_video(tmp_path / "cccd.y4m", payload)
    # A second Chromium of the run's Playwright, its fake camera filming the card.
    camera_browser = browser.browser_type.launch(
        executable_path=str(CHROMIUM),
        args=[
            *ARGS,
            "--use-fake-device-for-media-stream",
            "--use-fake-ui-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    try:
        context = camera_browser.new_context(
            viewport={"width": 800, "height": 1280}, has_touch=True, is_mobile=True, locale="vi-VN"
        )
        context.set_default_timeout(15000)
        context.grant_permissions(["camera"], origin=base)
        page = context.new_page()
        pair(page, base, setup["token"])
        open_person(page, code)
        page.get_by_test_id("start-verify").click()
        # Chromium on Linux has no BarcodeDetector: the frames go to jsQR.
        assert page.evaluate("() => 'BarcodeDetector' in window") is False
        page.get_by_test_id("scan-start").click()
        page.get_by_test_id("pay-screen").wait_for(timeout=20000)
        assert "mã QR trên CCCD" in page.get_by_test_id("pay-screen").inner_text()
        # What the app queues says how the collector was verified.
        sign(page)
        page.get_by_test_id("pay-confirm").click()
        page.get_by_test_id("receipt-screen").wait_for()
        local = stores(page, "queue", "history")
        verified_by = [item["body"]["verified_by"] for rows in local.values() for item in rows]
        assert verified_by == ["id_qr"]
    finally:
        camera_browser.close()


def test_the_hash_fallback_matches_the_server(tablet, live_server):
    """The pure-JS SHA-256 (tablets on plain HTTP have no crypto.subtle) agrees with Python's."""
    import hashlib

    page = tablet
    page.goto(live_server + "/tablet/")
    page.wait_for_function("() => document.body.dataset.ready === '1'")
    samples = [
        "",
        "abc",
        "a" * 55,
        "a" * 56,
        "a" * 64,
        "0f3c9e1d2b4a59687766554433221100046153060816",
        "Nguyễn Thị Lựu" * 9,
    ]
    got = page.evaluate(
        """async (samples) => {
            const m = await import("/static/tablet/sha256.js");
            return samples.map((s) => m.sha256HexSync(new TextEncoder().encode(s)));
        }""",
        samples,
    )
    assert got == [hashlib.sha256(s.encode()).hexdigest() for s in samples]
