"""Browser tests: Playwright driving Debian's Chromium against a real served terminal.

Without /usr/bin/chromium (``apt-get install -y chromium``) they skip with that reason.
Screenshots go to tests/screenshots/ (ignored by git) for people to look at.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CHROMIUM_ARGS, SECRET
from tests.databases import TestDatabase
from tests.servers import SCRIPT, free_port, served

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
ARGS = CHROMIUM_ARGS

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's Chromium is not installed (apt-get install -y chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@dataclass
class ServedTerminal:
    """One terminal served for a whole test module, reset to its saved data before each test.

    Starting gunicorn and seeding the demo data cost seconds; restoring the rows costs
    milliseconds. ``save`` keeps the data as it is now (after a module's own set-up) as
    the state every later test starts from.
    """

    base: str
    env: dict[str, str]
    db_url: str
    database: TestDatabase
    receipts: Path
    state: str = "served"

    def save(self) -> None:
        """Start every later test of the module from the data as it is now."""
        self.database.save(self.state, self.db_url)

    def reset(self) -> None:
        """Put the saved data back and forget the receipt files written since."""
        self.database.restore(self.state, self.db_url)
        shutil.rmtree(self.receipts, ignore_errors=True)


@pytest.fixture(scope="module")
def server_port():
    """Return the port the module's served terminal listens on."""
    return free_port()


@pytest.fixture(scope="module")
def served_terminal(database_template, tmp_path_factory, server_port, request):
    """Seed the demo data and serve the terminal with gunicorn for the module.

    A module may add settings for its server in ``SERVER_ENV``.
    """
    folder = tmp_path_factory.mktemp("served")
    db_url = database_template.fresh("empty", "served")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(folder / "receipts"),
        # Receipt QR codes point at this very server, so a test can follow them.
        TERMINAL_PUBLIC_URL=f"http://127.0.0.1:{server_port}",
    )
    env.update(getattr(request.module, "SERVER_ENV", {}))
    seeded = subprocess.run(
        [str(SCRIPT), "seed-demo", "--scale", "0.01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    with served(env, port=server_port, workers=2) as server:
        terminal = ServedTerminal(server.base, env, db_url, database_template, folder / "receipts")
        terminal.save()
        yield terminal
    database_template.discard("served")


@pytest.fixture(scope="module")
def server_env(served_terminal):
    """Return the environment of the served terminal (for its command line)."""
    return served_terminal.env


@pytest.fixture
def db_url(served_terminal):
    """Return the served terminal's database, reset to the module's saved data."""
    served_terminal.reset()
    return served_terminal.db_url


@pytest.fixture
def live_server(served_terminal, db_url):
    """Return the base URL of the served terminal, its data as the module saved it."""
    return served_terminal.base


@pytest.fixture(scope="session")
def browser(chromium):
    """Return Debian's Chromium, launched once for the run (tests/conftest.py)."""
    return chromium


@pytest.fixture
def page(browser):
    """Open a fresh browser context (no cookies) sized like a counter screen."""
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="vi-VN")
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


@pytest.fixture
def tablet(browser):
    """Open a fresh context sized like a tablet held upright, with touch."""
    context = browser.new_context(
        viewport={"width": 800, "height": 1280}, has_touch=True, is_mobile=True, locale="vi-VN"
    )
    context.set_default_timeout(15000)
    tab = context.new_page()
    yield tab
    context.close()


def sign_in(page, base: str, username: str) -> None:
    """Sign in with a demo login by keyboard alone (password: <username>-demo-2021)."""
    page.goto(base + "/login")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(f"{username}-demo-2021")
    page.keyboard.press("Enter")
    page.wait_for_url(base + "/")


def shoot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/screenshots/."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
