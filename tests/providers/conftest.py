"""The provider sandbox as its own process on loopback, and an http point using it."""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from terminal.services import places
from tests.servers import SCRIPT, free_port

# How late the sandbox's "timed out" answers come, and how long the terminal waits;
# a test module may set its own (SANDBOX_SLOW_SECONDS, PROVIDER_TIMEOUT_MS). A slow
# machine only turns more answers into timeouts, which the rules must survive anyway.
SLOW_SECONDS = 2.0
TIMEOUT_MS = 1000


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


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Any:
    """Run the sandbox provider for the module, with no faults until a test sets them."""
    slow = getattr(request.module, "SANDBOX_SLOW_SECONDS", SLOW_SECONDS)
    port = free_port()
    with tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False) as log:
        process = subprocess.Popen(
            [
                str(SCRIPT),
                "provider-sandbox",
                "--port",
                str(port),
                "--seed",
                "7",
                "--slow-seconds",
                str(slow),
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


@pytest.fixture
def settings(settings: dict[str, Any], request: pytest.FixtureRequest) -> dict[str, Any]:
    """The test app waits little for the provider, retries once, resends at once."""
    return {
        **settings,
        "PROVIDER_TIMEOUT_MS": getattr(request.module, "PROVIDER_TIMEOUT_MS", TIMEOUT_MS),
        "PROVIDER_RETRIES": 1,
        "OTP_RESEND_SECONDS": 0,
    }


@pytest.fixture
def http_point(world: Any, session: Any, sandbox: SandboxProcess) -> Any:
    """Connect the world's Phú Lộc agent point (PLVT) to the sandbox; no faults."""
    sandbox.faults()
    point = world.point_b
    places.save_point(
        session,
        code=point.code,
        name=point.name,
        kind=point.kind.value,
        district=point.district.name,
        communes=[c.name for c in point.communes],
        adapter="http",
        provider_url=sandbox.base,
        actor="test",
    )
    session.refresh(point)
    return point
