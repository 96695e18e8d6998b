"""The served terminal: what gunicorn writes to its access log (RELIABILITY S13, S23)."""

from __future__ import annotations

import io
import logging
import os
import time
import urllib.error
import urllib.request
from datetime import timedelta

from gunicorn.config import Config
from gunicorn.glogging import Logger

from terminal import create_app
from terminal.db import get_engine
from terminal.server import AccessLogger, gunicorn_options
from tests.conftest import SECRET
from tests.servers import free_port, served

ID_NUMBER = "046153060816"
FORGED = "login ok: user=admin channel=page"
# A path that, decoded, holds a line break, a forged log line and a CCCD number.
HOSTILE_PATH = "/x%0D%0A" + FORGED.replace(" ", "%20") + "%0A/" + ID_NUMBER


def _request(url: str) -> int:
    """Open a URL and return its status, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_access_log_keeps_hostile_paths_on_one_line_without_numbers(db_url, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
    )
    with served(env, port=free_port(), workers=1) as server:
        assert _request(server.base + HOSTILE_PATH) == 404
        deadline = time.monotonic() + 10
        # gunicorn writes the access line after the response: wait for it.
        while "login ok" not in server.log() and time.monotonic() < deadline:
            time.sleep(0.1)
        log = server.log()
    access = [line for line in log.splitlines() if "login ok" in line]
    assert len(access) == 1, log[-3000:]
    # One line, the breaks shown escaped, the forged text not at the start of any line.
    assert '"GET /x\\x0d\\x0alogin ok: user=admin channel=page\\x0a/[redacted-number]"' in (
        access[0]
    )
    assert not any(line.startswith(FORGED) for line in log.splitlines())
    assert ID_NUMBER not in log


def test_served_with_the_redacting_access_logger():
    options = gunicorn_options(host="127.0.0.1", port=5000, workers=2)
    assert options["logger_class"] is AccessLogger
    assert "%(q)s" not in options["access_log_format"]  # query strings carry searched IDs


class _Response:
    """What gunicorn's logger reads of a response."""

    status = "404 NOT FOUND"
    sent = 10
    headers: list[tuple[str, str]] = []


class _Request:
    """What gunicorn's logger reads of a request."""

    headers: list[tuple[str, str]] = []


def test_gunicorn_started_by_hand_still_redacts(settings):
    """With gunicorn's own logger class, the app's filter still cleans the access log."""
    app = create_app(settings)
    config = Config()
    config.set("accesslog", "-")
    config.set("access_log_format", '"%(U)s" %(s)s')
    logger = Logger(config)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger.access_log.addHandler(handler)
    environ = {
        "REQUEST_METHOD": "GET",
        "RAW_URI": "/x",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "PATH_INFO": f"/x\n{FORGED}/{ID_NUMBER}",
        "QUERY_STRING": "",
    }
    try:
        logger.access(_Response(), _Request(), environ, timedelta(milliseconds=3))
    finally:
        logger.access_log.removeHandler(handler)
        get_engine(app).dispose()
    written = stream.getvalue()
    assert written.count("\n") == 1, written
    assert FORGED in written
    assert ID_NUMBER not in written
