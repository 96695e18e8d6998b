"""Serving the terminal for tests that need a real server: browser and race tests."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


@dataclass
class SandboxProcess:
    """A running ``payout-terminal provider-sandbox`` and its pages."""

    base: str
    log_path: Path

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.base + path,
            data=json.dumps(body).encode() if body is not None else None,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def faults(self, **rates: float) -> dict[str, float]:
        """Set fault rates of the running sandbox (unnamed ones to 0)."""
        values = {"otp_loss": 0.0, "timeout_rate": 0.0, "not_withdrawable": 0.0, **rates}
        return self._call("POST", "/sandbox/faults", values)

    def otp(self, client_ref: str) -> str | None:
        """Return the code the holder got, or None when the message was lost."""
        found = self._call("GET", f"/sandbox/otp/{client_ref}")
        return found["otp"] if found else None

    def ledger(self) -> dict[str, Any]:
        """Return everything the sandbox paid."""
        return self._call("GET", "/sandbox/ledger")

    def status(self, client_ref: str) -> dict[str, Any] | None:
        """Return what the sandbox says of a withdrawal."""
        return self._call("GET", f"/withdrawals/{client_ref}")


@contextmanager
def sandbox_process(slow_seconds: float = 2.0, seed: int = 7) -> Iterator[SandboxProcess]:
    """Run ``payout-terminal provider-sandbox`` on a free port until the block ends."""
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [
                str(SCRIPT),
                "provider-sandbox",
                "--port",
                str(port),
                "--seed",
                str(seed),
                "--slow-seconds",
                str(slow_seconds),
            ],
            stdout=log,
            stderr=log,
        )
    running = SandboxProcess(f"http://127.0.0.1:{port}", Path(log.name))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(running.base + "/", timeout=2).read()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(
                        f"sandbox did not start: {running.log_path.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.1)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)
