"""The audit trail's page: events newest first, verification, checkpoints kept and checked."""

from __future__ import annotations

import io
import json

from sqlalchemy import text

from terminal.db import write_transaction
from terminal.models import AuditAction
from terminal.services.audit import record_event
from tests.audit_tamper import guards_off
from tests.conftest import csrf_from


def _fill(session, n):
    for i in range(n):
        with write_transaction(session):
            record_event(
                session,
                actor="clerk1",
                action=AuditAction.PAYOUT_RECORDED,
                object_type="payout",
                object_id=1000 + i,
                data={"amount_vnd": 540000},
            )


def test_events_page_by_page_newest_first_and_filtered(as_role, session):
    _fill(session, 120)
    auditor = as_role("auditor")
    first = auditor.get("/trail/")
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    seqs = [int(s) for s in _seqs(page)]
    assert len(seqs) == 50 and seqs == sorted(seqs, reverse=True)
    older = auditor.get(f"/trail/?before={seqs[-1]}").get_data(as_text=True)
    seqs2 = [int(s) for s in _seqs(older)]
    assert seqs2[0] == seqs[-1] - 1 and len(seqs2) == 50
    newer = auditor.get(f"/trail/?after={seqs2[0]}").get_data(as_text=True)
    assert [int(s) for s in _seqs(newer)] == seqs
    one = auditor.get("/trail/?object_type=payout&object_id=1007").get_data(as_text=True)
    assert len(_seqs(one)) == 1
    for junk in ("before=-1", "after=abc", "action=<script>", "object_id=" + "9" * 500):
        assert auditor.get(f"/trail/?{junk}").status_code == 200


def _seqs(page):
    import re

    return re.findall(r'data-testid="event-row">\s*<td class="num">(\d+)</td>', page)


def test_verify_download_a_checkpoint_and_check_it(as_role, session):
    _fill(session, 5)
    auditor = as_role("auditor")
    page = auditor.get("/trail/?verify=1").get_data(as_text=True)
    assert 'data-testid="chain-result"' in page and "ok" in page.split("chain-result")[0][-40:]
    kept = auditor.get("/trail/checkpoint.json")
    assert kept.status_code == 200
    assert "attachment" in kept.headers["Content-Disposition"]
    body = json.loads(kept.get_data(as_text=True))
    assert set(body) == {"seq", "hash", "at", "signature"}

    def check(raw, name="checkpoint.json"):
        token = csrf_from(auditor.get("/trail/").get_data(as_text=True))
        return auditor.post(
            "/trail/checkpoint",
            data={"csrf_token": token, "file": (io.BytesIO(raw), name)},
            content_type="multipart/form-data",
        )

    good = check(json.dumps(body).encode())
    assert good.status_code == 200
    assert 'class="result ok"' in good.get_data(as_text=True)
    with write_transaction(session), guards_off(session.connection()):
        session.execute(text("DELETE FROM audit_events WHERE seq >= 4"))
    broken = check(json.dumps(body).encode()).get_data(as_text=True)
    assert 'class="result stop"' in broken
    assert check(b"\xff\xfe not json").status_code == 400
    assert check(b"{}", name="x.txt").status_code == 400


def test_the_trail_is_for_auditors_only(as_role):
    for role in ("clerk", "supervisor", "admin"):
        response = as_role(role).get("/trail/")
        assert response.status_code == 403, role
