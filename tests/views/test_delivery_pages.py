"""The supervisors' home-delivery pages: routes chosen village by village, a route and its
people, the tablets and their one-time pairing code, and the counter's notice."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta, timezone

import pytest
from flask_babel import force_locale
from sqlalchemy import func, select

from terminal.messages import MESSAGES
from terminal.models import Device, Entitlement, FailureReason
from terminal.services.failures import log_failure
from tests.conftest import bearer, csrf_from
from tests.factories import make_beneficiary

VN = timezone(timedelta(hours=7))


@pytest.fixture
def people(world, session):
    """Three cash beneficiaries in two villages of point A, an account holder, one at B."""
    a = world.point_a.communes[0]
    made = {
        "hoa": make_beneficiary(session, "TTH0000001", commune=a, id_number="046153060816"),
        "lan": make_beneficiary(
            session,
            "TTH0000002",
            commune=a,
            full_name="Trần Thị Lan",
            id_number="046160000002",
            periods=(("2021-09", 0), ("2021-10", 0)),
        ),
        "son": make_beneficiary(
            session, "TTH0000006", commune=a, full_name="Lê Văn Sơn", id_number="046160000006"
        ),
        "acc": make_beneficiary(
            session,
            "TTH0000003",
            commune=a,
            full_name="Phan Văn Minh",
            id_number="046160000003",
            method="account",
            provider="viettel_pay",
        ),
        "far": make_beneficiary(
            session,
            "TTH0000004",
            commune=world.point_b.communes[0],
            full_name="Hồ Thị Mai",
            id_number="046160000004",
        ),
    }
    # Sơn lives in another village than the others (the factory puts everyone in Thôn 2).
    from terminal.db import write_transaction

    with write_transaction(session):
        made["son"].village = "Thôn 5"
    return made


@pytest.fixture
def as_english(as_role):
    """Return a function giving a client of a role that reads the pages in English.

    The pages speak Vietnamese by default; the English msgids are what these tests
    read, whatever the state of the catalogue.
    """

    def sign_in(role: str):
        client = as_role(role)
        home = client.get("/").get_data(as_text=True)
        client.post("/lang", data={"csrf_token": csrf_from(home), "lang": "en", "next": "/"})
        return client

    return sign_in


def form_data(page: str, **extra) -> dict:
    """Return the route form's CSRF token and period as the page gives them, plus extra."""
    period = re.search(r'name="period" type="hidden" value="([^"]+)"', page)
    period = period or re.search(r'id="period" name="period" type="hidden" value="([^"]+)"', page)
    return {"csrf_token": csrf_from(page), "period": period.group(1), **extra}


def new_route(client, codes, *, period="2021-10", username="delivery1", **extra):
    """Post the new-route form as a person would after ticking people."""
    page = client.get(f"/delivery/routes/new?period={period}").get_data(as_text=True)
    data = {
        "csrf_token": csrf_from(page),
        "period": period,
        "username": username,
        "people": list(codes),
        "action": "create",
        **extra,
    }
    return client.post("/delivery/routes/new", data=data)


def reserved(session, person):
    session.rollback()
    return list(
        session.scalars(
            select(Entitlement.reserved_route_id).where(Entitlement.beneficiary_id == person.id)
        )
    )


def route_id_of(response) -> int:
    return int(response.headers["Location"].rstrip("/").rsplit("/", 1)[1])


# ---- a new route ---------------------------------------------------------------------


def test_the_new_route_page_lists_the_candidates_by_village(as_english, people):
    page = as_english("supervisor").get("/delivery/routes/new").get_data(as_text=True)
    assert page.count('data-testid="village"') == 2
    assert page.index("Thôn 2") < page.index("Lê Thị Hương") < page.index("Thôn 5")
    assert page.index("Thôn 5") < page.index("Lê Văn Sơn")
    # Cash people with something due only; the account holder and the other point's are not.
    assert "Phan Văn Minh" not in page and "Hồ Thị Mai" not in page
    # ID numbers masked; the year of birth and the amount with the earlier month.
    assert "046153060816" not in page and "********0816" in page
    assert "1953" in page
    assert "1.080.000 đ" in page and "09/2021: 540.000 đ" in page
    assert 'value="delivery1"' in page


def test_the_supervisor_creates_a_route_from_the_page(as_english, people, session):
    client = as_english("supervisor")
    response = new_route(client, ["TTH0000001", "TTH0000002"])
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    route_id = route_id_of(response)
    assert response.headers["Location"].endswith(f"/delivery/routes/{route_id}")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert 'data-testid="flash-success"' in page
    assert page.count('data-testid="route-person"') == 2
    assert "Trần Thị Lan" in page and "1.080.000 đ" in page
    assert page.count('data-status="waiting"') == 2
    assert reserved(session, people["lan"]) == [route_id, route_id]
    assert reserved(session, people["son"]) == [None]
    index = client.get("/delivery/").get_data(as_text=True)
    assert f'data-route-id="{route_id}"' in index
    # Those two are no longer offered for a new route.
    again = client.get("/delivery/routes/new").get_data(as_text=True)
    assert "Trần Thị Lan" not in again and "Lê Văn Sơn" in again


def test_select_the_whole_village_works_without_javascript(as_english, people, session):
    client = as_english("supervisor")
    page = client.get("/delivery/routes/new").get_data(as_text=True)
    key = re.search(r'name="village" value="([^"]+)"[^>]*>\s*[^<]*', page).group(1)
    response = client.post(
        "/delivery/routes/new",
        data=form_data(page, username="delivery1", village=key),
    )
    assert response.status_code == 200
    ticked = response.get_data(as_text=True)
    assert re.search(r'value="TTH0000001" checked', ticked)
    assert re.search(r'value="TTH0000002" checked', ticked)
    assert not re.search(r'value="TTH0000006" checked', ticked)
    assert "Unselect the village" in ticked
    assert reserved(session, people["hoa"]) == [None]  # nothing changed yet
    # Pressed again with the whole village ticked: the village is unticked.
    again = client.post(
        "/delivery/routes/new",
        data=form_data(
            ticked, username="delivery1", village=key, people=["TTH0000001", "TTH0000002"]
        ),
    ).get_data(as_text=True)
    assert not re.search(r'value="TTH0000001" checked', again)
    assert not re.search(r'value="TTH0000002" checked', again)


def test_the_filter_keeps_the_people_ticked(as_english, people):
    client = as_english("supervisor")
    found = client.get("/delivery/routes/new?q=tran thi").get_data(as_text=True)
    assert "Trần Thị Lan" in found and "Lê Thị Hương" not in found
    assert "Lê Văn Sơn" not in client.get("/delivery/routes/new?q=TTH0000001").get_data(
        as_text=True
    )
    page = client.get("/delivery/routes/new").get_data(as_text=True)
    filtered = client.post(
        "/delivery/routes/new",
        data=form_data(page, username="delivery1", q="son", action="filter", people=["TTH0000001"]),
    ).get_data(as_text=True)
    assert "Lê Văn Sơn" in filtered and "Lê Thị Hương" not in filtered
    # The ticked person filtered out stays in the form.
    assert re.search(r'type="hidden" name="people" value="TTH0000001"', filtered)


def test_the_problems_are_listed_next_to_each_person(as_english, people, session):
    client = as_english("supervisor")
    response = new_route(client, ["TTH0000001", "TTH0000003", "NOSUCH"])
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    problems = dict(re.findall(r'data-testid="route-problem" data-code="([^"]+)">(.*?)</li>', page))
    assert set(problems) == {"TTH0000003", "NOSUCH"}
    assert "Phan Văn Minh" in problems["TTH0000003"]
    assert "paid through an account" in problems["TTH0000003"]
    assert "not found in the communes" in problems["NOSUCH"]
    assert reserved(session, people["hoa"]) == [None]  # all or nothing
    # The good one stays ticked for the next try.
    assert re.search(r'value="TTH0000001" checked', page)


def test_the_problems_are_shown_in_vietnamese(app, as_role, people):
    page = new_route(as_role("supervisor"), ["TTH0000003"]).get_data(as_text=True)
    assert 'lang="vi"' in page
    with app.test_request_context(), force_locale("vi"):
        expected = str(MESSAGES["route_people_invalid.paid_by_account"])
    assert f"TTH0000003</span>: {expected}</li>" in page


def test_a_person_on_another_users_route_is_refused(as_english, people, world, session):
    from tests.factories import make_user

    make_user(session, "delivery2", "delivery", point="HTBD", full_name="Võ Văn Hai")
    client = as_english("supervisor")
    assert new_route(client, ["TTH0000001"]).status_code == 303
    refused = new_route(client, ["TTH0000001"], username="delivery2")
    assert refused.status_code == 422
    assert "already on another staff member" in refused.get_data(as_text=True)


def test_nobody_ticked_is_a_clear_refusal(as_english, people):
    response = new_route(as_english("supervisor"), [])
    assert response.status_code == 400
    assert "Tick at least one person." in response.get_data(as_text=True)


# ---- a route -------------------------------------------------------------------------


def test_release_returns_a_person_to_the_counter(as_english, people, session):
    client = as_english("supervisor")
    route_id = route_id_of(new_route(client, ["TTH0000001", "TTH0000002"]))
    page = client.get(f"/delivery/routes/{route_id}").get_data(as_text=True)
    assert page.count('data-testid="release"') == 2
    response = client.post(
        f"/delivery/routes/{route_id}/people/TTH0000002/release",
        data={"csrf_token": csrf_from(page)},
    )
    assert response.status_code == 303
    after = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Trần Thị Lan (TTH0000002)" in after  # the flash names the person
    assert after.count('data-testid="release"') == 1
    assert 'data-status="released"' in after
    assert reserved(session, people["lan"]) == [None, None]
    assert reserved(session, people["hoa"]) == [route_id]
    # Someone not on the route: a message, nothing else changes.
    missing = client.post(
        f"/delivery/routes/{route_id}/people/TTH0000006/release",
        data={"csrf_token": csrf_from(after)},
        follow_redirects=True,
    )
    assert "This person is not on the route." in missing.get_data(as_text=True)


def test_the_route_page_shows_paid_people_with_their_receipt(as_english, people, client, session):
    supervisor = as_english("supervisor")
    route_id = route_id_of(new_route(supervisor, ["TTH0000001", "TTH0000006"]))
    token = register(supervisor)[1]
    header = bearer(token)
    route = client.get("/api/v1/routes/current", headers=header).get_json()
    hoa = next(p for p in route["people"] if p["code"] == "TTH0000001")
    from tests.factories import set_float

    set_float(session, "HTBD")
    now = datetime.now(VN)
    synced = client.post(
        "/api/v1/sync",
        json={
            "payouts": [
                {
                    "client_ref": "t-" + secrets.token_hex(12),
                    "beneficiary_code": "TTH0000001",
                    "entitlement_ids": [e["id"] for e in hoa["entitlements"]],
                    "collector": "beneficiary",
                    "verified_by": "id_number",
                    "paid_at": (now - timedelta(minutes=30)).isoformat(timespec="seconds"),
                }
            ],
            "visits": [
                {
                    "client_ref": "t-" + secrets.token_hex(12),
                    "beneficiary_code": "TTH0000006",
                    "outcome": "absent",
                    "at": (now - timedelta(minutes=20)).isoformat(timespec="seconds"),
                }
            ],
        },
        headers=header,
    ).get_json()
    receipt_no = synced["results"][0]["receipt_no"]
    page = supervisor.get(f"/delivery/routes/{route_id}").get_data(as_text=True)
    assert receipt_no in page and 'data-testid="receipt-link"' in page
    assert 'data-status="paid"' in page and 'data-status="absent"' in page
    paid_at = (now - timedelta(minutes=30)).strftime("%d/%m/%Y %H:%M")
    assert paid_at in page
    index = supervisor.get("/delivery/").get_data(as_text=True)
    row = index[index.index(f'data-route-id="{route_id}"') :]
    assert re.search(r'data-testid="route-paid">1<', row)
    assert re.search(r'data-testid="route-absent">1<', row)


def test_another_points_supervisor_cannot_see_the_route(app, as_english, people, world):
    route_id = route_id_of(new_route(as_english("supervisor"), ["TTH0000001"]))
    from tests.conftest import login

    other = app.test_client()
    login(other, world.users_b["supervisor"].username)
    assert other.get(f"/delivery/routes/{route_id}").status_code == 404
    csrf = csrf_from(other.get("/").get_data(as_text=True))
    release = other.post(
        f"/delivery/routes/{route_id}/people/TTH0000001/release", data={"csrf_token": csrf}
    )
    assert release.status_code == 404
    assert f'data-route-id="{route_id}"' not in other.get("/delivery/").get_data(as_text=True)


@pytest.mark.parametrize("role", ["clerk", "agent", "delivery", "auditor", "admin"])
def test_only_supervisors_open_the_pages(as_role, role):
    assert as_role(role).get("/delivery/").status_code == 403


# ---- tablets -------------------------------------------------------------------------


def register(client, name="Máy tính bảng 1", username="delivery1"):
    """Register a tablet through the form; return the page and the token it shows."""
    form = client.get("/delivery/devices").get_data(as_text=True)
    key = re.search(r'name="form_key" type="hidden" value="([^"]+)"', form)
    key = key or re.search(r'id="form_key" name="form_key" type="hidden" value="([^"]+)"', form)
    data = {
        "csrf_token": csrf_from(form),
        "form_key": key.group(1),
        "name": name,
        "username": username,
    }
    response = client.post("/delivery/devices", data=data)
    token = re.search(r'data-testid="pair-token">([^<]+)<', response.get_data(as_text=True))
    return response, token.group(1) if token else None, data


def test_registering_a_tablet_shows_its_pairing_code_once(app, as_english, world, session, client):
    supervisor = as_english("supervisor")
    response, token, data = register(supervisor)
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    link = f"{app.config['PUBLIC_URL']}/tablet/#pair={token}"
    assert f'data-testid="pair-link">{link}<' in page
    assert 'src="data:image/svg+xml;base64,' in page
    assert 'data-testid="shown-once"' in page
    # The token pairs the tablet with delivery1.
    me = client.get("/api/v1/devices/current", headers=bearer(token))
    assert me.status_code == 200 and me.get_json()["user"]["username"] == "delivery1"
    # A reload sends the same form again: no second tablet, no token shown again.
    again = supervisor.post("/delivery/devices", data=data)
    assert again.status_code == 303
    listed = supervisor.get(again.headers["Location"]).get_data(as_text=True)
    assert token not in listed and 'data-testid="flash-warning"' in listed
    assert listed.count('data-testid="device-row"') == 1
    session.rollback()
    assert session.scalar(select(func.count()).select_from(Device)) == 1
    # The list never shows it either.
    assert token not in supervisor.get("/delivery/").get_data(as_text=True)


def test_a_tablet_is_refused_for_someone_not_in_delivery(as_english, world, session):
    response, token, _ = register(as_english("supervisor"), username="clerk1")
    assert response.status_code == 422 and token is None
    assert "This user is not home-delivery staff." in response.get_data(as_text=True)
    empty, token, _ = register(as_english("supervisor"), name="   ")
    assert empty.status_code == 400 and token is None


def test_revoking_a_tablet_stops_its_token(as_english, world, client):
    supervisor = as_english("supervisor")
    _, token, _ = register(supervisor)
    page = supervisor.get("/delivery/devices").get_data(as_text=True)
    device_id = re.search(r'data-device-id="(\d+)"', page).group(1)
    assert 'data-state="active"' in page and 'data-testid="revoke"' in page
    response = supervisor.post(
        f"/delivery/devices/{device_id}/revoke", data={"csrf_token": csrf_from(page)}
    )
    assert response.status_code == 303
    after = supervisor.get(response.headers["Location"]).get_data(as_text=True)
    assert "Máy tính bảng 1" in after and 'data-testid="flash-success"' in after
    assert 'data-state="revoked"' in after and 'data-testid="revoke"' not in after
    assert client.get("/api/v1/devices/current", headers=bearer(token)).status_code == 401
    # A tablet that is not the point's looks missing.
    missing = supervisor.post(
        "/delivery/devices/999999/revoke", data={"csrf_token": csrf_from(after)}
    )
    assert missing.status_code == 404


# ---- the counter ---------------------------------------------------------------------


def test_the_counter_shows_the_reservation_and_does_not_offer_it(
    as_english, people, world, session
):
    binh = make_beneficiary(
        session,
        "TTH0000009",
        commune=world.point_a.communes[0],
        full_name="Đỗ Văn Bình",
        id_number="046160000009",
        periods=(("2021-10", 0), ("2021-11", 0)),
    )
    route_id = route_id_of(new_route(as_english("supervisor"), ["TTH0000001", "TTH0000009"]))
    clerk = as_english("clerk")
    page = clerk.get("/counter/b/TTH0000001").get_data(as_text=True)
    notice = re.search(r'data-testid="reserved-for-delivery">(.*?)</div>', page, re.S).group(1)
    assert world.users["delivery"].full_name in notice and f"#{route_id}" in notice
    assert 'data-testid="nothing-payable-here"' in page
    assert 'data-testid="verify-form"' not in page
    assert 'data-testid="open-route"' not in page  # the clerk cannot release
    supervisor_view = as_english("supervisor").get("/counter/b/TTH0000001").get_data(as_text=True)
    assert f"/delivery/routes/{route_id}#p-TTH0000001" in supervisor_view
    # A later period than the route's stays payable at the counter, and only it is offered.
    both = clerk.get("/counter/b/TTH0000009").get_data(as_text=True)
    assert 'data-testid="reserved-period"' in both and 'data-testid="payable-total"' in both
    verified = clerk.post(
        "/counter/b/TTH0000009/verify",
        data={"csrf_token": csrf_from(both), "collector": "auto", "identity": "046160000009"},
    )
    assert verified.status_code == 303
    confirm = clerk.get(verified.headers["Location"]).get_data(as_text=True)
    offered = re.findall(r'name="entitlements" value="(\d+)"', confirm)
    session.rollback()
    november = session.scalar(
        select(Entitlement.id).where(
            Entitlement.beneficiary_id == binh.id, Entitlement.reserved_route_id.is_(None)
        )
    )
    assert offered == [str(november)]
    assert 'data-testid="reserved-for-delivery"' in confirm


def test_the_counter_shows_the_home_visits(as_english, people, client, session):
    supervisor = as_english("supervisor")
    new_route(supervisor, ["TTH0000006"])
    _, token, _ = register(supervisor)
    at = (datetime.now(VN) - timedelta(minutes=5)).replace(microsecond=0)
    synced = client.post(
        "/api/v1/sync",
        json={
            "payouts": [],
            "visits": [
                {
                    "client_ref": "t-" + secrets.token_hex(12),
                    "beneficiary_code": "TTH0000006",
                    "outcome": "refused",
                    "at": at.isoformat(),
                    "note": "Muốn nhận tại bưu điện",
                }
            ],
        },
        headers=bearer(token),
    )
    assert synced.status_code == 200, synced.get_json()
    page = as_english("clerk").get("/counter/b/TTH0000006").get_data(as_text=True)
    assert 'data-testid="home-visit" data-outcome="refused"' in page
    assert at.strftime("%d/%m/%Y %H:%M") in page and "Muốn nhận tại bưu điện" in page
    # The case it opened says what happened, the note included.
    assert "The person refused the payment at home (Muốn nhận tại bưu điện)." in page


# ---- the follow-up queue ---------------------------------------------------------------


def test_a_possible_double_payment_reads_well_in_the_queue(as_english, people, world, session):
    failure = log_failure(
        session,
        user=world.users["delivery"],
        reason=FailureReason.POSSIBLE_DOUBLE_PAYMENT,
        detail_code="delivery.possible_double_payment",
        params={
            "client_ref": "t-0123456789abcdef",
            "amount": 540000,
            "entitlement_ids": "7, 8",
            "paid_at": "12/10/2021 09:30",
        },
        beneficiary_id=people["hoa"].id,
        escalated=True,
    )
    supervisor = as_english("supervisor")
    queue = supervisor.get("/followup/?reason=possible_double_payment").get_data(as_text=True)
    assert f"#{failure.id}<" in queue and "Possible double payment" in queue
    case = supervisor.get(f"/followup/{failure.id}").get_data(as_text=True)
    assert "A tablet paid 540.000 đồng at home on 12/10/2021 09:30" in case
