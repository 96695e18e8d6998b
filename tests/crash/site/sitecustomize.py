"""Fault injection for tests/crash: SIGKILL the served terminal at a named step.

Loaded by every Python started with ``tests/crash/site`` on ``PYTHONPATH``; does
nothing unless ``TERMINAL_CRASH_AT=<point>[:<nth>]`` is set. Then, during requests
whose ``"METHOD /path"`` matches ``TERMINAL_CRASH_PATH`` (a regular expression), the
nth time the point is reached the whole server dies with SIGKILL: the gunicorn
master first (so no worker is respawned), then the worker itself. Before dying it
writes the point's name to ``TERMINAL_CRASH_MARK``, so a test knows the step ran.

Points, in the order a payment reaches them:

- ``begin``: a write transaction begins (engine ``begin`` event), nothing written;
- ``flush``: the ORM flushed (Session ``after_flush``), inside the transaction;
- ``insert``: right after ``INSERT INTO payouts`` ran, inside the transaction;
- ``commit_before``: inside COMMIT, before the commit call reaches the database;
- ``commit_after``: inside COMMIT, after the database committed, before SQLAlchemy
  (or the application) hears of it;
- ``after_commit``: after COMMIT (Session ``after_commit``), before the response;
- ``receipt_render``: while the receipt PDF is drawn;
- ``receipt_write``: just after a receipt file is created, before its bytes are written.

``TERMINAL_CRASH_AT=header`` arms each request on its own instead: the point (and
nth) come from its ``X-Terminal-Crash-At`` header, and requests without the header
run untouched. One served terminal then crashes once, and its successor serves the
retries of the previous crash before it is crashed in turn, which halves the server
starts of a round.

Only write transactions count for the transaction points (``begin_write``'s
execution option), so a request's reads and token checks never trigger them.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from typing import Any

POINTS = (
    "begin",
    "flush",
    "insert",
    "commit_before",
    "commit_after",
    "after_commit",
    "receipt_render",
    "receipt_write",
)
WRITE_OPTION = "terminal_write"  # terminal.db.WRITE_OPTION
_INSERT_PAYOUT = re.compile(r'^\s*INSERT INTO "?payouts"?\s*\(', re.IGNORECASE)


def _parse(spec: str) -> tuple[str, int]:
    """Return the point and nth of ``point[:nth]``."""
    point, _, nth_text = spec.partition(":")
    if point not in POINTS:
        raise SystemExit(f"TERMINAL_CRASH_AT: unknown point {point!r}; one of {POINTS}")
    return point, int(nth_text or 1)


def _install(spec: str) -> None:
    """Install the hooks for one crash point."""
    by_header = spec == "header"
    point, nth = _parse(spec) if not by_header else ("", 1)
    wanted = re.compile(os.environ.get("TERMINAL_CRASH_PATH", ""))
    mark = os.environ.get("TERMINAL_CRASH_MARK")
    receipts_dir = os.path.realpath(os.environ.get("TERMINAL_RECEIPTS_DIR", "receipts"))
    main_pid = os.getpid()  # the gunicorn master; workers are forked from it
    seen = {"n": 0}
    state = threading.local()

    def armed() -> tuple[str, int] | None:
        from flask import has_request_context, request

        if not has_request_context() or not wanted.search(f"{request.method} {request.path}"):
            return None
        if not by_header:
            return point, nth
        header = request.headers.get("X-Terminal-Crash-At")
        if not header:
            return None
        if getattr(request, "_crash_seen", None) is None:
            request._crash_seen = {"n": 0}  # type: ignore[attr-defined]
        return _parse(header)

    def hit(name: str) -> None:
        target = armed()
        if target is None or name != target[0]:
            return
        if by_header:
            from flask import request

            counter = request._crash_seen  # type: ignore[attr-defined]
        else:
            counter = seen
        counter["n"] += 1
        if counter["n"] < target[1]:
            return
        if mark:
            with open(mark, "w") as handle:
                handle.write(f"{name}:{target[1]}\n")
        if os.getpid() != main_pid:
            os.kill(main_pid, signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    from sqlalchemy import event
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.orm import Session

    def on_begin(conn: Any) -> None:
        if conn.get_execution_options().get(WRITE_OPTION):
            hit("begin")

    def on_execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if _INSERT_PAYOUT.match(statement):
            hit("insert")

    event.listen(Engine, "begin", on_begin)
    event.listen(Engine, "after_cursor_execute", on_execute)
    event.listen(Session, "after_flush", lambda *args: hit("flush"))

    commit_impl = Connection._commit_impl

    def crashing_commit(self: Any) -> None:
        write = bool(self.get_execution_options().get(WRITE_OPTION))
        if write:
            hit("commit_before")
        commit_impl(self)
        state.last_write = write
        if write:
            hit("commit_after")

    Connection._commit_impl = crashing_commit  # type: ignore[method-assign]

    def on_after_commit(session: Any) -> None:
        if getattr(state, "last_write", False):
            state.last_write = False
            hit("after_commit")

    event.listen(Session, "after_commit", on_after_commit)

    # Patched before terminal.services.receipts imports it by name.
    import terminal.receipt_pdf as receipt_pdf

    render = receipt_pdf.render_receipt_pdf

    def crashing_render(*args: Any, **kwargs: Any) -> Any:
        hit("receipt_render")
        return render(*args, **kwargs)

    receipt_pdf.render_receipt_pdf = crashing_render

    os_open = os.open

    def crashing_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        fd = os_open(path, flags, *args, **kwargs)
        if flags & os.O_CREAT and isinstance(path, str | os.PathLike):
            where = os.path.realpath(os.fspath(path))
            if where.startswith(receipts_dir + os.sep):
                hit("receipt_write")
        return fd

    os.open = crashing_open


if os.environ.get("TERMINAL_CRASH_AT"):
    _install(os.environ["TERMINAL_CRASH_AT"])
