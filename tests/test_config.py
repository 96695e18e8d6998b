"""Settings are checked at start-up; a database set up to lose commits is refused (S06)."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from terminal import create_app
from terminal.config import ConfigError
from tests.conftest import PG_URL


def test_defaults_and_derived_settings(settings):
    app = create_app(settings)
    assert app.config["PUBLIC_URL"] == "http://127.0.0.1:5000"
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True
    assert app.config["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert app.config["SESSION_COOKIE_SECURE"] is False
    assert app.config["DEBUG"] is False


def test_https_public_url_makes_cookies_secure(settings):
    app = create_app({**settings, "PUBLIC_URL": "https://chi-tra.example.vn/"})
    assert app.config["PUBLIC_URL"] == "https://chi-tra.example.vn"
    assert app.config["SESSION_COOKIE_SECURE"] is True
    response = app.test_client().get("/login")
    assert "Strict-Transport-Security" in response.headers


def test_environment_variables_are_read(settings, monkeypatch):
    monkeypatch.setenv("TERMINAL_PUBLIC_URL", "https://from-env.example.vn")
    monkeypatch.setenv("TERMINAL_API_TOKEN_HOURS", "8")
    app = create_app({k: v for k, v in settings.items() if k != "PUBLIC_URL"})
    assert app.config["PUBLIC_URL"] == "https://from-env.example.vn"
    assert app.config["API_TOKEN_HOURS"] == 8


@pytest.mark.parametrize("level", ["NORMAL", "OFF", "0", "1"])
def test_sqlite_below_full_is_refused(settings, level):
    with pytest.raises(ConfigError, match="FULL"):
        create_app({**settings, "SQLITE_SYNCHRONOUS": level})


@pytest.mark.skipif(not PG_URL, reason="needs TERMINAL_TEST_DATABASE_URL (PostgreSQL)")
def test_postgresql_synchronous_commit_off_is_refused(settings):
    url = make_url(settings["DATABASE_URL"])
    options = url.query.get("options", "")
    lossy = url.update_query_dict({"options": f"{options} -csynchronous_commit=off".strip()})
    with pytest.raises(ConfigError, match="synchronous_commit is off"):
        create_app({**settings, "DATABASE_URL": lossy.render_as_string(hide_password=False)})
