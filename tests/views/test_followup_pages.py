"""The follow-up pages: the queue oldest first, working a case, the daily summary."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from terminal.clock import today_local
from terminal.db import write_transaction
from terminal.models import AuditEvent, Failure, FailureNote, FailureReason, utcnow
from terminal.services.failures import log_failure
from tests.conftest import csrf_from
from tests.factories import make_beneficiary


def cases(session, world):
    clerk, clerk_b = world.users["clerk"], world.users_b["clerk"]
    here = make_beneficiary(session, "TTH0000001", commune=world.point_a.communes[0])
    there = make_beneficiary(
        session, "TTH0000003", commune=world.point_b.communes[0], id_number="046160000009"
    )
    old = log_failure(
        session, user=clerk, reason=FailureReason.OTP_NOT_RECEIVED, beneficiary_id=here.id
    )
    new = log_failure(
        session, user=clerk, reason=FailureReason.RECIPIENT_ABSENT, beneficiary_id=here.id
    )
    theirs = log_failure(session, user=clerk_b, reason=FailureReason.OTHER, beneficiary_id=there.id)
    with write_transaction(session):
        session.execute(
            update(Failure)
            .where(Failure.id == old.id)
            .values(
                created_at=utcnow() - timedelta(days=8),
                due_by=today_local() - timedelta(days=6),
            )
        )
    return old, new, theirs


def test_the_queue_lists_the_points_cases_oldest_first_with_overdue_marked(as_role, world, session):
    old, new, theirs = cases(session, world)
    page = as_role("supervisor").get("/followup/").get_data(as_text=True)
    assert page.index(f"#{old.id}<") < page.index(f"#{new.id}<")
    assert f"#{theirs.id}<" not in page
    assert page.count('data-testid="overdue"') == 1
    assert "Lê Thị Hương" not in page  # masked in lists
    overdue = as_role("supervisor").get("/followup/?overdue=1").get_data(as_text=True)
    assert f"#{old.id}<" in overdue and f"#{new.id}<" not in overdue
    everywhere = as_role("auditor").get("/followup/").get_data(as_text=True)
    assert all(f"#{c.id}<" in everywhere for c in (old, new, theirs))
    by_reason = as_role("auditor").get("/followup/?reason=other&point=plvt").get_data(as_text=True)
    assert f"#{theirs.id}<" in by_reason and f"#{old.id}<" not in by_reason
    # Junk filters are ignored, not errors.
    assert as_role("auditor").get("/followup/?reason=%00x&commune=" + "x" * 500).status_code in (
        200,
        400,
    )


def test_the_supervisor_works_a_case_and_staff_only_read(as_role, world, session):
    old, _new, theirs = cases(session, world)
    supervisor = as_role("supervisor")
    url = f"/followup/{old.id}"
    page = supervisor.get(url).get_data(as_text=True)
    saved = supervisor.post(
        url,
        data={
            "csrf_token": csrf_from(page),
            "status": "in_progress",
            "assignee": "clerk1",
            "note": "Đã gọi nhà mạng, chờ gửi lại OTP",
        },
    )
    assert saved.status_code == 303, saved.get_data(as_text=True)[:500]
    shown = supervisor.get(url).get_data(as_text=True)
    assert "Đã gọi nhà mạng, chờ gửi lại OTP" in shown and "clerk1" in shown
    session.rollback()
    failure = session.get(Failure, old.id)
    assert (failure.status, failure.assignee.username) == ("in_progress", "clerk1")
    assert session.scalar(select(FailureNote.text)) == "Đã gọi nhà mạng, chờ gửi lại OTP"
    assert session.scalar(select(AuditEvent.action).where(AuditEvent.action == "failure.updated"))
    # An owner that is not a choice is refused, and changes nothing.
    bad = supervisor.post(
        url, data={"csrf_token": csrf_from(shown), "status": "open", "assignee": "clerkb"}
    )
    assert bad.status_code == 400
    session.rollback()
    assert session.get(Failure, old.id).status == "in_progress"
    # The clerk reads the case but has no form, and a post is refused.
    clerk = as_role("clerk")
    page = clerk.get(url).get_data(as_text=True)
    assert 'data-testid="case-form"' not in page and "Đã gọi nhà mạng" in page
    token = csrf_from(clerk.get("/counter/").get_data(as_text=True))
    assert clerk.post(url, data={"csrf_token": token, "status": "resolved"}).status_code == 403
    # Another point's case looks like none.
    assert supervisor.get(f"/followup/{theirs.id}").status_code == 404


def test_the_daily_summary_page(as_role, world, session):
    cases(session, world)
    page = as_role("supervisor").get("/followup/summary").get_data(as_text=True)
    assert 'data-testid="summary"' in page and "HTBD" in page and "PLVT" not in page
    assert "Theo dõi xử lý ngày" in page
    audited = as_role("auditor").get("/followup/summary").get_data(as_text=True)
    assert "PLVT" in audited
    earlier = as_role("auditor").get("/followup/summary?date=2021-10-04").get_data(as_text=True)
    assert "04/10/2021" in earlier
    bad = as_role("auditor").get("/followup/summary?date=9999-99-99")
    assert bad.status_code == 200


def test_two_missed_periods_are_listed_reached_and_exported(as_role, world, session):
    from terminal.models import Entitlement, Period

    commune = world.point_a.communes[0]
    both = make_beneficiary(
        session,
        "TTH0000011",
        commune=commune,
        full_name="Trần Thị Lan",
        phone="0912345678",
        periods=(("2021-09", 0), ("2021-10", 0)),
        proxy={"full_name": "Hồ Văn Nam", "id_number": "046080000012", "relationship": "Con"},
    )
    make_beneficiary(
        session, "TTH0000012", commune=commune, id_number="046160000012", periods=(("2021-10", 0),)
    )
    paid = make_beneficiary(
        session,
        "TTH0000013",
        commune=commune,
        id_number="046160000013",
        periods=(("2021-09", 0), ("2021-10", 0)),
    )
    make_beneficiary(
        session,
        "TTH0000014",
        commune=world.point_b.communes[0],
        id_number="046160000014",
        periods=(("2021-09", 0), ("2021-10", 0)),
    )
    with write_transaction(session):
        october = session.scalar(select(Period.id).where(Period.code == "2021-10"))
        session.execute(
            update(Entitlement)
            .where(Entitlement.beneficiary_id == paid.id, Entitlement.period_id == october)
            .values(status="paid")
        )
    supervisor = as_role("supervisor")
    page = supervisor.get("/followup/at-risk").get_data(as_text=True)
    assert page.count('data-testid="at-risk-row"') == 1
    assert "TTH0000011" in page and "Trần Thị Lan" not in page and "0912345678" not in page
    assert "2021-09" in page and "2021-10" in page and "Con" in page
    token = csrf_from(page)
    opened = supervisor.post("/followup/at-risk/cases", data={"csrf_token": token})
    assert opened.status_code == 303
    again = supervisor.post("/followup/at-risk/cases", data={"csrf_token": token})
    assert again.status_code == 303
    session.rollback()
    cases = session.scalars(
        select(Failure).where(Failure.detail_code == "followup.two_missed_periods")
    ).all()
    assert [(c.beneficiary_id, c.reason, c.is_case) for c in cases] == [
        (both.id, "recipient_absent", True)
    ]
    page = supervisor.get("/followup/at-risk").get_data(as_text=True)
    assert f"#{cases[0].id}<" in page
    csv_text = supervisor.get("/followup/at-risk?format=csv").get_data(as_text=True)
    assert csv_text.splitlines()[0].startswith("commune,village,code")
    assert "TTH0000011" in csv_text and "0912345678" not in csv_text
    import io

    from openpyxl import load_workbook

    xlsx = supervisor.get("/followup/at-risk?format=xlsx")
    assert xlsx.mimetype.endswith("spreadsheetml.sheet")
    sheet = load_workbook(io.BytesIO(xlsx.get_data())).active
    table = list(sheet.iter_rows(values_only=True))
    assert table[0][:3] == ("commune", "village", "code")
    assert [r[2] for r in table[1:]] == ["TTH0000011"] and table[1][6] == 1_080_000
    # The clerk reads the list but cannot open cases from it; the auditor sees every point.
    clerk = as_role("clerk")
    assert "at-risk-open" not in clerk.get("/followup/at-risk").get_data(as_text=True)
    clerk_token = csrf_from(clerk.get("/counter/").get_data(as_text=True))
    refused = clerk.post("/followup/at-risk/cases", data={"csrf_token": clerk_token})
    assert refused.status_code == 403
    assert "TTH0000014" in as_role("auditor").get("/followup/at-risk").get_data(as_text=True)
