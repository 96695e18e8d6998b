"""Serving the terminal for tests that need a real server: browser and race tests."""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "payout-terminal"


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Served:
    """A running terminal: its base URL and its log file (access and error logs)."""

    base: str
    log_path: Path

    def log(self) -> str:
        """Return what the server has logged so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def served(env: dict[str, str], *, port: int, workers: int = 2) -> Iterator[Served]:
    """Run ``payout-terminal serve`` until the block ends; its log goes to a file.

    A file, not a pipe: a pipe nobody reads fills up and stalls the server.
    """
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=log,  # gunicorn's access log
            stderr=log,
            text=True,
        )
    result = Served(base=f"http://127.0.0.1:{port}", log_path=Path(log.name))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(result.base + "/login", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"server did not start: {result.log()[-2000:]}") from None
                time.sleep(0.2)
        yield result
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
