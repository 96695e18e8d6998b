"""RELIABILITY S23: every security event in the application log, and no secret in it.

A real ``payout-terminal serve`` (gunicorn, two workers) and a real provider sandbox:
a login, a failed login, a lockout, a denial, a payout, a reversal, an export and an
OTP withdrawal, all over HTTP. Pass criterion: each of the seven events has its
line in the server's log, and no ID number, password, bearer token or OTP code
appears anywhere in it; a user name carrying a line break forges no log line
(S13's "0 forged log lines").
"""

from __future__ import annotations

import os
import re
import uuid

import pytest
import requests

from terminal.services.auth import LOCKOUT_FAILURES
from tests.factories import PASSWORD, make_beneficiary, set_float
from tests.providers.helpers import account_holder
from tests.servers import free_port, served
from tests.test_cli import _clean_env

WRONG = "Wr0ng-horse-secret-77"


def _token(base: str, username: str) -> str:
    answer = requests.post(
        f"{base}/api/v1/tokens", json={"username": username, "password": PASSWORD}, timeout=30
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.slow
def test_security_events_are_logged_and_secrets_never_are(
    world, session, sandbox, http_point, db_url, tmp_path
):
    set_float(session, "HTBD")
    cash = make_beneficiary(
        session, "TTH0000231", commune=world.point_a.communes[0], id_number="046153023111"
    )
    holder = account_holder(session, http_point, 231)
    secrets_seen: dict[str, str] = {
        "id number (cash)": cash.id_number,
        "id number (account)": holder.id_number,
        "password": PASSWORD,
        "wrong password": WRONG,
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(_clean_env(db_url, tmp_path))
    with served(env, port=free_port(), workers=2) as server:
        base = server.base
        users = world.users
        clerk = _token(base, users["clerk"].username)
        supervisor = _token(base, users["supervisor"].username)
        auditor = _token(base, users["auditor"].username)
        agent = _token(base, "agentb")
        for name, token in (("clerk", clerk), ("supervisor", supervisor), ("auditor", auditor)):
            secrets_seen[f"token of the {name}"] = token
        secrets_seen["token of the agent"] = agent

        # A failed login, then a lockout (counted per account, in the database).
        target = users["delivery"].username
        for _ in range(LOCKOUT_FAILURES + 1):
            failed = requests.post(
                f"{base}/api/v1/tokens", json={"username": target, "password": WRONG}, timeout=30
            )
            assert failed.status_code in (401, 429), failed.text
        assert failed.status_code == 429, failed.text
        # A user name with a line break tries to forge a line.
        forged = requests.post(
            f"{base}/api/v1/tokens",
            json={"username": "x\r\nlogin ok: user=admin channel=api", "password": WRONG},
            timeout=30,
        )
        assert forged.status_code in (400, 401, 422), forged.text

        # A denial: a clerk asks for the auditor's check of the trail.
        denied = requests.get(f"{base}/api/v1/audit/verify", headers=_auth(clerk), timeout=30)
        assert denied.status_code == 403

        # A payout, with the ID number typed at the counter, and its reversal.
        verification = requests.post(
            f"{base}/api/v1/verifications",
            json={
                "beneficiary_code": cash.code,
                "collector": "beneficiary",
                "id_number": cash.id_number,
            },
            headers=_auth(clerk),
            timeout=30,
        )
        assert verification.status_code == 201, verification.text
        found = requests.get(
            f"{base}/api/v1/beneficiaries/{cash.code}", headers=_auth(clerk), timeout=30
        ).json()
        paid = requests.post(
            f"{base}/api/v1/payouts",
            json={
                "verification_id": verification.json()["verification_id"],
                "entitlement_ids": [e["id"] for e in found["entitlements"]],
                "channel": "cash",
            },
            headers={**_auth(clerk), "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        assert paid.status_code == 201, paid.text
        reversed_ = requests.post(
            f"{base}/api/v1/payouts/{paid.json()['payout_id']}/reversal",
            json={"reason": "Nhầm người nhận"},
            headers=_auth(supervisor),
            timeout=30,
        )
        assert reversed_.status_code == 200, reversed_.text

        # An export of the payout log, searched by an ID number.
        export = requests.get(
            f"{base}/api/v1/payouts",
            params={"format": "csv"},
            headers=_auth(auditor),
            timeout=30,
        )
        assert export.status_code == 200 and export.text.count("\n") >= 2

        # A withdrawal with its OTP code.
        agent_headers = _auth(agent)
        check = requests.post(
            f"{base}/api/v1/verifications",
            json={
                "beneficiary_code": holder.code,
                "collector": "beneficiary",
                "id_number": holder.id_number,
            },
            headers=agent_headers,
            timeout=30,
        ).json()
        due = requests.get(
            f"{base}/api/v1/beneficiaries/{holder.code}", headers=agent_headers, timeout=30
        ).json()["entitlements"]
        started = requests.post(
            f"{base}/api/v1/withdrawals",
            json={"verification_id": check["verification_id"], "entitlement_ids": [due[0]["id"]]},
            headers={**agent_headers, "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        assert started.status_code == 201, started.text
        body = started.json()
        otp = sandbox.otp(body["client_ref"])
        secrets_seen["otp"] = otp
        done = requests.post(
            f"{base}/api/v1/withdrawals/{body['withdrawal_id']}/otp",
            json={"otp": otp},
            headers=agent_headers,
            timeout=30,
        )
        assert done.status_code == 201, done.text
    log = server.log()

    # Each security event has its line.
    for event, pattern in {
        "login": rf"login ok: user={users['clerk'].username} channel=api",
        "failure": rf"login failed: user={target} channel=api",
        "lockout": rf"login refused, \w+ locked: user={target}",
        "denial": rf"access denied: user={users['clerk'].username} role=clerk",
        "payout": r"payout recorded: id=\d+ receipt=",
        "reversal": r"payout reversed: id=\d+ by=",
        "export": rf"export written: kind=payouts format=csv by={users['auditor'].username}",
    }.items():
        assert re.search(pattern, log), (event, log[-3000:])

    # No secret, anywhere: not in the access log, not in the application log.
    for what, value in secrets_seen.items():
        assert value and not re.search(
            rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", log
        ), what
    # The forged line stays inside its own line.
    for line in log.splitlines():
        assert not line.startswith("login ok: user=admin"), line
    assert "Traceback" not in log, log[-3000:]
