"""Provider adapters: how a payout point's terminal talks to an e-wallet or a bank.

One small interface (docs/PROVIDER-PROTOCOL.md): start a withdrawal (the provider
sends the account holder an OTP), resend the OTP, confirm with it, ask the status
of a client reference, and cancel one that did not complete. ``manual`` is the
agent working in the provider's own app and typing its reference (no calls);
``http`` is JSON over HTTP with a timeout per call, and retries that reuse the
same client reference, so a retry can never withdraw twice.

A call that gets no answer in time raises ``ProviderUnreachable``: the outcome is
unknown, which for a confirmation means the money may have left the account.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("terminal")

ADAPTERS = ("manual", "http")


@dataclass(frozen=True)
class ProviderAnswer:
    """What the provider said: an HTTP status and its JSON body."""

    status: int
    body: dict[str, Any]

    @property
    def ok(self) -> bool:
        """Whether the provider did what was asked."""
        return 200 <= self.status < 300

    @property
    def error(self) -> str | None:
        """The provider's own error code, when it refused."""
        value = self.body.get("error")
        return str(value)[:64] if value is not None else None

    @property
    def message(self) -> str:
        """The provider's own message, when it refused (kept short)."""
        return str(self.body.get("message") or "")[:300]


class ProviderUnreachable(Exception):
    """The provider did not answer in time (or at all): the outcome is unknown."""


class ProviderAdapter(Protocol):
    """The calls the terminal makes to a provider."""

    def start(
        self, client_ref: str, *, account_no: str, amount: int, periods: list[str]
    ) -> ProviderAnswer:
        """Start a withdrawal: the provider sends the account holder an OTP."""

    def resend(self, client_ref: str) -> ProviderAnswer:
        """Send a new OTP for a started withdrawal."""

    def confirm(self, client_ref: str, otp: str) -> ProviderAnswer:
        """Confirm with the OTP: the money leaves the account."""

    def status(self, client_ref: str) -> ProviderAnswer:
        """Ask what became of a client reference."""

    def cancel(self, client_ref: str) -> ProviderAnswer:
        """Cancel a withdrawal that did not complete, so it never can."""


class ManualAdapter:
    """Today's way: the agent withdraws in the provider's app; the terminal calls nobody."""

    def _refuse(self, *_args: Any, **_kwargs: Any) -> ProviderAnswer:
        raise ProviderUnreachable("this payout point has no provider connection (manual)")

    start = resend = confirm = status = cancel = _refuse


class HttpAdapter:
    """JSON over HTTP (docs/PROVIDER-PROTOCOL.md), with timeouts and safe retries."""

    def __init__(self, base_url: str, *, timeout: float = 10.0, retries: int = 2) -> None:
        if check_provider_url(base_url) is None:
            raise ValueError("a provider URL is http:// or https://")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries

    def start(
        self, client_ref: str, *, account_no: str, amount: int, periods: list[str]
    ) -> ProviderAnswer:
        return self._call(
            "POST",
            "/withdrawals",
            {
                "client_ref": client_ref,
                "account_no": account_no,
                "amount": amount,
                "periods": periods,
            },
        )

    def resend(self, client_ref: str) -> ProviderAnswer:
        # A retried resend may send two messages; the newer code counts. Harmless.
        return self._call("POST", f"/withdrawals/{_quoted(client_ref)}/resend", {})

    def confirm(self, client_ref: str, otp: str) -> ProviderAnswer:
        return self._call("POST", f"/withdrawals/{_quoted(client_ref)}/otp", {"otp": otp})

    def status(self, client_ref: str) -> ProviderAnswer:
        return self._call("GET", f"/withdrawals/{_quoted(client_ref)}", None)

    def cancel(self, client_ref: str) -> ProviderAnswer:
        return self._call("POST", f"/withdrawals/{_quoted(client_ref)}/cancel", {})

    def _call(self, method: str, path: str, payload: dict[str, Any] | None) -> ProviderAnswer:
        """Make a call, retrying a timeout, a lost connection or a 5xx with the same body.

        Every call is idempotent by its client reference, so a retry never does
        the work twice (the protocol's rule 1).
        """
        data = json.dumps(payload).encode() if payload is not None else None
        last: str = "no attempt"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(min(0.2 * attempt, self.timeout, 1.0))
            request = urllib.request.Request(  # noqa: S310 (http(s) only: __init__)
                self.base_url + path,
                data=data,
                method=method,
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return ProviderAnswer(response.status, _json(response.read()))
            except urllib.error.HTTPError as exc:
                body = _json(exc.read())
                if exc.code < 500:
                    return ProviderAnswer(exc.code, body)
                last = f"HTTP {exc.code}"
            except (TimeoutError, OSError) as exc:  # URLError is an OSError
                last = type(getattr(exc, "reason", exc)).__name__
            except Exception as exc:  # a broken answer (IncompleteRead, BadStatusLine...)
                last = type(exc).__name__
            log.warning(
                "provider call failed: %s %s attempt %d: %s",
                method,
                path.split("/")[1],
                attempt + 1,
                last,
            )
        raise ProviderUnreachable(last)


def check_provider_url(url: str | None) -> str | None:
    """Return a provider URL without its trailing slash, or None if it is not http(s)."""
    if not url or len(url) > 300:
        return None
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        return None
    return url.strip().rstrip("/")


def _quoted(client_ref: str) -> str:
    return urllib.parse.quote(client_ref, safe="")


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {"error": "malformed_answer", "message": "the provider's answer is not JSON"}
    return value if isinstance(value, dict) else {"error": "malformed_answer"}


def adapter_for(kind: str, url: str | None, *, timeout: float, retries: int) -> ProviderAdapter:
    """Return the adapter a payout point is set up with."""
    if kind == "http" and url:
        return HttpAdapter(url, timeout=timeout, retries=retries)
    return ManualAdapter()
