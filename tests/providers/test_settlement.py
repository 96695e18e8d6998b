"""The provider's settlement file against the terminal's withdrawals (API.md)."""

from __future__ import annotations

from datetime import timedelta

from openpyxl import Workbook
from sqlalchemy import func, select

from terminal.models import AuditEvent, Entitlement, Failure, Payout, SettlementImport, Withdrawal
from terminal.services.audit import verify_chain
from tests import test_cli
from tests.providers.helpers import Agent, account_holder

run = test_cli.run  # the fixture running a command line as the console script does


def _paid(client, session, sandbox, http_point, n):
    person = account_holder(session, http_point, n, amount=500_000 + n)
    agent = Agent(client)
    body = agent.start(person).get_json()
    answer = agent.otp(body["withdrawal_id"], sandbox.otp(body["client_ref"]))
    assert answer.status_code == 201, answer.get_json()
    return body["client_ref"], answer.get_json()


def _counts(session):
    session.rollback()
    return (
        session.scalar(select(func.count(Failure.id))),
        session.scalar(select(func.count(SettlementImport.id))),
        session.scalar(select(func.count(AuditEvent.seq))),
    )


def test_matched_missing_and_different_amounts_each_open_a_case(
    run, client, http_point, session, sandbox, tmp_path
):
    refs = [_paid(client, session, sandbox, http_point, n) for n in (31, 32, 33)]
    when = refs[0][1]["paid_at"]
    (ok, ok_body), (short, _), (absent, absent_body) = refs
    path = tmp_path / "vtp-10-2021.csv"
    path.write_text(
        "client_ref;amount;status;time\n"
        f"{ok};{ok_body['amount']};paid;{when}\n"
        f"{short};1.000;paid;{when}\n"  # another amount than the terminal paid
        f"PLVT-never-seen;250000;paid;{when}\n"  # paid by the provider, not here
        f"PLVT-cancelled;250000;cancelled;{when}\n",  # not paid: not a difference
        encoding="utf-8-sig",
    )
    failures_before = _counts(session)[0]
    result = run("import-settlement", str(path), "--point", "plvt")
    assert result.returncode == 0, result.stderr
    assert (
        "4 rows, 1 matched, 1 missing at the terminal, 1 missing at the provider" in result.stdout
    )
    assert "1 amount differences; 3 follow-up cases" in result.stdout
    assert (
        f"missing at the provider: {absent} (terminal_amount={absent_body['amount']}"
        in result.stdout
    )
    session.rollback()
    record = session.scalars(select(SettlementImport)).one()
    assert (record.matched, record.missing_at_terminal, record.missing_at_provider) == (1, 1, 1)
    cases = session.scalars(select(Failure).where(Failure.id > failures_before)).all()
    assert sorted(c.detail_code for c in cases) == [
        "settlement.amount_difference",
        "settlement.missing_at_provider",
        "settlement.missing_at_terminal",
    ]
    assert all(c.is_case and c.status.value == "open" for c in cases)
    # The differences about known withdrawals name their beneficiary.
    by_code = {c.detail_code: c for c in cases}
    known = session.scalars(select(Withdrawal).where(Withdrawal.client_ref == short)).one()
    assert by_code["settlement.amount_difference"].beneficiary_id == known.beneficiary_id
    assert by_code["settlement.missing_at_terminal"].beneficiary_id is None
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.action == "settlement.imported" and event.actor == "cli"
    assert verify_chain(session).ok


def test_a_bad_row_refuses_the_whole_file_and_changes_nothing(
    run, client, http_point, session, sandbox, tmp_path
):
    ref, body = _paid(client, session, sandbox, http_point, 34)
    before = _counts(session)
    path = tmp_path / "bad.csv"
    path.write_text(
        "client_ref,amount,status,time\n"
        f"PLVT-x,100000,paid,{body['paid_at']}\n"
        f"{ref},12.5,paid,{body['paid_at']}\n"
        "PLVT-x,100000,paid,not a time\n",
        encoding="utf-8",
    )
    result = run("import-settlement", str(path), "--point", "PLVT")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "row 3" in result.stderr and "row 4" in result.stderr
    assert _counts(session) == before
    missing = tmp_path / "cols.csv"
    missing.write_text("reference,money\nA,1\n", encoding="utf-8")
    result = run("import-settlement", str(missing), "--point", "PLVT")
    assert result.returncode != 0
    assert "lacks the column(s) amount, status" in result.stderr  # "reference" is an alias
    assert _counts(session) == before


def test_an_excel_file_and_the_months_it_spans(run, client, http_point, session, sandbox, tmp_path):
    ref, body = _paid(client, session, sandbox, http_point, 35)
    session.rollback()
    paid_at = session.scalars(select(Payout.paid_at)).one()
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Mã tham chiếu", "Số tiền", "Trạng thái", "Thời gian"])
    sheet.append(
        [ref, body["amount"], "Thành công", paid_at.replace(tzinfo=None) + timedelta(hours=7)]
    )
    path = tmp_path / "vtp.xlsx"
    workbook.save(path)
    result = run("import-settlement", str(path), "--point", "PLVT")
    assert result.returncode == 0, result.stderr
    assert (
        "1 rows, 1 matched, 0 missing at the terminal, 0 missing at the provider" in result.stdout
    )


def test_points_are_connected_and_disconnected_from_the_command_line(run, world, session):
    connected = run(
        "set-adapter", "plvt", "--adapter", "http", "--provider-url", "http://10.0.0.5:8080/"
    )
    assert connected.returncode == 0, connected.stderr
    assert connected.stdout.strip() == "point PLVT: adapter http at http://10.0.0.5:8080"
    for url in ("ftp://10.0.0.5", "10.0.0.5:8080", "http://x/?q=1", "javascript:alert(1)"):
        bad = run("set-adapter", "PLVT", "--adapter", "http", "--provider-url", url)
        assert bad.returncode != 0 and "http:// or https://" in bad.stderr, url
    assert "http" in run("set-adapter", "PLVT", "--adapter", "http").stderr
    back = run("set-adapter", "PLVT", "--adapter", "manual")
    assert back.stdout.strip() == "point PLVT: adapter manual"
    created = run(
        "create-point",
        "PLX1",
        "--name",
        "Đại lý",
        "--kind",
        "agent",
        "--district",
        "Phú Lộc",
        "--communes",
        "Lăng Cô",
        "--adapter",
        "http",
        "--provider-url",
        "https://bridge.example/vtp",
    )
    assert created.returncode == 0, created.stderr
    assert "provider https://bridge.example/vtp" in created.stdout
    session.rollback()
    from terminal.models import PayoutPoint

    point = session.scalars(select(PayoutPoint).where(PayoutPoint.code == "PLX1")).one()
    assert (point.adapter.value, point.provider_url) == ("http", "https://bridge.example/vtp")
    assert (
        session.scalars(select(PayoutPoint).where(PayoutPoint.code == "PLVT")).one().provider_url
        is None
    )


def test_extreme_times_and_a_file_matched_twice_are_refused(
    run, client, http_point, session, sandbox, tmp_path
):
    ref, body = _paid(client, session, sandbox, http_point, 36)
    before = _counts(session)
    for when in ("9999-12-31 10:00", "0001-01-01T00:00+14:00", "1999-12-31"):
        path = tmp_path / "extreme.csv"
        path.write_text(f"client_ref,amount,status,time\n{ref},{body['amount']},paid,{when}\n")
        result = run("import-settlement", str(path), "--point", "PLVT")
        assert result.returncode != 0 and "Traceback" not in result.stderr, when
        assert "row 2" in result.stderr and "2000" in result.stderr
    assert _counts(session) == before
    good = tmp_path / "good.csv"
    good.write_text(
        f"client_ref,amount,status,time\n{ref},{body['amount']},paid,{body['paid_at']}\n"
    )
    assert run("import-settlement", str(good), "--point", "PLVT").returncode == 0
    twice = run("import-settlement", str(good), "--point", "PLVT")
    assert twice.returncode != 0 and "already matched" in twice.stderr
    assert _counts(session)[1] == before[1] + 1


def test_a_roster_import_leaves_a_held_period_alone(client, http_point, session, sandbox, tmp_path):
    from terminal.services.roster import import_roster
    from terminal.services.roster_file import write_roster_csv

    person = account_holder(session, http_point, 37)
    body = Agent(client).start(person).get_json()
    session.rollback()
    row = {
        "code": person.code,
        "full_name": "Trần Văn Bảy",  # (the helper numbers names; a roster may not)
        "date_of_birth": person.date_of_birth,
        "birth_year": person.birth_year,
        "gender": person.gender.value,
        "category": person.category.value,
        "id_number": person.id_number,
        "phone": None,
        "district": "Phú Lộc",
        "commune": http_point.communes[0].name,
        "village": person.village,
        "monthly_vnd": 700_000,  # the ministry raised it while the withdrawal waits
        "arrears_vnd": 0,
        "payment_method": "account",
        "provider": "viettel_pay",
        "account_no": person.account_no,
        "status": "active",
    }
    path = tmp_path / "roster.csv"
    write_roster_csv([row], path)
    report = import_roster(session, path, period="2021-10", actor="test")
    assert any("withdrawal" in flag.reason for flag in report.flags), (
        report.rejections,
        report.counts(),
        report.flags,
    )
    session.rollback()
    held = session.get(Withdrawal, body["withdrawal_id"])
    entitlement = session.get(Entitlement, held.entitlement_list[0])
    assert entitlement.amount_vnd == 540_000 and entitlement.held_by_withdrawal_id == held.id
