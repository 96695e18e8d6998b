"""The server's own time for each request, in a ``Server-Timing`` header (off by default).

Benchmarks read it to tell the time a search takes on the server from the time the
request waited for a free worker, which at a busy counter is the queue, not the code.
It is off unless ``TERMINAL_SERVER_TIMING=1``: durations are a timing side channel
that production has no need to give away.
"""

from __future__ import annotations

import time

from flask import Flask, Response, g


def init_app(app: Flask) -> None:
    """Time every request from its first hook to its response's headers."""
    # First of the before-request hooks, so sign-in and scope checks are counted.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_stamp)


def _start() -> None:
    """Note when the application began to handle the request."""
    g.server_timing_started = time.perf_counter()


def _stamp(response: Response) -> Response:
    """Add the time spent so far, in milliseconds, as ``Server-Timing: app;dur=...``."""
    started = g.get("server_timing_started")
    if started is not None:
        took = (time.perf_counter() - started) * 1000
        response.headers["Server-Timing"] = f"app;dur={took:.2f}"
    return response
