"""RELIABILITY S05: the server killed with SIGKILL at each step of a payment.

Each round pays over the JSON API of a real ``payout-terminal serve`` that dies at
one step (tests/crash/site/sitecustomize.py): before BEGIN, after the payout's
INSERT, inside COMMIT before and after the database commits, after COMMIT before
the answer, and while the receipt PDF is drawn and written. The next server
(restarted on the same database) gets the retry with the same Idempotency-Key.
Then: no entitlement paid twice, every payout answered 201 is there with the
receipt number it was answered with, every payout has its audit event, the audit
chain verifies, SQLite's integrity check passes, and no receipt file is broken.

Light rounds (each point once) in CI; with TERMINAL_SOAK=1 many random points
(TERMINAL_CRASH_ROUNDS of them, 40 by default; TERMINAL_CRASH_SEED replays a run).
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest

from tests.conftest import SECRET
from tests.crash.harness import (
    LANDED,
    NOT_LANDED,
    RECEIPT_POINTS,
    SOAK,
    Answer,
    CrashServer,
    call,
    check,
    crash_server,
    points,
)
from tests.factories import PASSWORD, make_beneficiary, set_float

PAYOUT_POINTS = ("begin", "insert", "commit_before", "commit_after", "after_commit")
SOAK_ROUNDS = int(os.environ.get("TERMINAL_CRASH_ROUNDS", "40"))


@pytest.fixture
def env(db_url: str, tmp_path: Any) -> dict[str, str]:
    """The served terminal's settings, on the test's database."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    return {
        **clean,
        "TERMINAL_DATABASE_URL": db_url,
        "TERMINAL_SECRET_KEY": SECRET,
        "TERMINAL_RECEIPTS_DIR": str(tmp_path / "receipts"),
    }


def token_of(base: str, username: str) -> str:
    """Return a bearer token for a user."""
    answer = call(base, "POST", "/api/v1/tokens", {"username": username, "password": PASSWORD})
    assert answer.status == 201, answer.body
    return answer.body["token"]


def payment(base: str, token: str, person: Any) -> dict[str, Any]:
    """Verify a beneficiary at the counter; return the body that pays their due."""
    detail = call(base, "GET", f"/api/v1/beneficiaries/{person.code}", token=token)
    assert detail.status == 200, detail.body
    verified = call(
        base,
        "POST",
        "/api/v1/verifications",
        {
            "beneficiary_code": person.code,
            "collector": "beneficiary",
            "id_number": person.id_number,
        },
        token=token,
    )
    assert verified.status == 201, verified.body
    return {
        "verification_id": verified.body["verification_id"],
        "entitlement_ids": [e["id"] for e in detail.body["entitlements"] if e["status"] == "due"],
        "channel": "cash",
    }


def crash_then_retry(
    server: CrashServer, point: str, send: Any, *, nth: int = 1
) -> tuple[Answer, str]:
    """Send a request armed to crash at a point, restart, send it again; return the retry."""
    lost = send(server.base, f"{point}:{nth}")
    assert lost.lost, f"{point}:{nth} was never reached: {lost.status} {lost.body}"
    assert server.crashed_at() == f"{point}:{nth}"
    server.start()
    return send(server.base, None), server.base


def test_a_payment_survives_a_kill_at_every_step(world, session, env, db_url):
    plan = points(PAYOUT_POINTS, seed=5, rounds=SOAK_ROUNDS)
    people = [
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=world.point_a.communes[0],
            id_number=f"0461600{n:05d}",
            full_name="Nguyễn Văn An",
        )
        for n in range(len(plan))
    ]
    set_float(session, "HTBD", 10**12)
    answered: dict[int, str] = {}
    with crash_server(env) as server:
        server.start()
        token = token_of(server.base, "clerk1")
        for point, person in zip(plan, people, strict=True):
            body = payment(server.base, token, person)
            key = str(uuid.uuid4())

            def send(base: str, crash: str | None, body=body, key=key) -> Answer:
                path = "/api/v1/payouts"
                return call(base, "POST", path, body, token=token, key=key, crash=crash)

            retry, base = crash_then_retry(server, point, send)
            assert retry.status == 201, (point, retry.body)
            # A commit that landed is found by its key: the first answer, same receipt.
            replayed = retry.headers.get("Idempotent-Replayed") == "true"
            assert replayed == (point in LANDED), point
            assert point in LANDED + NOT_LANDED
            again = send(base, None)
            assert again.status == 201 and again.body["receipt_no"] == retry.body["receipt_no"]
            answered[retry.body["payout_id"]] = retry.body["receipt_no"]
        # The receipt PDF: killed while drawing it and while writing its file.
        for point, receipt_no in zip(
            points(RECEIPT_POINTS, seed=6, rounds=SOAK_ROUNDS // 4),
            list(answered.values()),
            strict=False,
        ):

            def fetch(base: str, crash: str | None, receipt_no=receipt_no) -> Answer:
                path = f"/api/v1/receipts/{receipt_no}.pdf"
                return call(base, "GET", path, token=token, crash=crash)

            first, base = crash_then_retry(server, point, fetch)
            assert first.status == 200, (point, first.body)
            assert first.raw.startswith(b"%PDF-") and b"%%EOF" in first.raw[-1024:]
            assert fetch(base, None).raw == first.raw  # the original file, never redrawn
        server.stop()
    check(db_url, env, answered)
    if not SOAK:
        assert server.starts == len(PAYOUT_POINTS) + len(RECEIPT_POINTS) + 1


# ---- a tablet's sync ----------------------------------------------------------------

# A sync of one payout: the item's write transaction comes first (its claim is
# flushed in it), then the receipt is drawn and its file noted, then the device touched.
SYNC_POINTS = ("begin", "flush", "insert", "commit_before", "commit_after", "after_commit")
SYNC_POINTS += ("receipt_render", "receipt_write")
# CI: the COMMIT not reaching the database, and reaching it with the answer lost (the
# other steps run the same code as the counter's payment, crashed above; all in soak).
COMMIT_POINTS = ("commit_before", "commit_after")
SYNC_LANDED = ("commit_after", "after_commit", "receipt_render", "receipt_write")


def tablet_route(client: Any, people: list[Any]) -> tuple[str, dict[str, list[int]]]:
    """Pair a tablet for delivery1 and route the people to it; return its token and dues."""
    from tests.conftest import api_token, bearer

    sup = bearer(api_token(client, "supervisor1"))
    device = client.post(
        "/api/v1/devices", json={"name": "Máy tính bảng 1", "username": "delivery1"}, headers=sup
    )
    assert device.status_code == 201, device.get_json()
    tablet = device.get_json()["token"]
    route = client.post(
        "/api/v1/routes",
        json={
            "username": "delivery1",
            "period": "2021-10",
            "beneficiary_codes": [p.code for p in people],
        },
        headers=sup,
    )
    assert route.status_code == 201, route.get_json()
    current = client.get("/api/v1/routes/current", headers=bearer(tablet)).get_json()
    due = {p["code"]: [e["id"] for e in p["entitlements"]] for p in current["people"]}
    return tablet, due


def test_a_tablet_sync_survives_a_kill_at_every_step(world, session, client, env, db_url):
    from tests.api.test_delivery_api import now_vn, ref

    plan = points(SYNC_POINTS if SOAK else COMMIT_POINTS, seed=8, rounds=SOAK_ROUNDS)
    people = [
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=world.point_a.communes[0],
            id_number=f"0461700{n:05d}",
            full_name="Trần Thị Lan",
        )
        for n in range(len(plan))
    ]
    tablet, due = tablet_route(client, people)
    answered: dict[int, str] = {}
    with crash_server(env) as server:
        server.start()
        for point, person in zip(plan, people, strict=True):
            item = {
                "client_ref": ref(),
                "beneficiary_code": person.code,
                "entitlement_ids": due[person.code],
                "collector": "beneficiary",
                "verified_by": "id_number",
                "paid_at": now_vn(-5),
            }

            def send(base: str, crash: str | None, item=item) -> Answer:
                body = {"payouts": [item], "visits": []}
                return call(base, "POST", "/api/v1/sync", body, token=tablet, crash=crash)

            retry, base = crash_then_retry(server, point, send)
            assert retry.status == 200, (point, retry.body)
            (result,) = retry.body["results"]
            expected = "duplicate" if point in SYNC_LANDED else "applied"
            assert result["status"] == expected, (point, result)
            assert result["payout_id"] and result["receipt_no"]
            again = send(base, None).body["results"][0]
            assert again["status"] == "duplicate"
            assert again["receipt_no"] == result["receipt_no"]
            answered[result["payout_id"]] = result["receipt_no"]
        server.stop()
    check(db_url, env, answered)


# ---- a withdrawal through the provider ----------------------------------------------

WITHDRAWAL_POINTS = ("begin", "insert", "commit_before", "commit_after", "after_commit")


def test_a_withdrawal_survives_a_kill_at_every_step_of_its_payout(world, session, env, db_url):
    from terminal.services import places
    from tests.providers.helpers import account_holder
    from tests.servers import sandbox_process

    plan = points(WITHDRAWAL_POINTS if SOAK else COMMIT_POINTS, seed=9, rounds=SOAK_ROUNDS // 2)
    point = world.point_b
    people = [account_holder(session, point, n + 1) for n in range(len(plan))]
    answered: dict[int, str] = {}
    with sandbox_process() as sandbox, crash_server(env) as server:
        sandbox.faults()
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
        server.start()
        token = token_of(server.base, "agentb")
        refs = []
        for crash_point, person in zip(plan, people, strict=True):
            body = payment(server.base, token, person)
            del body["channel"]
            started = call(
                server.base, "POST", "/api/v1/withdrawals", body, token=token, key=str(uuid.uuid4())
            )
            assert started.status == 201, started.body
            withdrawal_id, client_ref = started.body["withdrawal_id"], started.body["client_ref"]
            refs.append(client_ref)
            code = sandbox.otp(client_ref)
            assert code is not None

            def send(base: str, crash: str | None, withdrawal_id=withdrawal_id, code=code) -> Any:
                path = f"/api/v1/withdrawals/{withdrawal_id}/otp"
                return call(base, "POST", path, {"otp": code}, token=token, crash=crash)

            retry, base = crash_then_retry(server, crash_point, send)
            assert retry.status == 201, (crash_point, retry.body)
            state = call(base, "GET", f"/api/v1/withdrawals/{withdrawal_id}", token=token)
            assert state.body["status"] == "completed"
            assert state.body["payout_id"] == retry.body["payout_id"]
            answered[retry.body["payout_id"]] = retry.body["receipt_no"]
        server.stop()
        paid = [entry["client_ref"] for entry in sandbox.ledger()["paid"]]
    # The provider paid each withdrawal once, and the terminal recorded each once.
    assert sorted(paid) == sorted(refs)
    check(db_url, env, answered)
