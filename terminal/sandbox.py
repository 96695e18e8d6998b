"""A stand-in e-wallet or bank for demos and tests: ``payout-terminal provider-sandbox``.

It speaks the provider protocol of docs/PROVIDER-PROTOCOL.md and misbehaves the
way providers did in the pilot (DESIGN.md): OTP messages that never arrive,
answers that come too late (after the money moved), and accounts whose credit
cannot be withdrawn. Everything is kept in memory; a seed makes a run repeatable.

Its own pages, for tests and demos (API.md): ``GET /sandbox/otp/{client_ref}``
(the OTP it "sent", 404 when the message was lost), ``GET /sandbox/ledger``
(everything it paid), ``GET /sandbox/calls`` (every protocol call with its client
reference) and ``POST /sandbox/faults`` (change the fault rates, the delay of a late
answer, and how often an answer is dropped with its connection). They always answer
at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, abort, jsonify, request

OTP_MINUTES = 5
OTP_TRIES = 3
REF_MAX = 64


@dataclass
class Faults:
    """The sandbox's fault rates, each a probability from 0 to 1."""

    otp_loss: float = 0.0
    timeout_rate: float = 0.0
    not_withdrawable: float = 0.0
    slow_seconds: float = 3.0
    # Answers never sent: the work is done, then the connection is closed unanswered.
    drop_rate: float = 0.0

    def update(self, values: dict[str, Any]) -> None:
        """Change the rates given; refuse anything not a probability."""
        for name in ("otp_loss", "timeout_rate", "not_withdrawable", "drop_rate"):
            if name in values:
                value = values[name]
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise ValueError(f"{name} must be a number from 0 to 1")
                if not 0 <= value <= 1:
                    raise ValueError(f"{name} must be a number from 0 to 1")
                setattr(self, name, float(value))
        if "slow_seconds" in values:
            value = values["slow_seconds"]
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError("slow_seconds must be a number from 0 to 600")
            if not 0 <= value <= 600:
                raise ValueError("slow_seconds must be a number from 0 to 600")
            self.slow_seconds = float(value)

    def as_dict(self) -> dict[str, float]:
        """Return the rates and the delay, as the faults page shows them."""
        return {
            "otp_loss": self.otp_loss,
            "timeout_rate": self.timeout_rate,
            "not_withdrawable": self.not_withdrawable,
            "drop_rate": self.drop_rate,
            "slow_seconds": self.slow_seconds,
        }


@dataclass
class Withdrawal:
    """One withdrawal the sandbox knows, by the terminal's client reference."""

    client_ref: str
    account_no: str
    amount: int
    credit_key: str
    status: str = "otp_sent"  # otp_sent | paid | cancelled
    otp: str = ""
    otp_expires_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    otp_delivered: bool = True
    tries_left: int = OTP_TRIES
    provider_ref: str | None = None
    paid_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        """Return what the protocol tells about it."""
        status = self.status
        if status == "otp_sent" and datetime.now(UTC) >= self.otp_expires_at:
            status = "expired"
        body: dict[str, Any] = {
            "client_ref": self.client_ref,
            "status": status,
            "amount": self.amount,
            "otp_expires_at": self.otp_expires_at.isoformat(),
        }
        if self.status == "paid":
            body.update(provider_ref=self.provider_ref, paid_at=_iso(self.paid_at))
        return body


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


class Sandbox:
    """The provider's books: credits per account and period, withdrawals, the ledger."""

    def __init__(self, faults: Faults, seed: int | None = None) -> None:
        self.faults = faults
        self.seed = seed if seed is not None else secrets.randbits(32)
        self.random = random.Random(self.seed)
        self.lock = threading.Lock()
        self.withdrawals: dict[str, Withdrawal] = {}
        self.credits: dict[str, int] = {}
        self.ledger: list[dict[str, Any]] = []
        # Every protocol call, in order: which endpoint, for which client reference.
        self.calls: list[dict[str, str]] = []

    def chance(self, rate: float) -> bool:
        """Draw a fault with the given probability (under the lock)."""
        return rate > 0 and self.random.random() < rate

    def account_blocked(self, account_no: str) -> bool:
        """Whether an account's credit cannot be withdrawn: fixed per account and seed."""
        digest = hashlib.sha256(f"{self.seed}:{account_no}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32 < self.faults.not_withdrawable

    def send_otp(self, withdrawal: Withdrawal) -> None:
        """Send a new code, which may be lost on the way."""
        withdrawal.otp = f"{self.random.randrange(10**6):06d}"
        withdrawal.otp_expires_at = datetime.now(UTC) + timedelta(minutes=OTP_MINUTES)
        withdrawal.otp_delivered = not self.chance(self.faults.otp_loss)
        withdrawal.tries_left = OTP_TRIES


def _error(status: int, code: str, message: str, **fields: Any) -> Any:
    response = jsonify({"error": code, "message": message, **fields})
    response.status_code = status
    return response


def create_sandbox_app(faults: Faults | None = None, seed: int | None = None) -> Flask:
    """Build the sandbox provider's Flask app."""
    app = Flask("provider_sandbox")
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    sandbox = Sandbox(faults or Faults(), seed)
    app.extensions["sandbox"] = sandbox

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            abort(_error(400, "malformed", "a JSON object is expected"))
        return data

    def known(client_ref: str) -> Withdrawal:
        withdrawal = sandbox.withdrawals.get(client_ref)
        if withdrawal is None:
            abort(_error(404, "not_found", "no withdrawal with this client reference"))
        return withdrawal

    def late(slow: bool) -> None:
        """Answer too late, after the work is done: the classic unknown outcome."""
        if slow:
            time.sleep(sandbox.faults.slow_seconds)
        with sandbox.lock:
            dropped = sandbox.chance(sandbox.faults.drop_rate)
        if dropped:
            # The work is done; the answer is lost with the connection.
            connection = request.environ.get("werkzeug.socket")
            if connection is not None:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    @app.before_request
    def note_call() -> None:
        if request.path.startswith("/withdrawals"):
            args = request.view_args or {}
            ref = args.get("client_ref")
            if ref is None and request.method == "POST":
                data = request.get_json(silent=True)
                ref = data.get("client_ref") if isinstance(data, dict) else None
            with sandbox.lock:
                sandbox.calls.append(
                    {"endpoint": request.endpoint or "", "client_ref": str(ref or "")}
                )

    @app.post("/withdrawals")
    def start() -> Any:
        data = body()
        ref, account, amount = data.get("client_ref"), data.get("account_no"), data.get("amount")
        periods = data.get("periods") or []
        if not isinstance(ref, str) or not 1 <= len(ref) <= REF_MAX:
            return _error(400, "malformed", "client_ref: 1-64 characters")
        if not isinstance(account, str) or not account:
            return _error(400, "malformed", "account_no is required")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return _error(400, "malformed", "amount: a positive whole number of đồng")
        if not isinstance(periods, list) or not all(isinstance(p, str) for p in periods):
            return _error(400, "malformed", "periods: a list of YYYY-MM")
        with sandbox.lock:
            slow = sandbox.chance(sandbox.faults.timeout_rate)
            existing = sandbox.withdrawals.get(ref)
            if existing is not None:
                if (existing.account_no, existing.amount) != (account, amount):
                    return _error(409, "client_ref_reused", "another withdrawal has this reference")
                answer = (200, existing.public())
            elif sandbox.account_blocked(account):
                answer = (
                    422,
                    {
                        "error": "credited_not_withdrawable",
                        "message": "Tài khoản đã được ghi có nhưng không thể rút (mã VT-417)",
                    },
                )
            else:
                credit_key = f"{account}|{','.join(sorted(periods))}"
                # The province credits each account once per period, the amount it is owed.
                balance = sandbox.credits.setdefault(credit_key, amount)
                if balance < amount:
                    answer = (
                        422,
                        {
                            "error": "provider_rejected",
                            "message": "Số dư không đủ: khoản này đã được rút (mã VT-402)",
                        },
                    )
                else:
                    withdrawal = Withdrawal(ref, account, amount, credit_key)
                    sandbox.send_otp(withdrawal)
                    sandbox.withdrawals[ref] = withdrawal
                    answer = (201, withdrawal.public())
        late(slow)
        return jsonify(answer[1]), answer[0]

    @app.post("/withdrawals/<client_ref>/otp")
    def confirm(client_ref: str) -> Any:
        data = body()
        otp = data.get("otp")
        with sandbox.lock:
            slow = sandbox.chance(sandbox.faults.timeout_rate)
            withdrawal = known(client_ref)
            if withdrawal.status == "paid":
                answer = (200, withdrawal.public())  # a retry of a paid one: same answer
            elif withdrawal.status == "cancelled":
                answer = (409, {"error": "cancelled", "message": "this withdrawal was cancelled"})
            elif datetime.now(UTC) >= withdrawal.otp_expires_at:
                answer = (422, {"error": "otp_expired", "message": "the code has expired"})
            elif not isinstance(otp, str) or not secrets.compare_digest(otp, withdrawal.otp):
                withdrawal.tries_left -= 1
                if withdrawal.tries_left <= 0:
                    withdrawal.otp_expires_at = datetime.now(UTC)
                answer = (
                    422,
                    {
                        "error": "otp_invalid",
                        "message": "wrong code",
                        "attempts_left": max(withdrawal.tries_left, 0),
                    },
                )
            elif sandbox.credits.get(withdrawal.credit_key, 0) < withdrawal.amount:
                answer = (422, {"error": "provider_rejected", "message": "Số dư không đủ"})
            else:
                sandbox.credits[withdrawal.credit_key] -= withdrawal.amount
                withdrawal.status = "paid"
                withdrawal.paid_at = datetime.now(UTC)
                withdrawal.provider_ref = f"VTP{len(sandbox.ledger) + 1:09d}"
                sandbox.ledger.append(
                    {
                        "client_ref": client_ref,
                        "amount": withdrawal.amount,
                        "provider_ref": withdrawal.provider_ref,
                        "paid_at": _iso(withdrawal.paid_at),
                    }
                )
                answer = (200, withdrawal.public())
        late(slow)
        return jsonify(answer[1]), answer[0]

    @app.post("/withdrawals/<client_ref>/resend")
    def resend(client_ref: str) -> Any:
        with sandbox.lock:
            slow = sandbox.chance(sandbox.faults.timeout_rate)
            withdrawal = known(client_ref)
            if withdrawal.status != "otp_sent":
                answer = (
                    409,
                    {"error": withdrawal.status, "message": f"already {withdrawal.status}"},
                )
            else:
                sandbox.send_otp(withdrawal)
                answer = (200, withdrawal.public())
        late(slow)
        return jsonify(answer[1]), answer[0]

    @app.post("/withdrawals/<client_ref>/cancel")
    def cancel(client_ref: str) -> Any:
        with sandbox.lock:
            slow = sandbox.chance(sandbox.faults.timeout_rate)
            withdrawal = known(client_ref)
            if withdrawal.status == "paid":
                answer = (409, {"error": "already_paid", **withdrawal.public()})
            else:
                withdrawal.status = "cancelled"
                answer = (200, withdrawal.public())
        late(slow)
        return jsonify(answer[1]), answer[0]

    @app.get("/withdrawals/<client_ref>")
    def status(client_ref: str) -> Any:
        with sandbox.lock:
            slow = sandbox.chance(sandbox.faults.timeout_rate)
            answer = known(client_ref).public()
        late(slow)
        return jsonify(answer)

    # ---- the sandbox's own pages: always at once --------------------------------

    @app.get("/sandbox/otp/<client_ref>")
    def shown_otp(client_ref: str) -> Any:
        with sandbox.lock:
            withdrawal = sandbox.withdrawals.get(client_ref)
            if withdrawal is None or not withdrawal.otp_delivered:
                return _error(404, "not_found", "no message was delivered for this reference")
            return jsonify({"client_ref": client_ref, "otp": withdrawal.otp})

    @app.get("/sandbox/ledger")
    def ledger() -> Any:
        with sandbox.lock:
            paid = [{"client_ref": e["client_ref"], "amount": e["amount"]} for e in sandbox.ledger]
            return jsonify(
                {
                    "paid": paid,
                    "total": sum(e["amount"] for e in paid),
                    "entries": list(sandbox.ledger),
                }
            )

    @app.post("/sandbox/faults")
    def set_faults() -> Any:
        data = body()
        with sandbox.lock:
            try:
                sandbox.faults.update(data)
            except ValueError as exc:
                return _error(400, "malformed", str(exc))
            return jsonify(sandbox.faults.as_dict())

    @app.get("/sandbox/calls")
    def calls() -> Any:
        with sandbox.lock:
            return jsonify({"calls": list(sandbox.calls)})

    @app.get("/")
    def index() -> Any:
        return jsonify(
            {"provider": "sandbox", "seed": sandbox.seed, "withdrawals": len(sandbox.withdrawals)}
        )

    return app


def serve_sandbox(app: Flask, host: str, port: int) -> None:
    """Serve the sandbox with one thread per request, until interrupted."""
    from werkzeug.serving import make_server

    server = make_server(host, port, app, threaded=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
