"""The clerks of tests/concurrency/test_two_offices.py, one process each, and ``call``,
the JSON API call every concurrency test makes.

Standard library only: each of the 8 processes is spawned and imports this module,
and importing the terminal's code 8 times would cost more than the race itself.
"""

from __future__ import annotations

import json
import random
import urllib.error
import urllib.request
import uuid
from typing import Any


def call(
    base: str,
    method: str,
    path: str,
    body: Any = None,
    token: str | None = None,
    key: str | None = None,
) -> tuple[int, Any]:
    """Make one API call; return (status, JSON or the raw bytes of another type)."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if key:
        request.add_header("Idempotency-Key", key)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            payload = response.read()
            if response.headers.get_content_type() != "application/json":
                return response.status, payload
            return response.status, json.loads(payload or b"{}")
    except urllib.error.HTTPError as error:
        payload = error.read()
        try:
            return error.code, json.loads(payload or b"{}")
        except ValueError:
            return error.code, {"raw": payload[:200].decode(errors="replace")}


def clerk(
    base: str,
    username: str,
    password: str,
    plan: list[tuple[str, str, int]],
    barrier: Any,
    results: Any,
) -> None:
    """Verify each planned person, then pay each once in a random order; print receipts.

    ``plan`` lists (beneficiary code, ID number, entitlement id). The verifications
    come before the barrier (one stays good for 10 minutes): the race is the payment.
    """
    outcomes: list[tuple[str, int, Any, Any]] = []
    try:
        token = call(base, "POST", "/api/v1/tokens", {"username": username, "password": password})[
            1
        ]["token"]
        ready = []
        for code, id_number, entitlement_id in plan:
            status, verified = call(
                base,
                "POST",
                "/api/v1/verifications",
                {"beneficiary_code": code, "collector": "beneficiary", "id_number": id_number},
                token=token,
            )
            if status != 201:
                outcomes.append(("verify", status, verified.get("error"), None))
                continue
            ready.append((verified["verification_id"], entitlement_id))
        random.Random(username).shuffle(ready)
    finally:
        barrier.wait()  # never leave the others waiting
    for verification_id, entitlement_id in ready:
        status, body = call(
            base,
            "POST",
            "/api/v1/payouts",
            {
                "verification_id": verification_id,
                "entitlement_ids": [entitlement_id],
                "channel": "cash",
            },
            token=token,
            key=str(uuid.uuid4()),
        )
        if status != 201:
            outcomes.append(("pay", status, body.get("error"), None))
            continue
        # The counter prints the receipt: its PDF is written into this office's folder.
        pdf_status, pdf = call(base, "GET", body["receipt_pdf"], token=token)
        printed = pdf_status == 200 and isinstance(pdf, bytes) and pdf.startswith(b"%PDF")
        outcomes.append(("pay", status, body["receipt_no"], printed))
    results.put(outcomes)
