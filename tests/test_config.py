"""Settings are checked at start-up; a database set up to lose commits is refused (S06)."""

from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from terminal import create_app
from terminal.config import ConfigError
from terminal.db import get_engine
from terminal.schema import upgrade
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


def test_new_sqlite_database_and_its_wal_files_are_private(settings, tmp_path):
    """The database holds ID numbers: its file, -wal and -shm are the owner's alone (0600)."""
    path = tmp_path / "fresh" / "terminal.db"
    path.parent.mkdir()
    old_umask = os.umask(0o022)  # the usual umask, which would make files world-readable
    try:
        app = create_app({**settings, "DATABASE_URL": f"sqlite:///{path}"})
        engine = get_engine(app)
        upgrade(engine)
        # The -wal and -shm files live while a connection is open: stat them then.
        with engine.connect() as conn:
            conn.execute(text("SELECT count(*) FROM users")).scalar()
            modes = {
                name: stat.S_IMODE(os.stat(f"{path}{name}").st_mode)
                for name in ("", "-wal", "-shm")
            }
        engine.dispose()
    finally:
        os.umask(old_umask)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


@pytest.mark.parametrize(
    "value",
    [
        "memcached://127.0.0.1:11211",
        "redis://",
        "redis://127.0.0.1:notaport/0",
        "memory://elsewhere",
        "http://127.0.0.1:6379",
        "redis+unix://",
        42,
    ],
)
def test_bad_ratelimit_storage_is_refused(settings, value):
    with pytest.raises(ConfigError, match="TERMINAL_RATELIMIT_STORAGE_URL"):
        create_app({**settings, "RATELIMIT_STORAGE_URL": value})


def test_ratelimit_storage_from_the_environment(settings, monkeypatch):
    from limits.storage import MemoryStorage, RedisStorage

    from terminal.extensions import limiter

    app = create_app(settings)
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"
    assert isinstance(limiter.storage, MemoryStorage)
    get_engine(app).dispose()
    monkeypatch.setenv("TERMINAL_RATELIMIT_STORAGE_URL", "redis://127.0.0.1:6379/0")
    app = create_app(settings)
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    # Redis is not asked at start-up: only when a limited route is hit.
    assert isinstance(limiter.storage, RedisStorage)
    get_engine(app).dispose()
