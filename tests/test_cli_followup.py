"""``payout-terminal followup-summary``: the chat group's evening message, from the queue."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import Failure, FailureReason, FailureStatus, utcnow
from terminal.services import followup
from terminal.services.failures import log_failure
from tests.factories import make_beneficiary
from tests.test_cli_cash_float import cli


def test_the_summary_counts_cases_by_point_owner_and_reason(app, world, session):
    clerk, clerk_b = world.users["clerk"], world.users_b["clerk"]
    here = make_beneficiary(session, "TTH0000001", commune=world.point_a.communes[0])
    there = make_beneficiary(
        session, "TTH0000003", commune=world.point_b.communes[0], id_number="046160000009"
    )
    absent = log_failure(
        session, user=clerk, reason=FailureReason.RECIPIENT_ABSENT, beneficiary_id=here.id
    )
    otp = log_failure(
        session, user=clerk_b, reason=FailureReason.OTP_NOT_RECEIVED, beneficiary_id=there.id
    )
    settled = log_failure(session, user=clerk, reason=FailureReason.OTHER, beneficiary_id=here.id)
    # An attempt (a wrong card) is not work: not counted.
    log_failure(session, user=clerk, reason=FailureReason.ID_MISMATCH, beneficiary_id=here.id)
    with write_transaction(session):
        # The OTP case was opened a week ago, is owned by the clerk of PLVT and overdue.
        session.execute(
            update(Failure)
            .where(Failure.id == otp.id)
            .values(
                created_at=utcnow() - timedelta(days=7),
                due_by=today_local() - timedelta(days=5),
                assignee_id=clerk_b.id,
            )
        )
        session.execute(
            update(Failure)
            .where(Failure.id == settled.id)
            .values(status=FailureStatus.RESOLVED, resolved_at=utcnow())
        )
    session.expire_all()
    summary = followup.daily_summary(session, None)
    assert [
        (r.district, r.point, r.opened, r.resolved, r.open, r.overdue) for r in summary.points
    ] == [
        ("Hương Thủy", "HTBD", 2, 1, 1, 0),
        ("Phú Lộc", "PLVT", 0, 0, 1, 1),
    ]
    assert summary.overdue_by_owner == {"clerkb": 1}
    assert summary.overdue_by_reason == {"otp_not_received": 1}
    # A supervisor sees their point only.
    mine = followup.daily_summary(session, world.users["supervisor"])
    assert [r.point for r in mine.points] == ["HTBD"]
    assert absent.is_case

    result = cli(app, "followup-summary")
    assert result.exit_code == 0, result.output
    text = result.output
    day = today_local().strftime("%d/%m/%Y")
    assert text.splitlines()[0] == f"Theo dõi xử lý ngày {day}"
    assert "Mở mới 2 · đã xử lý 1 · đang mở 2 · quá hạn 1" in text
    assert "- HTBD: mở mới 2, đã xử lý 1, đang mở 1, quá hạn 0" in text
    assert "- clerkb: 1" in text
    assert "Quá hạn theo lý do:" in text and "OTP" in text
    # No personal data in a message meant for a chat group.
    assert "Lê Thị Hương" not in text and "046153060816" not in text


def test_an_earlier_day_and_bad_dates(app, world):
    result = cli(app, "followup-summary", "--date", "2021-10-04")
    assert result.exit_code == 0, result.output
    assert "04/10/2021" in result.output and "Không có hồ sơ nào." in result.output
    for bad in ("04/10/2021", "9999-12-31", "2021-02-30", ""):
        refused = cli(app, "followup-summary", "--date", bad)
        assert refused.exit_code != 0, bad
        assert "--date" in refused.output and "Traceback" not in refused.output
