# ruff: noqa: F811  (the fixtures imported from test_delivery_api are what the tests take)
"""Home delivery's sync against what a review found could pay twice or hide it.

Each test was first a reproduction of a defect (a device token paying people off its
route, a case about money gone out settled by the next payout, a deadlock between a
second absence and a payout, 500s on extreme times, an absence case for someone paid
after it, an expired route's reservations outliving it); they now hold the fixes.
"""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from terminal.models import Beneficiary, DeliveryRoute, Entitlement, Failure, Payout, Proxy, utcnow
from tests.api.test_delivery_api import (  # noqa: F401  (fixtures)
    count,
    counter_pay,
    device,
    now_vn,
    payout_item,
    people,
    person_of,
    ref,
    route,
    sup,
    sync,
    visit,
)
from tests.conftest import bearer
from tests.factories import make_user, set_float


def entitlements_of(session, code):
    session.rollback()
    person = session.scalar(select(Beneficiary.id).where(Beneficiary.code == code))
    return list(session.scalars(select(Entitlement).where(Entitlement.beneficiary_id == person)))


def test_a_tablet_pays_nobody_off_its_route(client, route, device, session):
    account_holder = entitlements_of(session, "TTH0000003")[0]
    item = {
        "client_ref": ref(),
        "beneficiary_code": "TTH0000003",
        "entitlement_ids": [account_holder.id],
        "collector": "beneficiary",
        "verified_by": "id_number",
        "paid_at": now_vn(-5),
    }
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "rejected" and result["error"] == "not_on_route"
    assert count(session, Payout) == 0
    case = session.get(Failure, result["failure_id"])
    assert case.entitlement_id == account_holder.id  # the case names what the tablet paid


def test_another_delivery_users_tablet_cannot_pay_this_route(client, world, route, session, sup):
    make_user(session, "delivery2", "delivery", point="HTBD")
    other = client.post(
        "/api/v1/devices", json={"name": "T2", "username": "delivery2"}, headers=sup
    ).get_json()
    (result,) = sync(client, (0, bearer(other["token"])), [payout_item(route, "TTH0000001")])[
        "results"
    ]
    assert result["error"] == "not_on_route"
    assert count(session, Payout) == 0


def test_a_proxy_revoked_after_paying_at_home_was_authorised(client, route, device, session):
    tam = person_of(route, "TTH0000005")
    item = payout_item(
        route,
        "TTH0000005",
        collector="proxy",
        proxy_id=tam["proxies"][0]["id"],
        paid_at=now_vn(-60),
    )
    session.rollback()
    session.execute(
        update(Proxy).where(Proxy.id == tam["proxies"][0]["id"]).values(revoked_at=utcnow())
    )
    session.commit()
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "applied"


def test_a_rejected_items_case_outlives_a_later_payout(client, route, device, sup, session):
    set_float(session, "HTBD")
    item = payout_item(route, "TTH0000001", signature_png="bm90IGEgcG5n")
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "rejected"
    client.delete(f"/api/v1/routes/{route['created']['route_id']}/people/TTH0000001", headers=sup)
    assert (
        counter_pay(client, "TTH0000001", "046153060816", item["entitlement_ids"]).status_code
        == 201
    )
    session.rollback()
    assert session.get(Failure, result["failure_id"]).status.value == "open"


def test_a_double_payment_case_outlives_a_reversal_and_a_new_payout(
    client, route, sup, device, session
):
    set_float(session, "HTBD")
    item = payout_item(route, "TTH0000001")
    client.delete(f"/api/v1/routes/{route['created']['route_id']}/people/TTH0000001", headers=sup)
    first = counter_pay(client, "TTH0000001", "046153060816", item["entitlement_ids"]).get_json()
    (result,) = sync(client, device, [item])["results"]
    assert result["status"] == "conflict"
    reversal = client.post(
        f"/api/v1/payouts/{first['payout_id']}/reversal",
        json={"reason": "nhầm người nhận"},
        headers=sup,
    )
    assert reversal.status_code == 200
    assert (
        counter_pay(client, "TTH0000001", "046153060816", item["entitlement_ids"]).status_code
        == 201
    )
    session.rollback()
    assert session.get(Failure, result["failure_id"]).status.value == "open"


def test_a_reported_death_stays_open_after_a_payout(client, route, device, sup, session):
    set_float(session, "HTBD")
    answer = sync(client, device, visits=[visit("TTH0000006", "deceased")])["visits"][0]
    client.delete(f"/api/v1/routes/{route['created']['route_id']}/people/TTH0000006", headers=sup)
    ids = [e["id"] for e in person_of(route, "TTH0000006")["entitlements"]]
    assert counter_pay(client, "TTH0000006", "046160000006", ids).status_code == 201
    session.rollback()
    assert session.get(Failure, answer["failure_id"]).status.value == "open"


@pytest.mark.parametrize(
    "moment", ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "2021-10-01"]
)
def test_extreme_times_are_rejected_not_a_500(client, route, device, session, moment):
    (result,) = sync(client, device, [payout_item(route, "TTH0000001", paid_at=moment)])["results"]
    assert result["error"] == "paid_at_invalid"
    (answer,) = sync(client, device, visits=[visit("TTH0000006", "absent", at=moment)])["visits"]
    assert answer["error"] == "at_invalid"
    assert count(session, Payout) == 0


def test_bad_values_of_every_kind_are_answered(client, route, device, sup):
    bad = [
        payout_item(route, "TTH0000001", entitlement_ids=[2**62 - 1]),
        payout_item(route, "TTH0000001", proxy_id=True, collector="proxy"),
        payout_item(route, "TTH0000001", lat=1e308, lon=1),
        payout_item(route, "TTH0000001", signature_png="data:image/png;base64,"),
        payout_item(route, "TTH0000001", beneficiary_code=["x"]),
        payout_item(route, "TTH0000001", entitlement_ids="1"),
        {"client_ref": ["a"]},
        {"client_ref": "x" * 70},
    ]
    results = sync(client, device, bad)["results"]
    # A NUL anywhere is refused before any view, the whole request (nothing written).
    nul = payout_item(route, "TTH0000001", beneficiary_code="TTH\x000001")
    assert (
        client.post("/api/v1/sync", json={"payouts": [nul]}, headers=device[1]).status_code == 400
    )
    assert [r["status"] for r in results] == ["rejected"] * len(bad)
    for note in (["x"], {"a": 1}, 5, "\u202e" * 10, "a" * 5000):
        response = client.post(
            "/api/v1/sync",
            json={"visits": [visit("TTH0000006", "refused", note=note)]},
            headers=device[1],
        )
        assert response.status_code == 200
    for response in (
        client.post(
            "/api/v1/routes",
            json={"username": "delivery1", "period": "2021-10", "beneficiary_codes": ["A\x00B"]},
            headers=sup,
        ),
        client.delete(f"/api/v1/routes/{route['created']['route_id']}/people/A%00B", headers=sup),
        client.post(
            "/api/v1/devices", json={"name": "x\x00y", "username": "deliv\x00ery1"}, headers=sup
        ),
    ):
        assert response.status_code in (400, 404, 422)


def test_no_absence_case_for_someone_paid_after_the_visit(client, route, device, session):
    sync(client, device, visits=[visit("TTH0000006", "absent", -300)])
    paid = payout_item(route, "TTH0000006", paid_at=now_vn(-10))
    morning = visit("TTH0000006", "absent", -120)  # before the payout, synced with it
    answers = sync(client, device, [paid], [morning])
    assert answers["results"][0]["status"] == "applied"
    assert "case" not in answers["visits"][0]
    assert count(session, Failure, Failure.reason == "recipient_absent") == 0


def test_an_expired_routes_reservations_lapse(client, route, device, sup, session):
    set_float(session, "HTBD")
    session.rollback()
    session.execute(update(DeliveryRoute).values(expires_at=utcnow() - timedelta(minutes=1)))
    session.commit()
    assert client.get("/api/v1/routes/current", headers=device[1]).status_code == 404
    again = client.post(
        "/api/v1/routes",
        json={"username": "delivery1", "period": "2021-10", "beneficiary_codes": ["TTH0000002"]},
        headers=sup,
    )
    assert again.status_code == 201, again.get_json()
    assert again.get_json()["route_id"] != route["created"]["route_id"]
    ids = [e["id"] for e in person_of(route, "TTH0000001")["entitlements"]]
    assert counter_pay(client, "TTH0000001", "046153060816", ids).status_code == 201


def test_a_second_absence_and_a_payout_at_once_do_not_deadlock(app, client, route, device, sup):
    """The second absence releases entitlements: it takes them before the audit head."""
    sync(client, device, visits=[visit("TTH0000006", "absent", -300)])
    item = payout_item(route, "TTH0000006")
    answers = {}
    barrier = threading.Barrier(2)

    def send(name, body):
        with app.test_client() as own:
            barrier.wait()
            answers[name] = own.post("/api/v1/sync", json=body, headers=device[1])

    threads = [
        threading.Thread(target=send, args=("payout", {"payouts": [item]})),
        threading.Thread(target=send, args=("visit", {"visits": [visit("TTH0000006", "absent")]})),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers["payout"].status_code == 200
    assert answers["visit"].status_code == 200
