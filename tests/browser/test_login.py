"""The login flow in a real browser, by keyboard, with screenshots."""

from __future__ import annotations

import pytest

from tests.browser.conftest import shoot

pytestmark = pytest.mark.browser


def test_login_by_keyboard_reaches_the_home_page(page, live_server):
    page.goto(live_server + "/login")
    assert page.locator("html").get_attribute("lang") == "vi"
    # The username field has focus on arrival: a clerk just types.
    assert page.evaluate("document.activeElement.name") == "username"
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type("admin-demo-2021")
    shoot(page, "login")
    page.keyboard.press("Enter")
    page.wait_for_url(live_server + "/")
    assert page.get_by_test_id("tile-users").is_visible()
    assert page.get_by_test_id("tile-points").is_visible()
    shoot(page, "home-admin")


def test_wrong_password_shows_a_vietnamese_error(page, live_server):
    page.goto(live_server + "/login")
    page.fill("#username", "clerk")
    page.fill("#password", "wrong-password")
    page.press("#password", "Enter")
    error = page.get_by_test_id("login-error")
    error.wait_for()
    assert "Sai tên đăng nhập hoặc mật khẩu" in error.inner_text()
    shoot(page, "login-error")


def test_logout_then_back_button_shows_nothing(page, live_server):
    page.goto(live_server + "/login")
    page.fill("#username", "clerk")
    page.fill("#password", "clerk-demo-2021")
    page.press("#password", "Enter")
    page.wait_for_url(live_server + "/")
    page.get_by_test_id("logout").click()
    page.wait_for_url(live_server + "/login")
    page.goto(live_server + "/")
    assert page.url.startswith(live_server + "/login")


def test_admin_creates_a_user_and_it_can_sign_in(page, live_server):
    page.goto(live_server + "/login")
    page.fill("#username", "admin")
    page.fill("#password", "admin-demo-2021")
    page.press("#password", "Enter")
    page.wait_for_url(live_server + "/")
    page.get_by_test_id("tile-users").click()
    shoot(page, "admin-users")
    page.get_by_test_id("new-user").click()
    page.fill("#username", "thu.tran")
    page.fill("#full_name", "Trần Thị Thu")
    page.select_option("#role", "clerk")
    page.select_option("#point", "HTBD")
    page.fill("#password", "mat-khau-rat-dai")
    shoot(page, "admin-user-form")
    page.get_by_test_id("user-save").click()
    page.get_by_test_id("flash-success").wait_for()
    assert "thu.tran" in page.get_by_test_id("users-table").inner_text()
    page.get_by_test_id("logout").click()
    page.fill("#username", "thu.tran")
    page.fill("#password", "mat-khau-rat-dai")
    page.press("#password", "Enter")
    page.wait_for_url(live_server + "/")
    assert "Trần Thị Thu" in page.get_by_test_id("who").inner_text()


def test_points_page_on_a_tablet(tablet, live_server):
    tablet.goto(live_server + "/login")
    tablet.fill("#username", "admin")
    tablet.fill("#password", "admin-demo-2021")
    tablet.get_by_test_id("login-submit").tap()
    tablet.wait_for_url(live_server + "/")
    tablet.goto(live_server + "/admin/points")
    assert "HTBD" in tablet.get_by_test_id("points-table").inner_text()
    box = tablet.get_by_test_id("new-point").bounding_box()
    assert box["height"] >= 44  # a finger-sized target
    shoot(tablet, "admin-points-tablet")
