"""Signing in and out through the real forms, sessions that the server can revoke."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from terminal.models import LoginAttempt, LoginSession
from tests.conftest import csrf_from, login, submit
from tests.factories import PASSWORD


def shift(session, model, column, **delta):
    """Move a timestamp of every row into the past, as if time had passed."""
    for row in session.scalars(select(model)):
        setattr(row, column, getattr(row, column) - timedelta(**delta))
    session.commit()


def test_login_page_is_vietnamese_by_default(client):
    page = client.get("/login")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert 'lang="vi"' in html
    assert "Đăng nhập" in html
    assert "remember" not in html.lower()


def test_anonymous_is_sent_to_login_with_next(client, world):
    response = client.get("/admin/users")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/admin/users")


def test_login_reaches_home_and_shows_only_own_tasks(client, world):
    response = login(client, "clerk1")
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    home = client.get("/").get_data(as_text=True)
    assert world.users["clerk"].full_name in home
    assert 'data-testid="tile-users"' not in home

    admin = client.application.test_client()
    login(admin, "admin1")
    home = admin.get("/").get_data(as_text=True)
    assert 'data-testid="tile-users"' in home
    assert 'data-testid="tile-points"' in home


def test_wrong_password_and_unknown_user_look_the_same(client, world):
    wrong = login(client, "clerk1", "not-the-password")
    unknown = login(client, "nobody-here", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    text_wrong = wrong.get_data(as_text=True)
    text_unknown = unknown.get_data(as_text=True)
    assert "Sai tên đăng nhập hoặc mật khẩu" in text_wrong
    assert "Sai tên đăng nhập hoặc mật khẩu" in text_unknown


def test_login_follows_only_local_next(client, world):
    page = client.get("/login?next=//evil.example/x")
    token = csrf_from(page.get_data(as_text=True))
    response = client.post(
        "/login",
        data={
            "csrf_token": token,
            "username": "admin1",
            "password": PASSWORD,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["Location"] == "/"
    other = client.application.test_client()
    response = submit(
        other, "/login", {"username": "admin1", "password": PASSWORD, "next": "/admin/points"}
    )
    assert response.headers["Location"] == "/admin/points"


def test_lockout_after_five_failures_even_with_right_password(client, world, session):
    for _ in range(5):
        assert login(client, "clerk1", "wrong-password-1").status_code == 401
    locked = login(client, "clerk1", PASSWORD)
    assert locked.status_code == 401
    assert "15 phút" in locked.get_data(as_text=True)
    outcomes = session.scalars(
        select(LoginAttempt.outcome)
        .where(LoginAttempt.username == "clerk1")
        .order_by(LoginAttempt.id)
    ).all()
    assert outcomes == ["bad"] * 5 + ["locked"]


def test_lockout_ends_after_the_window(client, world, session):
    for _ in range(5):
        login(client, "clerk1", "wrong-password-1")
    shift(session, LoginAttempt, "at", minutes=16)
    assert login(client, "clerk1", PASSWORD).status_code == 302


def test_new_session_at_login_and_old_cookie_dead_after_logout(app, world):
    client = app.test_client()
    client.get("/login")
    before = client.get_cookie("terminal_session").value
    login(client, "clerk1")
    after = client.get_cookie("terminal_session").value
    assert before != after
    assert client.get("/").status_code == 200

    # Keep a copy of the signed-in cookie, then sign out.
    stolen = after
    home = client.get("/").get_data(as_text=True)
    client.post("/logout", data={"csrf_token": csrf_from(home)})
    assert client.get("/").status_code == 302

    thief = app.test_client()
    thief.set_cookie("terminal_session", stolen)
    assert thief.get("/").status_code == 302


def test_idle_timeout_signs_out(app, world, session):
    client = app.test_client()
    login(client, "clerk1")
    assert client.get("/").status_code == 200
    shift(session, LoginSession, "last_seen_at", minutes=16)
    response = client.get("/")
    assert response.status_code == 302
    assert "ended=idle_timeout" in response.headers["Location"]
    notice = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "15 phút" in notice


def test_absolute_session_limit(app, world, session):
    client = app.test_client()
    login(client, "clerk1")
    shift(session, LoginSession, "created_at", hours=13)
    assert client.get("/").status_code == 302


def test_disabling_a_user_acts_on_the_next_request(app, world, as_role):
    clerk = as_role("clerk")
    admin = as_role("admin")
    assert clerk.get("/").status_code == 200
    user = world.users["clerk"]
    response = submit(
        admin,
        f"/admin/users/{user.id}",
        {"full_name": user.full_name, "role": "clerk", "point": "HTBD", "password": ""},
    )
    assert response.status_code == 302
    assert clerk.get("/").status_code == 302
    assert login(app.test_client(), "clerk1").status_code == 401


def test_role_change_acts_on_the_next_request(app, world, as_role):
    clerk = as_role("clerk")
    admin = as_role("admin")
    assert clerk.get("/admin/users").status_code == 403
    user = world.users["clerk"]
    submit(
        admin,
        f"/admin/users/{user.id}",
        {"full_name": user.full_name, "role": "supervisor", "point": "HTBD", "active": "y"},
    )
    home = clerk.get("/")
    assert home.status_code == 200
    assert "Giám sát" in home.get_data(as_text=True)


def test_forms_refuse_a_missing_or_foreign_csrf_token(app, world):
    client = app.test_client()
    client.get("/login")
    response = client.post("/login", data={"username": "clerk1", "password": PASSWORD})
    assert response.status_code == 400
    other = app.test_client()
    token = csrf_from(other.get("/login").get_data(as_text=True))
    response = client.post(
        "/login", data={"csrf_token": token, "username": "clerk1", "password": PASSWORD}
    )
    assert response.status_code == 400


def test_language_switch(client, world):
    login(client, "clerk1")
    home = client.get("/").get_data(as_text=True)
    assert "Đăng xuất" in home
    client.post("/lang", data={"csrf_token": csrf_from(home), "lang": "en", "next": "/"})
    assert "Sign out" in client.get("/").get_data(as_text=True)


def test_security_headers_and_cookie_flags(client, world):
    page = client.get("/login")
    csp = page.headers["Content-Security-Policy"]
    for part in (
        "default-src 'self'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "object-src 'none'",
    ):
        assert part in csp
    assert "unsafe-inline" not in csp
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    response = login(client, "clerk1")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Expires" not in cookie  # a browser session, never remembered


def test_no_inline_script_on_pages(as_role):
    admin = as_role("admin")
    for url in ("/", "/admin/users", "/admin/points", "/admin/users/new", "/admin/points/new"):
        html = admin.get(url).get_data(as_text=True)
        assert "<script>" not in html
        assert " onclick=" not in html and " onsubmit=" not in html
