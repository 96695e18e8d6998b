"""Serving with gunicorn from the CLI (``payout-terminal serve``, used by ``make run``)."""

from __future__ import annotations

from typing import Any

from flask import Flask
from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger, SafeAtoms

from terminal.security import escape_controls, redact

# The path without its query string: searches carry ID numbers and phones.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(M)sms'


class RedactedAtoms(SafeAtoms):  # type: ignore[misc]
    """The values of one access-log line, each made safe to write into a log."""

    def __init__(self, atoms: dict[str, Any]) -> None:
        # The path is decoded: %0A is a real new line there, which would let anyone
        # forge a line such as "login ok: user=admin". Remove ID and phone numbers as
        # the application log does, then show what is left of control characters
        # escaped (after: an escape's hex digits must not hide a number's edges).
        super().__init__(
            {
                key: escape_controls(redact(value, keep_lines=True))
                if isinstance(value, str)
                else value
                for key, value in atoms.items()
            }
        )


class AccessLogger(Logger):  # type: ignore[misc]
    """Gunicorn's logger with every access-log value escaped and redacted.

    For a gunicorn started by hand: ``--logger-class terminal.server.AccessLogger``.
    """

    atoms_wrapper_class = RedactedAtoms


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    """Run an already built Flask app under gunicorn."""

    def __init__(self, app: Flask, options: dict[str, Any]) -> None:
        self.application = app
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        """Apply our options to gunicorn's settings."""
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Flask:
        """Return the app to serve."""
        return self.application


def gunicorn_options(*, host: str, port: int, workers: int) -> dict[str, Any]:
    """Return the gunicorn settings the terminal is served with."""
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "worker_class": "sync",
        "timeout": 60,
        "accesslog": "-",
        "access_log_format": ACCESS_LOG_FORMAT,
        "logger_class": AccessLogger,
        "errorlog": "-",
        # One control socket per user is shared by every gunicorn on the machine; the
        # terminal has no use for it, and two terminals (or tests) would fight over it.
        "control_socket_disable": True,
        "worker_exit": _exit_at_once,
    }


def _exit_at_once(_arbiter: Any, worker: Any) -> None:
    """End a worker that has finished its requests without the interpreter's final clean-up.

    Python's last garbage collection over the app's objects took 6-10 s per worker
    here, and a restart or deploy waits for it. Every request has been answered and
    committed by now; the database connections are closed first, then the process ends.
    """
    import logging
    import os

    from terminal.db import get_engine

    try:
        app = getattr(worker, "wsgi", None)
        if isinstance(app, Flask):
            get_engine(app).dispose()
    finally:
        logging.shutdown()  # flush the log handlers, which the interpreter would do
        os._exit(0)


def run_gunicorn(app: Flask, *, host: str, port: int, workers: int) -> None:
    """Serve the app until interrupted."""
    _Gunicorn(app, gunicorn_options(host=host, port=port, workers=workers)).run()
