"""The provider sandbox as its own process on loopback, and an http point using it."""

from __future__ import annotations

from typing import Any

import pytest

from terminal.services import places
from tests.servers import SandboxProcess, sandbox_process

# How late the sandbox's "timed out" answers come, and how long the terminal waits;
# a test module may set its own (SANDBOX_SLOW_SECONDS, PROVIDER_TIMEOUT_MS). A slow
# machine only turns more answers into timeouts, which the rules must survive anyway.
SLOW_SECONDS = 2.0
TIMEOUT_MS = 1000


@pytest.fixture(scope="module")
def sandbox(request: pytest.FixtureRequest) -> Any:
    """Run the sandbox provider for the module, with no faults until a test sets them."""
    with sandbox_process(getattr(request.module, "SANDBOX_SLOW_SECONDS", SLOW_SECONDS)) as running:
        yield running


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
