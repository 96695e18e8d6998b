"""Browser tests: Playwright driving Debian's Chromium against a real served terminal.

Without /usr/bin/chromium (``apt-get install -y chromium``) they skip with that reason.
Screenshots go to tests/screenshots/ (ignored by git) for people to look at.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import SECRET
from tests.servers import SCRIPT, free_port, served

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent.parent / "screenshots"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's Chromium is not installed (apt-get install -y chromium); browser tests skipped",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture
def server_port():
    """Return the port the served terminal will listen on."""
    return free_port()


@pytest.fixture
def server_env(db_url, tmp_path, server_port):
    """Return the environment of a served terminal on the test database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
        # Receipt QR codes point at this very server, so a test can follow them.
        TERMINAL_PUBLIC_URL=f"http://127.0.0.1:{server_port}",
    )
    return env


@pytest.fixture
def live_server(server_env, server_port):
    """Seed the demo data and serve the terminal with gunicorn; yield its base URL."""
    seeded = subprocess.run(
        [str(SCRIPT), "seed-demo", "--scale", "0.01"],
        env=server_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert seeded.returncode == 0, seeded.stderr
    with served(server_env, port=server_port, workers=2) as server:
        yield server.base


@pytest.fixture(scope="session")
def browser():
    """Launch Debian's Chromium once for the run."""
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield instance
        instance.close()


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


def shoot(page, name: str) -> Path:
    """Save a full-page screenshot under tests/screenshots/."""
    SHOTS.mkdir(exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
