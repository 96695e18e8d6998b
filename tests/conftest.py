"""Fixtures: a migrated database per test (SQLite file, or PostgreSQL schema), the app,
clients, and helpers to sign in and submit real forms with their CSRF token."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from terminal import create_app
from terminal.db import get_engine, make_engine, new_session
from terminal.security import use_fast_hashing
from tests import factories
from tests.databases import PostgresDatabase, SQLiteDatabase, TestDatabase, fast_folder

use_fast_hashing()

PG_URL = os.environ.get("TERMINAL_TEST_DATABASE_URL", "").strip()
SECRET = "test-secret-key-" + "x" * 32


def pytest_report_header() -> str:
    """Say which database the suite runs on."""
    return f"database: {'PostgreSQL ' + _hide(PG_URL) if PG_URL else 'SQLite'}"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Start the long modules (marked slow or browser) first, the rest in file order.

    With ``--dist loadscope --no-loadscope-reorder`` each module goes whole to the next
    free xdist worker in this order, so a one-test module of a minute (the 100,000-row
    import) no longer starts last and keeps the run waiting for it alone.
    """

    def module(item: pytest.Item) -> str:
        return item.nodeid.split("::", 1)[0]

    heavy = {
        module(item)
        for item in items
        if item.get_closest_marker("slow") or item.get_closest_marker("browser")
    }
    items.sort(key=lambda item: module(item) not in heavy)


def _hide(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestDatabase]:
    """Migrate one database for the run (per xdist worker) and keep its saved states."""
    database: TestDatabase
    if PG_URL:
        database = PostgresDatabase(PG_URL)
    else:
        database = SQLiteDatabase(fast_folder(lambda: tmp_path_factory.mktemp("databases")))
    yield database
    database.close()


def _save_world(database: TestDatabase) -> None:
    """Build the standard world once, through the services, and save it."""
    url = database.fresh("empty")
    engine = make_engine(url)
    with Session(engine, expire_on_commit=False) as session:
        factories.make_world(session)
    engine.dispose()
    database.save("world", url)


@pytest.fixture
def db_url(database_template: TestDatabase, request: pytest.FixtureRequest) -> Iterator[str]:
    """Return the URL of a migrated database for one test: empty, or holding the world.

    A test that uses ``world`` gets it already built: a copy of a saved database, not
    rows inserted again.
    """
    state = "world" if "world" in request.fixturenames else "empty"
    if state == "world" and not database_template.has("world"):
        _save_world(database_template)
    yield database_template.fresh(state)
    database_template.discard()


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
    # db_url copied the world in; a test that asked for it late gets it built now.
    return factories.load_world(session) or factories.make_world(session)


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


CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Launch Debian's Chromium once per run (per xdist worker), for every browser test.

    One Playwright per process: a second ``sync_playwright()`` while the first is open
    fails ("Sync API inside the asyncio loop"), so every browser test shares this one.
    """
    if not CHROMIUM.exists():
        pytest.skip("Debian's Chromium is not installed (apt-get install -y chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield instance
        instance.close()
