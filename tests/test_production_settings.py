"""Production refuses to start without the settings a province needs (RELIABILITY S22).

``TERMINAL_ENV=production`` turns every gap into one line listing all the problems at
once; a good production configuration starts. ``TERMINAL_PROXY_FIX`` trusts a reverse
proxy's X-Forwarded-For and X-Forwarded-Proto only when set.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask import jsonify, request

from terminal import create_app
from terminal.authz import public
from terminal.config import ConfigError
from terminal.db import get_engine

KEY = "a-province-wide-secret-key-" + "z" * 20
REDIS = "redis://127.0.0.1:6379/0"


@pytest.fixture
def production(db_url: str, tmp_path: Any) -> dict[str, Any]:
    """Return a production configuration that starts, on the suite's database."""
    config = {
        "ENV": "production",
        "SECRET_KEY": KEY,
        "PUBLIC_URL": "https://chi-tra.example.vn",
        "DATABASE_URL": db_url,
        "RATELIMIT_STORAGE_URL": REDIS,
        "RECEIPTS_DIR": str(tmp_path / "receipts"),
    }
    if db_url.startswith("sqlite"):
        config["ALLOW_SQLITE"] = 1
    return config


def _refusal(config: dict[str, Any]) -> str:
    """Return the one-line reason a configuration is refused."""
    with pytest.raises(ConfigError) as refused:
        create_app(config)
    message = str(refused.value)
    assert "\n" not in message
    return message


def test_a_good_production_configuration_starts(production):
    app = create_app(production)
    try:
        assert app.config["ENV"] == "production"
        assert app.config["SESSION_COOKIE_SECURE"] is True
        assert app.debug is False
        answer = app.test_client().get("/healthz")
        assert answer.status_code == 200
        assert answer.headers["Strict-Transport-Security"]
    finally:
        get_engine(app).dispose()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"SECRET_KEY": None}, "set TERMINAL_SECRET_KEY"),
        ({"PUBLIC_URL": "http://chi-tra.example.vn"}, "TERMINAL_PUBLIC_URL must be an https://"),
        ({"RATELIMIT_STORAGE_URL": None}, "TERMINAL_RATELIMIT_STORAGE_URL must be a shared"),
        ({"DEBUG": True}, "debug mode must be off"),
        ({"SESSION_COOKIE_HTTPONLY": False}, "session cookies must be HttpOnly"),
        ({"SESSION_COOKIE_SAMESITE": None}, "session cookies must be SameSite=Lax or Strict"),
    ],
)
def test_each_missing_setting_is_refused(production, change, reason):
    message = _refusal({**production, **change})
    assert message.startswith("production settings refused: ")
    assert reason in message
    assert message.count(";") == 0  # only this one problem


def test_sqlite_needs_the_single_office_switch(production, tmp_path):
    config = {**production, "DATABASE_URL": f"sqlite:///{tmp_path / 'office.db'}"}
    config.pop("ALLOW_SQLITE", None)
    assert "TERMINAL_DATABASE_URL must be PostgreSQL" in _refusal(config)
    app = create_app({**config, "ALLOW_SQLITE": 1})
    get_engine(app).dispose()


def test_every_problem_is_listed_at_once_and_no_key_is_made_up(tmp_path, monkeypatch):
    monkeypatch.setenv("TERMINAL_ENV", "production")
    app_instance = tmp_path / "instance"
    config = {"DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}", "DEBUG": True}
    monkeypatch.setattr("flask.Flask.auto_find_instance_path", lambda self: str(app_instance))
    message = _refusal(config)
    for reason in (
        "TERMINAL_SECRET_KEY",
        "https://",
        "must be PostgreSQL",
        "debug mode",
        "TERMINAL_RATELIMIT_STORAGE_URL",
        "session cookies",
    ):
        assert reason in message, message
    assert not (app_instance / "secret_key").exists()


def test_an_unknown_environment_is_refused(production):
    assert "TERMINAL_ENV must be production or development" in _refusal(
        {**production, "ENV": "prod"}
    )
    assert "TERMINAL_PROXY_FIX" in _refusal({**production, "PROXY_FIX": 9})
    assert "is not a receipt public key" in _refusal(
        {**production, "RETIRED_RECEIPT_KEYS": __file__}
    )


def _whoami(config: dict[str, Any]) -> dict[str, Any]:
    """Return the client address and scheme the app sees behind a forwarding proxy."""
    app = create_app(config)
    try:
        app.add_url_rule(
            "/whoami",
            "whoami",
            public(lambda: jsonify(addr=request.remote_addr, scheme=request.scheme)),
        )
        answer = app.test_client().get(
            "/whoami",
            headers={"X-Forwarded-For": "1.2.3.4, 203.0.113.9", "X-Forwarded-Proto": "https"},
            environ_base={"REMOTE_ADDR": "10.0.0.2"},
        )
        return answer.get_json()
    finally:
        get_engine(app).dispose()


def test_proxy_headers_are_honoured_only_when_set(settings, production):
    # By default the forwarded headers are the client's own claims: ignored.
    assert _whoami(settings) == {"addr": "10.0.0.2", "scheme": "http"}
    # One trusted proxy: its view of the client (the last address), not the spoofed one.
    behind = _whoami({**production, "PROXY_FIX": 1})
    assert behind == {"addr": "203.0.113.9", "scheme": "https"}
    assert _whoami({**settings, "PROXY_FIX": 2})["addr"] == "1.2.3.4"
