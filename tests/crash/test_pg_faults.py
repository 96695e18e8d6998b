"""RELIABILITY S07: PostgreSQL connections dropped mid-transaction and during COMMIT.

A proxy on the wire (tests/crash/pgproxy.py) sits between the terminal and
PostgreSQL and cuts a connection before a payout's INSERT, before its COMMIT
reaches the database, or after the database committed but before its answer
reaches the terminal; it also drops every connection and refuses new ones, as a
restart of the database looks to its clients, and the terminal's own backends are
ended with ``pg_terminate_backend`` (the shared server itself is never restarted).

What must hold: no stack trace in any answer; an error before COMMIT says nothing
was changed, and the retry with the same Idempotency-Key pays once; a COMMIT
without an answer is "outcome unknown, do not hand over cash", and the retry
reads the key's record back (the first answer when the commit landed); no
``system_error`` case is left open for someone who was paid; no duplicate, no
loss; the served terminal recovers without a restart.
"""

from __future__ import annotations

import os
import re
import uuid
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import PG_URL, SECRET, login
from tests.crash.harness import Answer, call, check
from tests.crash.pgproxy import PgProxy, pg_proxy
from tests.crash.test_crash_payouts import payment, token_of
from tests.factories import make_beneficiary, set_float
from tests.servers import free_port, served

pytestmark = pytest.mark.skipif(
    not PG_URL,
    reason="S07 drops PostgreSQL connections: set TERMINAL_TEST_DATABASE_URL",
)


@pytest.fixture
def proxy(db_url: str) -> Any:
    """A proxy to the test's PostgreSQL database."""
    with pg_proxy(db_url) as running:
        yield running


@pytest.fixture
def settings(settings: dict[str, Any], proxy: PgProxy, db_url: str) -> dict[str, Any]:
    """The in-process app reaches the database through the proxy too."""
    return {**settings, "DATABASE_URL": proxy.url(db_url, f"p10crash-app-{uuid.uuid4().hex[:8]}")}


@pytest.fixture
def people(world: Any, session: Any) -> list[Any]:
    """Eight cash beneficiaries of point A, and a float for them."""
    found = [
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=world.point_a.communes[0],
            id_number=f"0461800{n:05d}",
            full_name="Lê Văn Bình",
        )
        for n in range(8)
    ]
    set_float(session, "HTBD", 10**12)
    # Plain values: the session's connection may be cut under it later.
    return [SimpleNamespace(code=p.code, id_number=p.id_number) for p in found]


def no_trace(answer: Answer) -> Answer:
    """Return the answer after checking it shows no stack trace."""
    assert b"Traceback" not in answer.raw and b'File "' not in answer.raw, answer.raw[:500]
    return answer


def open_system_errors(db_url: str, code: str) -> int:
    """Count the open system_error cases of a beneficiary."""
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT f.id FROM failures f "
                        "JOIN beneficiaries b ON b.id = f.beneficiary_id "
                        "WHERE b.code = :code AND f.reason = 'system_error' "
                        "AND f.status IN ('open', 'in_progress')"
                    ),
                    {"code": code},
                ).all()
            )
    finally:
        engine.dispose()


def terminate_backends(db_url: str, application_name: str) -> int:
    """End the terminal's own backends (never the shared server's others); return how many."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            return len(
                conn.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name"
                    ),
                    {"name": application_name},
                ).all()
            )
    finally:
        engine.dispose()


def test_dropped_connections_and_lost_commits_over_the_api(
    people, session, proxy, db_url, tmp_path
):
    session.close()  # its connection goes through the proxy too, which will drop it
    name = f"p10crash-server-{uuid.uuid4().hex[:8]}"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env = {
        **clean,
        "TERMINAL_DATABASE_URL": proxy.url(db_url, name),
        "TERMINAL_SECRET_KEY": SECRET,
        "TERMINAL_RECEIPTS_DIR": str(tmp_path / "receipts"),
    }
    answered: dict[int, str] = {}
    with served(env, port=free_port(), workers=1) as server:
        base = server.base
        token = token_of(base, "clerk1")

        def pay(person: Any, arm: Any) -> tuple[Answer, Answer]:
            body, key = payment(base, token, person), str(uuid.uuid4())
            arm()
            first = no_trace(call(base, "POST", "/api/v1/payouts", body, token=token, key=key))
            assert proxy.fired(), proxy.events
            retry = no_trace(call(base, "POST", "/api/v1/payouts", body, token=token, key=key))
            assert retry.status == 201, retry.body
            answered[retry.body["payout_id"]] = retry.body["receipt_no"]
            return first, retry

        # Cut mid-transaction: nothing was changed, and it says so; the retry pays.
        first, retry = pay(people[0], lambda: proxy.cut_on(b"INSERT INTO payouts"))
        assert (first.status, first.body["error"]) == (503, "unavailable")
        assert "Idempotent-Replayed" not in retry.headers
        # The COMMIT never reached the database: the outcome is unknown to the terminal.
        first, retry = pay(people[1], lambda: proxy.cut_commit("before"))
        assert (first.status, first.body["error"]) == (503, "outcome_unknown")
        assert "Idempotency-Key" in first.body["message"]  # what to do, in either language
        assert "Idempotent-Replayed" not in retry.headers
        # The COMMIT landed, its answer was lost: unknown, then the key's record answers.
        first, retry = pay(people[2], lambda: proxy.cut_commit("after"))
        assert (first.status, first.body["error"]) == (503, "outcome_unknown")
        assert retry.headers.get("Idempotent-Replayed") == "true"
        # Paid, so no system_error case may wait for a payout that already happened.
        assert open_system_errors(db_url, people[2].code) == 0
        for person in people[:2]:
            assert open_system_errors(db_url, person.code) == 0  # the retry's payout settled it

        # The terminal's backends ended (as by an administrator or a failover).
        assert terminate_backends(db_url, name) >= 1
        found = no_trace(call(base, "GET", f"/api/v1/beneficiaries/{people[3].code}", token=token))
        assert found.status == 200  # the pool saw the dead connection and made a new one
        first, retry = pay(people[3], lambda: terminate_backends(db_url, name))
        assert first.status == 201 and retry.headers.get("Idempotent-Replayed") == "true"

        # The database restarts: connections cut and refused for a while.
        body, key = payment(base, token, people[4]), str(uuid.uuid4())
        proxy.down()
        down = no_trace(call(base, "POST", "/api/v1/payouts", body, token=token, key=key))
        assert (down.status, down.body["error"]) == (503, "unavailable")
        search = no_trace(call(base, "GET", "/api/v1/beneficiaries?q=TTH", token=token))
        assert search.status == 503
        proxy.up()
        retry = no_trace(call(base, "POST", "/api/v1/payouts", body, token=token, key=key))
        assert retry.status == 201, retry.body  # recovered without a restart
        answered[retry.body["payout_id"]] = retry.body["receipt_no"]
        log = server.log()
    assert "Traceback" not in log, log[-3000:]
    check(db_url, {**env, "TERMINAL_DATABASE_URL": db_url}, answered)


def test_a_lost_commit_on_the_counter_page_says_unknown_in_vietnamese(
    app, client, people, proxy, db_url
):
    from flask_babel import force_locale

    from terminal.views.errors import outcome_unknown_message
    from tests.views.test_counter_pages import pay_form, verified_confirm_url

    person = people[0]
    login(client, "clerk1")
    confirm = verified_confirm_url(client, code=person.code, identity=person.id_number)
    _html, action, data = pay_form(client, confirm)
    proxy.cut_commit("after")
    page = client.post(action, data=data)
    assert proxy.fired(), proxy.events
    html = page.get_data(as_text=True)
    assert page.status_code == 503
    with app.test_request_context(), force_locale("vi"):
        expected = outcome_unknown_message(api=False)
    assert expected in html.replace("&#39;", "'")
    assert "Traceback" not in html and "Chưa có gì bị thay đổi" not in html
    # The same form again (F5, or Back and send): the key's record shows the payout.
    again = client.post(action, data=data)
    assert again.status_code == 303
    assert re.search(r"/counter/payouts/\d+", again.headers["Location"])
    session_engine = create_engine(db_url)
    try:
        with session_engine.connect() as conn:
            paid = conn.execute(
                text(
                    "SELECT count(*) FROM payouts p JOIN beneficiaries b "
                    "ON b.id = p.beneficiary_id WHERE b.code = :code"
                ),
                {"code": person.code},
            ).scalar()
    finally:
        session_engine.dispose()
    assert paid == 1
    assert open_system_errors(db_url, person.code) == 0


def test_a_tablet_sync_whose_commit_answer_is_lost_is_unknown_then_duplicate(
    app, client, people, proxy, db_url
):
    from tests.api.test_delivery_api import now_vn, ref
    from tests.conftest import bearer
    from tests.crash.test_crash_payouts import tablet_route

    tablet, due = tablet_route(client, people[:2])
    results = {}
    for person, when in zip(people[:2], ("before", "after"), strict=True):
        item = {
            "client_ref": ref(),
            "beneficiary_code": person.code,
            "entitlement_ids": due[person.code],
            "collector": "beneficiary",
            "verified_by": "id_number",
            "paid_at": now_vn(-5),
        }
        body = {"payouts": [item], "visits": []}
        proxy.cut_commit(when)
        lost = client.post("/api/v1/sync", json=body, headers=bearer(tablet))
        assert proxy.fired(), proxy.events
        assert lost.status_code == 503 and lost.get_json()["error"] == "outcome_unknown"
        assert "Traceback" not in lost.get_data(as_text=True)
        again = client.post("/api/v1/sync", json=body, headers=bearer(tablet))
        assert again.status_code == 200, again.get_json()
        results[when] = again.get_json()["results"][0]
    # Not committed: applied now; committed: the tablet's item is known, paid once.
    assert results["before"]["status"] == "applied"
    assert results["after"]["status"] == "duplicate"
    answered = {r["payout_id"]: r["receipt_no"] for r in results.values()}
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env = {
        **clean,
        "TERMINAL_DATABASE_URL": db_url,
        "TERMINAL_SECRET_KEY": SECRET,
        "TERMINAL_RECEIPTS_DIR": str(app.config["RECEIPTS_DIR"]),
    }
    check(db_url, env, answered)
