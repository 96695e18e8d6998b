"""Settings: defaults, the instance file, then ``TERMINAL_*`` variables, all checked.

API.md fixes the names. Every value is validated here once, at start-up, so a bad
setting stops the terminal with a one-line reason instead of failing at the counter.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import secrets
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from flask import Flask
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError


class ConfigError(Exception):
    """A setting has a value the terminal cannot run with."""


DEFAULTS: dict[str, Any] = {
    "DATABASE_URL": None,  # SQLite file in the instance folder
    "SECRET_KEY": None,  # generated once into the instance folder
    "RECEIPTS_DIR": "receipts",
    "PUBLIC_URL": "http://127.0.0.1:5000",
    # A payout that cannot survive power loss is worse than a slow one: FULL or EXTRA only.
    "SQLITE_SYNCHRONOUS": "FULL",
    "SQLITE_BUSY_TIMEOUT_MS": 15000,
    "API_TOKEN_HOURS": 12,
    "IDLE_TIMEOUT_MINUTES": 15,
    "SESSION_MAX_HOURS": 12,
    "DEFAULT_LOCALE": "vi",
    "MAX_UPLOAD_MB": 20,
    "LOG_LEVEL": "INFO",
    "RATELIMIT_STORAGE_URL": None,  # each worker counts in its own memory
    # Provider withdrawals (docs/PROVIDER-PROTOCOL.md): the wait for each call, the
    # retries with the same client reference, and the wait before an OTP is resent.
    "PROVIDER_TIMEOUT_MS": 10000,
    "PROVIDER_RETRIES": 2,
    "OTP_RESEND_SECONDS": 60,
    # docs/DEPLOYMENT.md: "production" refuses to start without the settings a province
    # deployment needs (check_production); anything else is a development or test run.
    "ENV": "development",
    "ALLOW_SQLITE": False,  # production on SQLite: single-office deployments only
    "PROXY_FIX": 0,  # trusted reverse proxies in front; 0 ignores X-Forwarded-* headers
    # Public keys (PEM files) of secret keys retired by a rotation: receipts signed
    # before it still check as genuine (docs/DEPLOYMENT.md, rotating keys).
    "RETIRED_RECEIPT_KEYS": None,
}

# Flask settings that follow from ours; a shared counter never remembers a login.
FLASK_FIXED: dict[str, Any] = {
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "SESSION_COOKIE_NAME": "terminal_session",
    "REMEMBER_COOKIE_DURATION": 0,
    "WTF_CSRF_TIME_LIMIT": None,  # the CSRF token lives as long as the login session
    "JSON_SORT_KEYS": False,
}

SYNCHRONOUS_LEVELS = ("FULL", "EXTRA")
LOCALES = ("vi", "en")


def load_settings(app: Flask, overrides: dict[str, Any] | None) -> None:
    """Fill app.config from defaults, the instance file, the environment and overrides."""
    app.config.update(DEFAULTS)
    app.config.update(FLASK_FIXED)
    app.config.from_pyfile("terminal.cfg", silent=True)
    # from_prefixed_env reads TERMINAL_FOO into FOO, parsing JSON values where it can.
    app.config.from_prefixed_env("TERMINAL", loads=_loads_keep_text)
    if overrides:
        app.config.update(overrides)
    _check(app)


def _loads_keep_text(value: str) -> Any:
    """Parse an environment value as an integer or boolean when it plainly is one."""
    stripped = value.strip()
    if stripped.lstrip("-").isdigit() and stripped.isascii():
        return int(stripped)
    if stripped.lower() in ("true", "false"):
        return stripped.lower() == "true"
    return value


def _check(app: Flask) -> None:
    """Validate and normalise every setting, raising ConfigError with a one-line reason."""
    cfg = app.config
    instance = Path(app.instance_path)

    url = cfg.get("DATABASE_URL")
    if url in (None, ""):
        instance.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{instance / 'terminal.db'}"
    cfg["DATABASE_URL"] = check_database_url(str(url))

    env = str(cfg.get("ENV") or "development").strip().lower()
    if env not in ENVIRONMENTS:
        raise ConfigError("TERMINAL_ENV must be production or development")
    cfg["ENV"] = env

    key = cfg.get("SECRET_KEY")
    explicit_key = key not in (None, "")
    if not explicit_key:
        # Production never makes one up: every server of a province must sign alike.
        cfg["SECRET_KEY"] = None if env == "production" else _instance_secret(instance)
    elif not isinstance(key, str) or len(key) < 32:
        raise ConfigError("TERMINAL_SECRET_KEY must be at least 32 characters")

    cfg["PUBLIC_URL"] = check_public_url(cfg.get("PUBLIC_URL"))
    cfg["RECEIPTS_DIR"] = str(_check_dir(cfg.get("RECEIPTS_DIR"), app))

    level = str(cfg.get("SQLITE_SYNCHRONOUS", "")).upper()
    if level not in SYNCHRONOUS_LEVELS:
        raise ConfigError(
            "TERMINAL_SQLITE_SYNCHRONOUS must be FULL or EXTRA: lower levels can lose a "
            "committed payout on power loss"
        )
    cfg["SQLITE_SYNCHRONOUS"] = level

    for name, low, high in (
        ("SQLITE_BUSY_TIMEOUT_MS", 100, 600_000),
        ("API_TOKEN_HOURS", 1, 720),
        ("IDLE_TIMEOUT_MINUTES", 1, 240),
        ("SESSION_MAX_HOURS", 1, 24),
        ("MAX_UPLOAD_MB", 1, 500),
        ("PROVIDER_TIMEOUT_MS", 50, 120_000),
        ("PROVIDER_RETRIES", 0, 5),
        ("OTP_RESEND_SECONDS", 0, 3600),
    ):
        cfg[name] = _int_in_range(name, cfg.get(name), low, high)

    # A provider call with its retries must end well before a worker is killed (60 s).
    if cfg["PROVIDER_TIMEOUT_MS"] * (cfg["PROVIDER_RETRIES"] + 1) > 45_000:
        raise ConfigError(
            "TERMINAL_PROVIDER_TIMEOUT_MS x (TERMINAL_PROVIDER_RETRIES + 1) must be at most "
            "45000: a provider call must end before the server gives up on the request"
        )
    if cfg.get("DEFAULT_LOCALE") not in LOCALES:
        raise ConfigError("TERMINAL_DEFAULT_LOCALE must be vi or en")
    if str(cfg.get("LOG_LEVEL", "")).upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("TERMINAL_LOG_LEVEL must be DEBUG, INFO, WARNING or ERROR")
    cfg["LOG_LEVEL"] = str(cfg["LOG_LEVEL"]).upper()

    _set_ratelimit_storage(cfg, cfg.get("RATELIMIT_STORAGE_URL"))

    cfg["MAX_CONTENT_LENGTH"] = cfg["MAX_UPLOAD_MB"] * 1024 * 1024
    # Behind TLS the cookie must never travel in clear.
    cfg["SESSION_COOKIE_SECURE"] = cfg["PUBLIC_URL"].startswith("https://")
    cfg["PERMANENT_SESSION_LIFETIME"] = timedelta(hours=cfg["SESSION_MAX_HOURS"])
    cfg["BABEL_DEFAULT_LOCALE"] = cfg["DEFAULT_LOCALE"]
    cfg["BABEL_DEFAULT_TIMEZONE"] = "Asia/Ho_Chi_Minh"

    cfg["RETIRED_RECEIPT_KEYS"] = _retired_keys(cfg.get("RETIRED_RECEIPT_KEYS"))
    cfg["PROXY_FIX"] = _int_in_range("PROXY_FIX", cfg.get("PROXY_FIX"), 0, 5)
    cfg["ALLOW_SQLITE"] = _flag("ALLOW_SQLITE", cfg.get("ALLOW_SQLITE"))
    if env == "production":
        problems = production_problems(app, explicit_key=explicit_key)
        if problems:
            raise ConfigError("production settings refused: " + "; ".join(problems))


ENVIRONMENTS = ("development", "production")


def production_problems(app: Flask, *, explicit_key: bool) -> list[str]:
    """Return every setting a production terminal must not run with (RELIABILITY S22)."""
    cfg = app.config
    problems = []
    if not explicit_key:
        problems.append(
            "set TERMINAL_SECRET_KEY (32+ characters, the same on every server), not the "
            "generated instance key"
        )
    https = cfg["PUBLIC_URL"].startswith("https://")
    if not https:
        problems.append(
            "TERMINAL_PUBLIC_URL must be an https:// URL (session cookies are Secure only then)"
        )
    if cfg["DATABASE_URL"].startswith("sqlite") and not cfg["ALLOW_SQLITE"]:
        problems.append(
            "TERMINAL_DATABASE_URL must be PostgreSQL (or set TERMINAL_ALLOW_SQLITE=1 for a "
            "single-office terminal)"
        )
    if app.debug or cfg.get("DEBUG"):
        problems.append("debug mode must be off")
    if cfg["RATELIMIT_STORAGE_URL"] == "memory://":
        problems.append(
            "TERMINAL_RATELIMIT_STORAGE_URL must be a shared redis:// store, so that every "
            "worker and server counts together"
        )
    cookie = []
    if https and cfg.get("SESSION_COOKIE_SECURE") is not True:
        cookie.append("Secure")
    if cfg.get("SESSION_COOKIE_HTTPONLY") is not True:
        cookie.append("HttpOnly")
    if str(cfg.get("SESSION_COOKIE_SAMESITE")) not in ("Lax", "Strict"):
        cookie.append("SameSite=Lax or Strict")
    if cookie:
        problems.append("session cookies must be " + ", ".join(cookie))
    return problems


def install_proxy_fix(app: Flask) -> None:
    """Trust TERMINAL_PROXY_FIX reverse proxies for the client address and https.

    Off by default: without a proxy a client could otherwise claim any address in
    X-Forwarded-For (and dodge the per-address login and rate limits).
    """
    hops = app.config["PROXY_FIX"]
    if hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]


def _retired_keys(value: Any) -> tuple[str, ...]:
    """Read the retired receipt public keys: PEM files, separated by commas."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if value in (None, ""):
        return ()
    paths = value if isinstance(value, list | tuple) else str(value).split(",")
    keys = []
    for raw in paths:
        path = Path(str(raw).strip()).expanduser()
        try:
            text = path.read_text(encoding="ascii")
            key = load_pem_public_key(text.encode())
        except (OSError, UnicodeDecodeError, ValueError):
            key, text = None, ""
        if not isinstance(key, Ed25519PublicKey):
            raise ConfigError(
                f"TERMINAL_RETIRED_RECEIPT_KEYS: {path} is not a receipt public key (PEM, "
                "from verify-receipt --print-public-key)"
            )
        keys.append(text)
    return tuple(keys)


def _flag(name: str, value: Any) -> bool:
    """Return a yes/no setting given as 1/0, true/false or a boolean."""
    if value in (None, "", 0, False, "0", "false"):
        return False
    if value in (1, True, "1", "true"):
        return True
    raise ConfigError(f"TERMINAL_{name} must be 1 or 0")


def check_database_url(url: str) -> str:
    """Return the URL if it names a SQLite or PostgreSQL (psycopg 3) database."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"TERMINAL_DATABASE_URL is not a database URL: {_redact(url)}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ConfigError("TERMINAL_DATABASE_URL: use sqlite:///path for SQLite")
        if parsed.database in (None, "", ":memory:"):
            raise ConfigError("TERMINAL_DATABASE_URL: SQLite needs a file path, not memory")
        return url
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ConfigError("TERMINAL_DATABASE_URL: use postgresql+psycopg://... for PostgreSQL")
        rebuilt = parsed.set(drivername="postgresql+psycopg")
        return rebuilt.render_as_string(hide_password=False)
    raise ConfigError("TERMINAL_DATABASE_URL must be a sqlite:/// or postgresql+psycopg:// URL")


def check_public_url(value: Any) -> str:
    """Return the public base URL without a trailing slash, if it is an http(s) URL."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("TERMINAL_PUBLIC_URL must be an http:// or https:// URL")
    text = value.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError("TERMINAL_PUBLIC_URL must be an http:// or https:// URL with a host")
    return text


RATELIMIT_SCHEMES = ("memory", "redis", "rediss", "redis+unix")


def check_ratelimit_storage_url(value: Any) -> str:
    """Return the rate-limit store: ``memory://`` or a Redis URL (never echoed: a password)."""
    if value in (None, ""):
        return "memory://"
    reason = "TERMINAL_RATELIMIT_STORAGE_URL must be memory:// or redis://host:port/db"
    if not isinstance(value, str):
        raise ConfigError(reason)
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError:
        raise ConfigError(reason) from None
    if parts.scheme not in RATELIMIT_SCHEMES:
        raise ConfigError(reason)
    if parts.scheme == "memory":
        if text != "memory://":
            raise ConfigError(reason)
        return text
    if parts.scheme == "redis+unix" and not parts.path:
        raise ConfigError(reason)
    if parts.scheme != "redis+unix" and not parts.hostname:
        raise ConfigError(reason)
    if importlib.util.find_spec("redis") is None:
        raise ConfigError("TERMINAL_RATELIMIT_STORAGE_URL: the redis package is not installed")
    return text


def _set_ratelimit_storage(cfg: Any, value: Any) -> None:
    """Point Flask-Limiter at the checked store."""
    url = check_ratelimit_storage_url(value)
    cfg["RATELIMIT_STORAGE_URL"] = url
    cfg["RATELIMIT_STORAGE_URI"] = url
    if url != "memory://":
        # A Redis that is down or unreachable must not stop receipts being checked:
        # fail fast, count in memory meanwhile, and go back to Redis when it answers.
        cfg["RATELIMIT_STORAGE_OPTIONS"] = {"socket_connect_timeout": 1, "socket_timeout": 1}
        cfg["RATELIMIT_IN_MEMORY_FALLBACK_ENABLED"] = True


def _check_dir(value: Any, app: Flask) -> Path:
    """Return an absolute folder path that exists or can be made."""
    if not isinstance(value, str) or not value.strip():
        raise ConfigError("TERMINAL_RECEIPTS_DIR must be a folder path")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path.cwd() / path
    if path.exists() and not path.is_dir():
        raise ConfigError(f"TERMINAL_RECEIPTS_DIR is not a folder: {path}")
    return path


def _int_in_range(name: str, value: Any, low: int, high: int) -> int:
    """Return value as an int within [low, high] or raise ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ConfigError(f"TERMINAL_{name} must be a whole number from {low} to {high}")
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"TERMINAL_{name} must be a whole number from {low} to {high}") from None
    if not low <= number <= high:
        raise ConfigError(f"TERMINAL_{name} must be a whole number from {low} to {high}")
    return number


def _instance_secret(instance: Path) -> str:
    """Read the instance secret key, creating it (mode 0600) the first time."""
    instance.mkdir(parents=True, exist_ok=True)
    path = instance / "secret_key"
    if not path.exists():
        # Write aside, then link into place: two workers starting together agree on one
        # key, and nobody ever reads a half-written file.
        fd, tmp = tempfile.mkstemp(dir=instance, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_urlsafe(48))
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_text().strip()
    if len(key) < 32:
        raise ConfigError(f"the secret key file {path} is damaged; delete it")
    return key


def _redact(url: str) -> str:
    """Hide a password inside a URL for an error message."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable>"
