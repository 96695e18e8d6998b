"""The health endpoint: public, cheap, 200 when the terminal can pay, 503 when it cannot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from terminal.db import get_engine, make_engine
from terminal.schema import head_revision
from tests.conftest import PG_URL, SECRET

KEYS = {"status", "database", "durability", "version", "schema", "time"}


def test_healthy_answer_has_its_shape_and_no_personal_data(app, world, client, db_url):
    answer = client.get("/healthz")
    assert answer.status_code == 200
    body = answer.get_json()
    assert set(body) == KEYS
    assert body["status"] == body["database"] == body["durability"] == "ok"
    assert body["schema"] == head_revision()
    assert body["version"] == "0.1.0"
    at = datetime.strptime(body["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - at) < timedelta(days=1)
    assert answer.headers["Cache-Control"] == "no-store"
    assert "Set-Cookie" not in answer.headers
    text_ = answer.get_data(as_text=True)
    for secret in (SECRET, db_url, world.users["clerk"].username, world.point_a.code):
        assert secret not in text_


def test_public_and_never_rate_limited(app, client):
    for _ in range(40):  # a monitor polling: never redirected to the login, never refused
        answer = client.get("/healthz")
        assert answer.status_code == 200
        assert not [h for h in answer.headers if h[0].lower().startswith("x-ratelimit")]
    assert client.head("/healthz").status_code == 200


def test_unreachable_database_answers_503_without_details(app, client, tmp_path):
    unreachable = (
        "postgresql+psycopg://nobody@127.0.0.1:1/nowhere"
        if PG_URL
        else f"sqlite:///{tmp_path / 'missing-folder' / 'terminal.db'}"
    )
    store = app.extensions["terminal.db"]
    working = store["engine"]
    store["engine"] = make_engine(unreachable)
    try:
        answer = client.get("/healthz")
    finally:
        store["engine"].dispose()
        store["engine"] = working
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "unavailable", "database": "unreachable"}
    assert "nowhere" not in answer.get_data(as_text=True)
    assert client.get("/healthz").status_code == 200  # back once the database answers


def test_schema_behind_answers_503(app, client):
    engine = get_engine(app)
    with engine.begin() as conn:
        head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
        conn.execute(text("UPDATE alembic_version SET version_num = '0007'"))
    try:
        answer = client.get("/healthz")
    finally:
        with engine.begin() as conn:  # the PostgreSQL schema outlives this test
            conn.execute(text("UPDATE alembic_version SET version_num = :h"), {"h": head})
    assert answer.status_code == 503
    assert answer.get_json() == {"status": "unavailable", "database": "schema behind"}
