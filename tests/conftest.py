"""Fixtures: a migrated database per test (SQLite file, or PostgreSQL schema), the app,
clients, and helpers to sign in and submit real forms with their CSRF token."""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from terminal import create_app
from terminal.db import get_engine, make_engine, new_session
from terminal.schema import upgrade
from terminal.security import use_fast_hashing
from tests import factories

use_fast_hashing()

PG_URL = os.environ.get("TERMINAL_TEST_DATABASE_URL", "").strip()
SECRET = "test-secret-key-" + "x" * 32


def pytest_report_header() -> str:
    """Say which database the suite runs on."""
    return f"database: {'PostgreSQL ' + _hide(PG_URL) if PG_URL else 'SQLite'}"


def _hide(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _schema_url(base: str, schema: str) -> str:
    """Return a PostgreSQL URL whose connections use only the given schema."""
    url = make_url(base).set(drivername="postgresql+psycopg")
    return url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Migrate one database for the whole run: a SQLite file to copy, or a PG schema."""
    if PG_URL:
        schema = f"t_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        admin = create_engine(make_url(PG_URL).set(drivername="postgresql+psycopg"))
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        url = _schema_url(PG_URL, schema)
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()
        yield url
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
    else:
        path = tmp_path_factory.mktemp("template") / "template.db"
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        engine.dispose()
        yield str(path)


_TABLES: list[str] = []


@pytest.fixture
def db_url(database_template: str, tmp_path: Path) -> str:
    """Return the URL of an empty, migrated database for one test."""
    if not PG_URL:
        target = tmp_path / "terminal.db"
        shutil.copyfile(database_template, target)
        return f"sqlite:///{target}"
    engine = create_engine(database_template)
    with engine.begin() as conn:
        if not _TABLES:
            _TABLES.extend(
                conn.execute(
                    text(
                        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                        "AND tablename <> 'alembic_version'"
                    )
                ).scalars()
            )
        # A connection some test left open would make TRUNCATE wait for ever: fail fast.
        conn.execute(text("SET LOCAL lock_timeout = '20s'"))
        conn.execute(text(f"TRUNCATE {', '.join(_TABLES)} RESTART IDENTITY CASCADE"))
        conn.execute(
            text("INSERT INTO audit_head (id, last_seq, last_hash) VALUES (1, 0, :h)"),
            {"h": "0" * 64},
        )
    engine.dispose()
    return database_template


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> dict[str, Any]:
    """Return the settings of a test app."""
    return {
        "DATABASE_URL": db_url,
        "SECRET_KEY": SECRET,
        "RECEIPTS_DIR": str(tmp_path / "receipts"),
        "TESTING": True,
    }


@pytest.fixture
def app(settings: dict[str, Any]) -> Iterator[Any]:
    """Return a terminal app on a fresh database."""
    application = create_app(settings)
    yield application
    get_engine(application).dispose()


@pytest.fixture
def session(app: Any) -> Iterator[Any]:
    """Return a database session outside any request.

    No app context stays pushed: requests made meanwhile must get their own ``g``.
    """
    s = new_session(app)
    yield s
    s.close()


@pytest.fixture
def client(app: Any) -> Any:
    """Return a test client (a browser without JavaScript)."""
    return app.test_client()


@pytest.fixture
def world(app: Any, session: Any) -> factories.World:
    """Return two payout points in two districts, and one user per role at point A."""
    return factories.make_world(session)


CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csrf_from(html: str) -> str:
    """Return the CSRF token of the first form of a page."""
    match = CSRF_RE.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def submit(
    client: Any, url: str, data: dict[str, Any], *, form_page: str | None = None, **kw: Any
) -> Any:
    """Open the page holding the form, then post the form with its CSRF token."""
    page = client.get(form_page or url)
    token = csrf_from(page.get_data(as_text=True))
    return client.post(url, data={"csrf_token": token, **data}, **kw)


def login(client: Any, username: str, password: str = factories.PASSWORD) -> Any:
    """Sign in through the real login form."""
    return submit(client, "/login", {"username": username, "password": password})


@pytest.fixture
def as_role(app: Any, world: factories.World) -> Any:
    """Return a function giving a client signed in as a role of the world."""

    def sign_in(role: str) -> Any:
        c = app.test_client()
        response = login(c, world.users[role].username)
        assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return c

    return sign_in


def api_token(client: Any, username: str, password: str = factories.PASSWORD) -> str:
    """Return a bearer token for a user."""
    response = client.post("/api/v1/tokens", json={"username": username, "password": password})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["token"]


def bearer(token: str) -> dict[str, str]:
    """Return the Authorization header for a token."""
    return {"Authorization": f"Bearer {token}"}
