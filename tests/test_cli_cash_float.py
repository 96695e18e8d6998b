"""``payout-terminal cash-float``, run as a real process (API.md, running a day)."""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import func, select, update

from terminal.clock import today_local
from terminal.models import AuditEvent, CashFloat, User
from terminal.services.audit import verify_chain
from tests import test_cli
from tests.api.test_day_api import pay
from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary, make_point, make_user
from tests.test_cli import one_line_error

run = test_cli.run  # the fixture running the real console script


def floats(session):
    """Return every cash float and the audit chain's length, to prove nothing changed."""
    session.rollback()
    session.expire_all()
    rows = session.execute(
        select(CashFloat.point_id, CashFloat.business_date, CashFloat.advance_vnd).order_by(
            CashFloat.id
        )
    ).all()
    return rows, session.scalar(select(func.count(AuditEvent.seq)))


def test_records_todays_advance_audited_as_cli(run, world, session):
    result = run("cash-float", "HTBD", "--advance", "50000000")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines == [
        f"cash float HTBD {today_local().isoformat()}: advance 50.000.000 đ, "
        "paid in cash 0 đ (0 payouts), remaining 50.000.000 đ"
    ], result.stdout
    session.rollback()
    row = session.scalars(select(CashFloat)).one()
    assert (row.point_id, row.business_date, row.advance_vnd) == (
        world.point_a.id,
        today_local(),
        50_000_000,
    )
    # Recorded in the name of the point's supervisor, whose duty the float is...
    assert session.get(User, row.recorded_by_id).username == "supervisor1"
    # ...and the audit trail says the command line did it.
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (event.actor, event.action, event.object_id) == ("cli", "cash_float.set", str(row.id))
    assert verify_chain(session).ok


def cli(app, *args):
    """Run a command in-process (a real process costs seconds on a busy machine)."""
    return app.test_cli_runner().invoke(args=list(args))


def test_another_day_a_lower_case_code_and_dotted_thousands(app, world, session):
    result = cli(app, "cash-float", "plvt", "--advance", "7.500.000", "--date", "2021-10-04")
    assert result.exit_code == 0, result.output
    assert "cash float PLVT 2021-10-04: advance 7.500.000 đ" in result.output
    replaced = cli(app, "cash-float", "PLVT", "--advance", "0", "--date", "2021-10-04")
    assert replaced.exit_code == 0, replaced.output
    session.rollback()
    rows, _events = floats(session)
    assert [(r.point_id, r.business_date, r.advance_vnd) for r in rows] == [
        (world.point_b.id, date(2021, 10, 4), 0)
    ]


def test_bad_input_fails_with_one_line_and_changes_nothing(run, app, world, session):
    assert cli(app, "cash-float", "HTBD", "--advance", "1000000").exit_code == 0
    before = floats(session)
    for args, fragment in [
        (["NOPE", "--advance", "5"], "Error: no payout point NOPE"),
        (["HTBD", "--advance", "1e6"], "Error: Invalid value for '--advance'"),
    ]:
        line = one_line_error(run("cash-float", *args))
        assert line.startswith(fragment), (args, line)
    assert floats(session) == before


def test_every_kind_of_bad_input_is_refused(app, world, session):
    """The same command in-process (a real process costs seconds): a reason, no change."""
    # A point whose only supervisor left: nobody to record its float for.
    make_point(session, "PLLC", district="Phú Lộc", communes=("Lộc Trì",))
    gone = make_user(session, "supervisorc", "supervisor", point="PLLC")
    session.execute(update(User).where(User.id == gone.id).values(active=False))
    session.commit()
    assert cli(app, "cash-float", "HTBD", "--advance", "1000000").exit_code == 0
    before = floats(session)
    cases = [
        (["NOPE", "--advance", "5"], "no payout point NOPE"),
        (["H", "--advance", "5"], "point code"),
        (["HT\x01BD", "--advance", "5"], "point code"),
        (["PLLC", "--advance", "5"], "no active supervisor"),
        (["HTBD"], "--advance"),
        (["HTBD", "--advance", ""], "--advance"),
        (["HTBD", "--advance", "abc"], "--advance"),
        (["HTBD", "--advance", "-5"], "--advance"),
        (["HTBD", "--advance", "1e6"], "--advance"),
        (["HTBD", "--advance", "5.5"], "--advance"),
        (["HTBD", "--advance", "540.000,5"], "--advance"),
        (["HTBD", "--advance", "１０００"], "--advance"),
        (["HTBD", "--advance", "true"], "--advance"),
        (["HTBD", "--advance", "10000000000001"], "--advance"),
        (["HTBD", "--advance", "9" * 5000], "--advance"),
        (["HTBD", "--advance", "5", "--date", "2021-13-01"], "--date"),
        (["HTBD", "--advance", "5", "--date", "2021-02-30"], "--date"),
        (["HTBD", "--advance", "5", "--date", "20211001"], "--date"),
        (["HTBD", "--advance", "5", "--date", "2021-10-01T00:00"], "--date"),
        (["HTBD", "--advance", "5", "--date", "yesterday"], "--date"),
        (["HTBD", "--advance", "5", "--date", ""], "--date"),
        (["HTBD", "--advance", "5", "--date", "0001-01-01"], "between 2000-01-01"),
        (["HTBD", "--advance", "5", "--date", "1999-12-31"], "between 2000-01-01"),
        (["HTBD", "--advance", "5", "--date", "9999-12-31"], "between 2000-01-01"),
        (
            ["HTBD", "--advance", "5", "--date", (today_local() + timedelta(days=32)).isoformat()],
            "between 2000-01-01",
        ),
    ]
    for args, fragment in cases:
        result = cli(app, "cash-float", *args)
        assert result.exit_code != 0, args[:3]
        assert result.exception is None or isinstance(result.exception, SystemExit), args[:3]
        assert fragment in result.output, (args[:3], result.output)
    assert floats(session) == before


def test_advance_below_the_cash_paid_is_refused(run, app, world, session, client):
    commune = world.point_a.communes[0]
    hoa = make_beneficiary(session, "TTH0000001", commune=commune, id_number="046153060816")
    lan = make_beneficiary(
        session, "TTH0000002", commune=commune, full_name="Trần Thị Lan", id_number="046160000002"
    )
    assert cli(app, "cash-float", "HTBD", "--advance", "2000000").exit_code == 0
    clerk = bearer(api_token(client, "clerk1"))
    pay(client, clerk, hoa)
    paid = pay(client, clerk, lan)
    before = floats(session)
    refused = run("cash-float", "HTBD", "--advance", "1079999")
    line = one_line_error(refused)
    assert f"1080000 đồng already paid in cash on {today_local().isoformat()}" in line
    assert floats(session) == before
    exact = cli(app, "cash-float", "HTBD", "--advance", "1080000")
    assert exact.exit_code == 0, exact.output
    assert "paid in cash 1.080.000 đ (2 payouts), remaining 0 đ" in exact.output
    # A reversal puts the cash back: the advance may come down to what is still out.
    supervisor = bearer(api_token(client, "supervisor1"))
    reversed_ = client.post(
        f"/api/v1/payouts/{paid['payout_id']}/reversal",
        json={"reason": "Trả nhầm người nhận"},
        headers=supervisor,
    )
    assert reversed_.status_code == 200
    lower = cli(app, "cash-float", "HTBD", "--advance", "540000")
    assert lower.exit_code == 0, lower.output
    assert "paid in cash 540.000 đ (1 payout), remaining 0 đ" in lower.output


def test_help_names_the_options(app):
    result = cli(app, "cash-float", "--help")
    assert result.exit_code == 0
    assert "--advance" in result.output and "--date" in result.output
