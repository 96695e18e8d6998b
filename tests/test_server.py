"""The served terminal: its access log (RELIABILITY S13, S23) and shared rate limits."""

from __future__ import annotations

import io
import logging
import os
import time
import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest
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
    assert (
        '"GET /x\\x0d\\x0alogin ok: user=admin channel=page\\x0a/[redacted-number]"' in (access[0])
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
    headers: tuple[tuple[str, str], ...] = ()


class _Request:
    """What gunicorn's logger reads of a request."""

    headers: tuple[tuple[str, str], ...] = ()


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


REDIS_URL = os.environ.get("TERMINAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _redis():
    """Return a client of the test Redis, or skip when none answers."""
    redis = pytest.importorskip("redis", reason="the redis package is not installed")
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1, socket_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis answers at {REDIS_URL} ({type(exc).__name__}): limits untested")
    return client


def test_two_terminals_sharing_redis_count_one_limit(db_url, tmp_path):
    """Two servers on one Redis exhaust the receipt check's 30 per minute together."""
    client = _redis()
    prefix = f"test-{uuid.uuid4().hex}"  # parallel runs never share counts
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "receipts"),
        TERMINAL_RATELIMIT_STORAGE_URL=REDIS_URL,
        TERMINAL_RATELIMIT_KEY_PREFIX=prefix,
    )
    check = "/api/v1/receipts/verify?token=not-a-receipt"
    try:
        with (
            served(env, port=free_port(), workers=1) as first,
            served(env, port=free_port(), workers=1) as second,
        ):
            # Each alone stays under the limit; memory counting would never refuse.
            statuses = [_request(first.base + check) for _ in range(20)]
            statuses += [_request(second.base + check) for _ in range(20)]
        assert statuses[:30] == [200] * 30
        assert statuses[30:] == [429] * 10
        assert any(prefix in key.decode() for key in client.scan_iter(match=f"*{prefix}*"))
    finally:
        for key in client.scan_iter(match=f"*{prefix}*"):
            client.delete(key)


def test_unreachable_redis_falls_back_to_memory(settings):
    """A Redis that does not answer never turns the receipt check into a 500."""
    app = create_app({**settings, "RATELIMIT_STORAGE_URL": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        client = app.test_client()
        statuses = [client.get("/api/v1/receipts/verify?token=x").status_code for _ in range(32)]
    finally:
        get_engine(app).dispose()
    assert statuses == [200] * 30 + [429] * 2
