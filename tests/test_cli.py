"""The payout-terminal command line (API.md, Command line): in process, and as a real process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from terminal import cli
from terminal.db import get_engine, make_engine
from terminal.models import PayoutPoint, User
from terminal.schema import head_revision
from tests.audit_tamper import guards_off
from tests.conftest import PG_URL, SECRET

SCRIPT = Path(sys.executable).parent / "payout-terminal"


def _clean_env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """The settings a command sees: the test database, nothing of the caller's."""
    return {
        "TERMINAL_DATABASE_URL": db_url,
        "TERMINAL_SECRET_KEY": SECRET,
        "TERMINAL_RECEIPTS_DIR": str(tmp_path / "receipts"),
    }


@pytest.fixture
def run(db_url, tmp_path):
    """Return a function running a command line in this process, as the console script does.

    The command goes through ``terminal.cli.run``, the console script's whole body
    (argument parsing, settings from the environment, one-line errors, exit code);
    a real process costs a second or more each on a busy machine, so only
    ``test_the_console_script_is_a_real_process`` pays for some.
    """
    settings = _clean_env(db_url, tmp_path)
    apps: list = []

    def factory():
        app = cli._app_for_cli()
        apps.append(app)
        return app

    def invoke(*args: str, stdin: str = "", extra_env: dict[str, str] | None = None):
        env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TERMINAL_")}
        env.update(settings, **(extra_env or {}))
        runner = CliRunner()
        with runner.isolation(input=stdin, env=env) as (out, err, _):
            code = cli.run(list(args), app_factory=factory)
        return subprocess.CompletedProcess(
            args, code, out.getvalue().decode(), err.getvalue().decode()
        )

    yield invoke
    for app in apps:
        get_engine(app).dispose()


@pytest.fixture
def run_process(db_url, tmp_path):
    """Return a function running the installed console script as its own process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(_clean_env(db_url, tmp_path))

    def invoke(*args: str, stdin: str = "", extra_env: dict[str, str] | None = None):
        return subprocess.run(
            [str(SCRIPT), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env={**env, **(extra_env or {})},
            timeout=120,
        )

    return invoke


def one_line_error(result) -> str:
    """Assert a command failed with a one-line reason and no traceback; return it."""
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_init_db_is_safe_twice(run):
    first = run("init-db")
    assert first.returncode == 0, first.stderr
    second = run("init-db")
    assert second.returncode == 0, second.stderr
    assert head_revision() in second.stdout


def test_init_db_on_a_new_sqlite_file(tmp_path, run):
    url = f"sqlite:///{tmp_path / 'new' / 'fresh.db'}"
    (tmp_path / "new").mkdir()
    result = run("init-db", extra_env={"TERMINAL_DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert "migrated from empty" in result.stdout


def test_create_point_then_update(run, db_url):
    created = run(
        "create-point",
        "htbd",
        "--name",
        "Bưu điện Hương Thủy",
        "--kind",
        "post_office",
        "--district",
        "Hương Thủy",
        "--communes",
        "Thủy Dương;Thủy Vân; Phú Bài ;",
    )
    assert created.returncode == 0, created.stderr
    assert "HTBD created: 3 communes" in created.stdout
    updated = run(
        "create-point",
        "HTBD",
        "--name",
        "Bưu điện TX Hương Thủy",
        "--kind",
        "post_office",
        "--district",
        "Hương Thủy",
        "--communes",
        "Thủy Dương",
    )
    assert updated.returncode == 0, updated.stderr
    assert "updated: 1 communes" in updated.stdout
    engine = make_engine(db_url)
    with engine.connect() as conn:
        names = conn.execute(select(PayoutPoint.name)).scalars().all()
    engine.dispose()
    assert names == ["Bưu điện TX Hương Thủy"]


@pytest.mark.parametrize(
    "args, fragment",
    [
        (
            [
                "create-point",
                "H",
                "--name",
                "x",
                "--kind",
                "post_office",
                "--district",
                "d",
                "--communes",
                "a",
            ],
            "code",
        ),
        (
            [
                "create-point",
                "HTBD",
                "--name",
                "x",
                "--kind",
                "bank",
                "--district",
                "d",
                "--communes",
                "a",
            ],
            "kind",
        ),
        (
            [
                "create-point",
                "HTBD",
                "--name",
                "x",
                "--kind",
                "agent",
                "--district",
                "d",
                "--communes",
                ";;",
            ],
            "commune",
        ),
        (["create-user", "bob", "--role", "clerk", "--password-stdin"], "point"),
        (["create-user", "bob", "--role", "wizard", "--password-stdin"], "role"),
        (["create-user", "b", "--role", "admin", "--password-stdin"], "username"),
        (["create-user", "bob", "--role", "clerk", "--point", "NOPE", "--password-stdin"], "NOPE"),
        (["create-user", "bob", "--role", "admin", "--point", "NOPE", "--password-stdin"], "point"),
        (["no-such-command"], "No such command"),
    ],
)
def test_bad_arguments_give_one_line(run, args, fragment):
    line = one_line_error(run(*args, stdin="long-enough-password\n"))
    assert fragment.lower() in line.lower()


def test_create_user_reads_password_from_stdin(run, db_url):
    run(
        "create-point",
        "HTBD",
        "--name",
        "Bưu điện",
        "--kind",
        "post_office",
        "--district",
        "Hương Thủy",
        "--communes",
        "Thủy Dương",
    )
    result = run(
        "create-user",
        "Mai.Nguyen",
        "--role",
        "clerk",
        "--point",
        "htbd",
        "--password-stdin",
        stdin="a-long-password-1\n",
    )
    assert result.returncode == 0, result.stderr
    assert "a-long-password-1" not in result.stdout + result.stderr
    short = run("create-user", "other", "--role", "auditor", "--password-stdin", stdin="short\n")
    assert "10" in one_line_error(short)
    again = run(
        "create-user",
        "mai.nguyen",
        "--role",
        "auditor",
        "--password-stdin",
        stdin="another-password\n",
    )
    assert "exists" in one_line_error(again)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        row = conn.execute(select(User.username, User.password_hash)).one()
    engine.dispose()
    assert row.username == "mai.nguyen"
    assert row.password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("TERMINAL_DATABASE_URL", "mysql://x/y", "DATABASE_URL"),
        ("TERMINAL_DATABASE_URL", "not a url", "DATABASE_URL"),
        ("TERMINAL_DATABASE_URL", "sqlite://", "DATABASE_URL"),
        ("TERMINAL_SECRET_KEY", "short", "SECRET_KEY"),
        ("TERMINAL_PUBLIC_URL", "ftp://example.org", "PUBLIC_URL"),
        ("TERMINAL_PUBLIC_URL", "example.org", "PUBLIC_URL"),
        ("TERMINAL_SQLITE_SYNCHRONOUS", "NORMAL", "FULL"),
        ("TERMINAL_SQLITE_SYNCHRONOUS", "OFF", "FULL"),
        ("TERMINAL_API_TOKEN_HOURS", "0", "API_TOKEN_HOURS"),
        ("TERMINAL_API_TOKEN_HOURS", "lots", "API_TOKEN_HOURS"),
        ("TERMINAL_DEFAULT_LOCALE", "fr", "DEFAULT_LOCALE"),
        ("TERMINAL_RECEIPTS_DIR", "/etc/hostname", "RECEIPTS_DIR"),
    ],
)
def test_bad_settings_give_one_line(run, name, value, fragment):
    line = one_line_error(run("init-db", extra_env={name: value}))
    assert fragment in line


def test_unreachable_database_gives_one_line(run):
    url = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2"
    line = one_line_error(run("init-db", extra_env={"TERMINAL_DATABASE_URL": url}))
    assert "cannot open the database" in line


def test_seed_demo_prints_logins_and_refuses_a_full_database(run, db_url):
    seeded = run("seed-demo", "--scale", "0.05")
    assert seeded.returncode == 0, seeded.stderr
    for username in ("clerk", "agent", "delivery", "supervisor", "auditor", "admin"):
        assert f"  {username} " in seeded.stdout
    again = run("seed-demo")
    assert "not empty" in one_line_error(again)
    quiet = run("seed-demo", "--if-empty")
    assert quiet.returncode == 0
    assert "clerk-demo-2021" in quiet.stdout
    engine = make_engine(db_url)
    with engine.connect() as conn:
        people = conn.execute(text("SELECT count(*) FROM beneficiaries")).scalar()
        due = conn.execute(text("SELECT count(*) FROM entitlements WHERE status = 'due'")).scalar()
        floats = conn.execute(text("SELECT count(*) FROM cash_floats")).scalar()
    engine.dispose()
    assert people == round(4716 * 0.05) + round(8364 * 0.05)
    assert 0 < due <= people and floats == 3


def test_generate_writes_synthetic_data(run):
    result = run("generate", "--beneficiaries", "500", "--periods", "2")
    assert result.returncode == 0, result.stderr
    assert "generated 500 beneficiaries" in result.stdout
    assert "Error" in one_line_error(run("generate", "--beneficiaries", "0"))


def test_audit_verify(run, db_url):
    run(
        "create-point",
        "HTBD",
        "--name",
        "Bưu điện",
        "--kind",
        "post_office",
        "--district",
        "Hương Thủy",
        "--communes",
        "Thủy Dương",
    )
    ok = run("audit-verify")
    assert ok.returncode == 0, ok.stderr
    assert "intact: 1 events" in ok.stdout
    engine = make_engine(db_url)
    with engine.begin() as conn, guards_off(conn):
        conn.exec_driver_sql("UPDATE audit_events SET actor = 'someone-else' WHERE seq = 1")
    engine.dispose()
    broken = run("audit-verify")
    assert broken.returncode == 1
    assert "sequence 1" in broken.stderr


def test_audit_checkpoint_kept_then_checked(run, db_url, tmp_path):
    for code, commune in (("HTBD", "Thủy Dương"), ("HTPB", "Phú Bài")):
        created = run(
            "create-point", code, "--name", "Bưu điện", "--kind", "post_office",
            "--district", "Hương Thủy", "--communes", commune,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
    kept = tmp_path / "checkpoint.json"
    made = run("audit-checkpoint", "-o", str(kept))
    assert made.returncode == 0, made.stderr
    assert "checkpoint at sequence 2" in made.stdout
    assert set(json.loads(kept.read_text())) == {"seq", "hash", "at", "signature"}
    run("create-point", "HTTV", "--name", "Bưu điện", "--kind", "agent",
        "--district", "Hương Thủy", "--communes", "Thủy Vân")  # fmt: skip
    ok = run("audit-verify", "--checkpoint", str(kept))
    assert ok.returncode == 0, ok.stderr
    assert "intact: 3 events, extends checkpoint 2" in ok.stdout

    # Cut the tail with the head: the chain alone is whole, the checkpoint is not met.
    engine = make_engine(db_url)
    with engine.begin() as conn, guards_off(conn):
        conn.exec_driver_sql("DELETE FROM audit_events WHERE seq >= 2")
        first = conn.exec_driver_sql("SELECT hash FROM audit_events WHERE seq = 1").scalar()
        conn.execute(
            text("UPDATE audit_head SET last_seq = 1, last_hash = :h WHERE id = 1"), {"h": first}
        )
    engine.dispose()
    assert run("audit-verify").returncode == 0
    caught = run("audit-verify", "--checkpoint", str(kept))
    assert caught.returncode == 1
    assert "before the checkpoint's 2" in caught.stderr

    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps({**json.loads(kept.read_text()), "seq": 1}))
    refused = run("audit-verify", "--checkpoint", str(forged))
    assert refused.returncode == 1 and "signature" in refused.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    bad = run("audit-verify", "--checkpoint", str(garbage))
    assert bad.returncode != 0
    assert one_line_error(bad).startswith("Error:") and "not a checkpoint" in bad.stderr


@pytest.mark.skipif(
    bool(PG_URL), reason="the secret key file is only made for the default SQLite setup"
)
def test_secret_key_generated_once_with_mode_0600(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    code = (
        "import sys; from terminal import create_app; "
        "app = create_app(); print(app.config['SECRET_KEY'])"
    )
    instance = tmp_path / "instance"
    # Flask derives the instance folder from the package; point it elsewhere via a config file.
    script = (
        f"import flask; flask.Flask.auto_find_instance_path = lambda self: {str(instance)!r}; "
        + code
    )
    first = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    second = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert first.returncode == 0, first.stderr
    assert first.stdout == second.stdout and len(first.stdout.strip()) >= 32
    key_file = instance / "secret_key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert (instance / "terminal.db").exists()


def test_the_console_script_is_a_real_process(run_process, db_url):
    """The installed script: migrates, reads a password from stdin, exits non-zero with one line."""
    migrated = run_process("init-db")
    assert migrated.returncode == 0, migrated.stderr
    assert head_revision() in migrated.stdout
    user = run_process(
        "create-user", "mai", "--role", "auditor", "--password-stdin", stdin="a-long-password-1\n"
    )
    assert user.returncode == 0, user.stderr
    assert "a-long-password-1" not in user.stdout + user.stderr
    assert "No such command" in one_line_error(run_process("no-such-command"))
    bad = run_process("init-db", extra_env={"TERMINAL_SECRET_KEY": "short"})
    assert "SECRET_KEY" in one_line_error(bad)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        assert conn.execute(select(User.username)).scalars().all() == ["mai"]
    engine.dispose()
