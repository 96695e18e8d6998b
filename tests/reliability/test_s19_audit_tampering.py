"""RELIABILITY S19: six kinds of audit tampering, caught by the command an auditor runs.

tests/services/test_audit_checkpoints.py proves the chain and the checkpoints in
the service. This proves the auditor's path end to end: a checkpoint kept from
``GET /api/v1/audit/checkpoint``, then ``payout-terminal audit-verify --checkpoint
FILE`` (the console script's whole body; a real process for the tail rewrite) and
``POST /api/v1/audit/checkpoint/verify``. Each kind is done at the first or last
event and at a seeded random one, by an intruder with the database's keys (the
append-only triggers switched off, as a superuser can). Pass criterion: 100 %
detected, and 0 false alarms on clean logs grown by real payouts and reversals.
"""

from __future__ import annotations

import json
import os
import random
import subprocess

import pytest

from terminal.services import counter, payouts, verifications
from tests import test_cli
from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary, set_float
from tests.reliability.conftest import SOAK
from tests.servers import SCRIPT
from tests.services.test_audit_checkpoints import KINDS, _fill, _tamper
from tests.services.test_receipts import pay_now
from tests.test_cli import _clean_env

EVENTS = 30
# CI: each kind once, alternately at its edge and at a seeded random event (the
# service test adds three seeded rounds per kind); soak: the edge and eight seeds each.
CASES = (
    [(kind, position) for kind in KINDS for position in ("edge", *(f"seed-{n}" for n in range(8)))]
    if SOAK
    else [(kind, "edge" if n % 2 else "seed-0") for n, kind in enumerate(KINDS)]
)
CLEAN_RUNS = 100 if SOAK else 12

run = test_cli.run  # a command line run as the console script does


def _position(kind: str, position: str, total: int) -> int:
    """Return where to tamper: the first or last event it can hit, or a seeded one."""
    lowest = 2 if kind == "truncate_tail" else 1
    if position == "edge":
        return lowest if kind in ("rewrite_tail", "delete") else total
    return random.Random(f"{kind}-{position}").randrange(lowest, total + 1)


@pytest.mark.parametrize(("kind", "position"), CASES)
def test_each_kind_is_caught_by_the_kept_checkpoint(
    client, world, session, run, db_url, tmp_path, kind, position
):
    auditor = bearer(api_token(client, world.users["auditor"].username))
    _fill(session, EVENTS)
    total = _total(client, auditor)
    kept = client.get("/api/v1/audit/checkpoint", headers=auditor).get_json()
    assert kept["seq"] == total
    path = tmp_path / "checkpoint.json"
    path.write_text(json.dumps(kept))
    clean = run("audit-verify", "--checkpoint", str(path))
    assert clean.returncode == 0, clean.stderr  # no false alarm before

    seq = _position(kind, position, total)
    _tamper(session, kind, seq, total)
    session.expire_all()

    if kind == "rewrite_tail":
        # The auditor's real process, with nothing but the database and the file.
        env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
        env.update(_clean_env(db_url, tmp_path))
        caught = subprocess.run(
            [str(SCRIPT), "audit-verify", "--checkpoint", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    else:
        caught = run("audit-verify", "--checkpoint", str(path))
    assert caught.returncode == 1, (kind, seq, caught.stdout, caught.stderr)
    assert "Traceback" not in caught.stderr
    check = client.post("/api/v1/audit/checkpoint/verify", json=kept, headers=auditor)
    assert check.status_code == 200 and check.get_json()["ok"] is False, (kind, seq)
    chain_alone = run("audit-verify")
    if kind in ("truncate_tail", "rewrite_tail"):
        # The chain is whole again: only the checkpoint kept outside tells.
        assert chain_alone.returncode == 0, chain_alone.stderr
    else:
        assert chain_alone.returncode == 1, (kind, seq)


def _total(client, auditor) -> int:
    body = client.get("/api/v1/audit/verify", headers=auditor).get_json()
    assert body["ok"] is True, body
    return body["events"]


def test_clean_logs_grown_by_payouts_and_reversals_never_alarm(
    app, client, world, session, run, tmp_path
):
    auditor = bearer(api_token(client, world.users["auditor"].username))
    clerk, supervisor = world.users["clerk"], world.users["supervisor"]
    set_float(session, "HTBD", 10**10)
    rng = random.Random(19)
    kept: list[dict] = []
    for n in range(CLEAN_RUNS):
        # Real events: a payout through the one payment path, some reversed, and
        # the events of other writers, at random, with checkpoints taken between.
        person = make_beneficiary(
            session,
            f"TTH{n + 1:07d}",
            commune=world.point_a.communes[0],
            full_name=f"Nguyễn Thị Ánh {n} 'O\u2019Brien' 😀",
            id_number=f"0461{n:08d}",
        )
        found = verifications.verify_collector(
            session,
            clerk,
            beneficiary_code=person.code,
            collector="beneficiary",
            id_number=person.id_number,
        )
        due = counter.beneficiary_file(session, clerk, person.code).due
        payout = pay_now(
            app,
            session,
            clerk,
            payouts.PayoutOrder(found.verification.id, tuple(e.id for e in due), "cash", None),
        )
        if rng.random() < 0.3:
            payouts.reverse_payout(session, supervisor, payout.id, reason="Nhầm người nhận")
        if rng.random() < 0.3:
            _fill(session, rng.randrange(1, 4), start=1000 + n * 10)
        if rng.random() < 0.5:
            kept.append(client.get("/api/v1/audit/checkpoint", headers=auditor).get_json())
        for checkpoint in kept[-2:]:
            answer = client.post(
                "/api/v1/audit/checkpoint/verify", json=checkpoint, headers=auditor
            ).get_json()
            assert answer["ok"] is True, (n, answer)
    assert len(kept) >= 3
    total = _total(client, auditor)
    for checkpoint in kept:
        path = tmp_path / f"checkpoint-{checkpoint['seq']}.json"
        path.write_text(json.dumps(checkpoint))
        result = run("audit-verify", "--checkpoint", str(path))
        assert result.returncode == 0, result.stderr
        assert f"intact: {total} events, extends checkpoint {checkpoint['seq']}" in result.stdout
