"""The provider sandbox fixtures of tests/providers, for the fault rows S08 and S09."""

from __future__ import annotations

import os

from tests.providers.conftest import http_point, sandbox, settings  # noqa: F401

# Heavy rounds run with TERMINAL_SOAK=1 (`make soak`); CI runs the light ones.
SOAK = os.environ.get("TERMINAL_SOAK", "").strip() not in ("", "0")
