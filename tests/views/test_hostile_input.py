"""Hostile values in every route get a clear 4xx, never a 500 (RELIABILITY S11, S12).

Integers beyond 64 bits, dates at the ends of the calendar, NUL characters and line
breaks reach the database or a response header as errors unless they are refused
where they come in. The URL map and the API's models are walked, so a route added
later is covered without being listed here.
"""

from __future__ import annotations

import typing
from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import ValidationError
from werkzeug.routing import IntegerConverter

from terminal.api import SPECS
from terminal.authz import POLICY, PUBLIC, permission_of
from terminal.clock import FIRST_DAY, LAST_DAY
from tests.conftest import api_token, bearer, csrf_from
from tests.factories import ROLES, make_beneficiary

HUGE_INTEGERS = [str(2**63), str(2**64), "9" * 30, "1" + "0" * 4400]
EXTREME_DAYS = ["0001-01-01", "1999-12-31", "2101-01-01", "9999-12-31"]
NUL = "a\x00b"


def _role_for(app: Any, endpoint: str) -> str | None:
    """Return a role that may reach an endpoint, or None for a public one."""
    mark = permission_of(app, endpoint)
    if mark == PUBLIC:
        return None
    granted = {role.value for role in POLICY[mark]}
    return next(role for role in ROLES if role in granted)


class Caller:
    """Signed-in page clients and API tokens, one per role, made on first use."""

    def __init__(self, app: Any, world: Any, as_role: Any) -> None:
        self.app = app
        self.world = world
        self.as_role = as_role
        self.pages: dict[str | None, Any] = {}
        self.tokens: dict[str, str] = {}
        self.csrf: dict[str | None, str] = {}

    def request(
        self, endpoint: str, method: str, url: str, *, role: str | None = None, **kw: Any
    ) -> Any:
        """Send a request as a role allowed to reach the endpoint (with a CSRF token)."""
        role = role or _role_for(self.app, endpoint)
        if url.startswith("/api/"):
            client = self.app.test_client()
            headers = dict(kw.pop("headers", {}))
            if role is not None:
                if role not in self.tokens:
                    self.tokens[role] = api_token(client, self.world.users[role].username)
                headers.update(bearer(self.tokens[role]))
            return client.open(url, method=method, headers=headers, **kw)
        if role not in self.pages:
            self.pages[role] = self.as_role(role) if role else self.app.test_client()
            form_page = self.pages[role].get("/" if role else "/login")
            self.csrf[role] = csrf_from(form_page.get_data(as_text=True))
        client = self.pages[role]
        if method == "POST":
            data = {"csrf_token": self.csrf[role], **kw.pop("data", {})}
            return client.open(url, method=method, data=data, **kw)
        return client.open(url, method=method, **kw)


@pytest.fixture
def caller(app, world, as_role):
    """Return a Caller for this test's app."""
    return Caller(app, world, as_role)


def _rules(app, *, want_int: bool):
    """Yield (endpoint, method, rule) for every route, or those with an <int:...> part."""
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        has_int = any(isinstance(c, IntegerConverter) for c in rule._converters.values())
        if want_int and not has_int:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield rule.endpoint, method, rule


def _url(rule, *, integer: str = "1", text: str = "HTBD") -> str:
    """Fill a rule's placeholders: integers with one value, everything else with another."""
    parts = {
        name: integer if isinstance(converter, IntegerConverter) else text
        for name, converter in rule._converters.items()
    }
    url = rule.rule
    for name, value in parts.items():
        url = url.replace(f"<{_placeholder(rule, name)}>", quote(value, safe=""))
    return url


def _placeholder(rule, name: str) -> str:
    """Return the text between < and > for an argument of a rule (e.g. int:payout_id)."""
    start = rule.rule.index(name + ">")
    return rule.rule[rule.rule.rindex("<", 0, start) + 1 : start + len(name)]


def _assert_refused(response: Any, url: str, expected: tuple[int, ...]) -> None:
    """Check a clear refusal: the status, and on the API the JSON error shape."""
    assert response.status_code in expected, (url, response.status_code)
    if url.startswith("/api/"):
        body = response.get_json()
        assert body is not None and set(body) >= {"error", "message"}, (url, body)


def test_every_int_route_is_walked(app):
    """The walk below sees the routes it is meant to (a guard against a silent empty walk)."""
    endpoints = {endpoint for endpoint, _m, _r in _rules(app, want_int=True)}
    assert {"counter.result", "admin.edit_user", "roster.show_import"} <= endpoints


@pytest.mark.parametrize("number", HUGE_INTEGERS, ids=["2^63", "2^64", "30-digits", "4401-digits"])
def test_integers_beyond_64_bits_in_any_int_route_are_not_found(app, caller, number):
    for endpoint, method, rule in _rules(app, want_int=True):
        url = _url(rule, integer=number)
        response = caller.request(endpoint, method, url)
        _assert_refused(response, url, (404,))


def test_nul_in_any_path_or_query_is_400(app, caller):
    """NUL (PostgreSQL refuses it in text) in every route's path and query string."""
    walked = 0
    for endpoint, method, rule in _rules(app, want_int=False):
        if rule._converters and not all(
            isinstance(c, IntegerConverter) for c in rule._converters.values()
        ):
            url = _url(rule, text=NUL)
            _assert_refused(caller.request(endpoint, method, url), url, (400,))
            walked += 1
        url = _url(rule) + "?q=" + quote(NUL) + "&" + quote(NUL) + "=1"
        _assert_refused(caller.request(endpoint, method, url), url, (400,))
        walked += 1
    assert walked > 30


@pytest.mark.parametrize(
    ("endpoint", "url", "body"),
    [
        ("api.create_token", "/api/v1/tokens", {"username": NUL, "password": "x" * 12}),
        ("api.create_token", "/api/v1/tokens", {"username": "clerk1", "password": NUL * 5}),
        (
            "api.create_verification",
            "/api/v1/verifications",
            {"beneficiary_code": NUL, "collector": "beneficiary", "id_number": "046153060816"},
        ),
        (
            "api.create_verification",
            "/api/v1/verifications",
            {"beneficiary_code": "TTH0000001", "collector": "beneficiary", "id_qr": NUL},
        ),
        (
            "api.create_payout",
            "/api/v1/payouts",
            {"verification_id": 1, "entitlement_ids": [1], "channel": "account", "x": [{NUL: 1}]},
        ),
    ],
    ids=["token-username", "token-password", "code", "qr", "nested-key"],
)
def test_nul_in_json_bodies_is_400(caller, endpoint, url, body):
    response = caller.request(
        endpoint, "POST", url, json=body, headers={"Idempotency-Key": "nul-test-1"}
    )
    _assert_refused(response, url, (400,))


@pytest.mark.parametrize(
    ("endpoint", "url", "data"),
    [
        ("auth.login", "/login", {"username": NUL, "password": "x" * 12}),
        ("auth.login", "/login", {"username": "clerk1", "password": NUL * 5}),
        ("counter.search", "/counter/", {"q": NUL}),
        ("admin.new_point", "/admin/points/new", {"code": NUL, "name": NUL}),
    ],
    ids=["login-username", "login-password", "search", "point"],
)
def test_nul_in_form_fields_is_400(caller, endpoint, url, data):
    _assert_refused(caller.request(endpoint, "POST", url, data=data), url, (400,))


def _mentions_date(hint: Any) -> bool:
    """Tell whether a type hint is a date or holds one (Optional, Annotated...)."""
    return hint is date or any(_mentions_date(arg) for arg in typing.get_args(hint))


def _date_fields(model: type) -> list[str]:
    """Return the names (as sent) of a model's date fields."""
    return [
        info.alias or name
        for name, info in model.model_fields.items()
        if _mentions_date(info.annotation)
    ]


def _query_specs() -> list[tuple[Any, str]]:
    """Return (spec, field) for every date in every API query model."""
    return [(spec, field) for spec in SPECS if spec.query for field in _date_fields(spec.query)]


def _date_error(model: Any, field: str, day: str) -> str:
    """Return what a model says of a date field alone (other fields' errors aside)."""
    try:
        model.model_validate({field: day})
    except ValidationError as exc:
        return " ".join(e["msg"] for e in exc.errors() if e["loc"] and e["loc"][0] == field)
    return ""


def test_api_models_bound_every_date():
    """Every date an API model takes, in a query or a body, refuses the calendar's ends."""
    models = {m for spec in SPECS for m in (spec.query, spec.body) if m is not None}
    # The cash float's days are bounded more narrowly by its service (400
    # date_out_of_range with both bounds), which the HTTP test below covers.
    models = {m for m in models if not m.__name__.startswith("CashFloat")}
    checked = 0
    for model in models:
        for field in _date_fields(model):
            for day in EXTREME_DAYS:
                assert "2000-01-01" in _date_error(model, field, day), (model, field, day)
            assert _date_error(model, field, FIRST_DAY.isoformat()) == ""
            assert _date_error(model, field, LAST_DAY.isoformat()) == ""
            checked += 1
    assert checked >= 2  # the payout log's from and to, at least


@pytest.mark.parametrize("day", EXTREME_DAYS)
def test_extreme_dates_in_api_queries_are_400(app, caller, day):
    specs = _query_specs()
    assert specs
    for spec, field in specs:
        url = "/api/v1" + spec.rule
        endpoint = f"api.{_view_name(app, url, spec.method)}"
        response = caller.request(endpoint, spec.method.upper(), url, query_string={field: day})
        _assert_refused(response, url, (400,))


def _view_name(app, url: str, method: str) -> str:
    """Return the endpoint's function name for an API URL."""
    adapter = app.url_map.bind("localhost")
    endpoint, _args = adapter.match(url, method=method.upper())
    return endpoint.split(".", 1)[1]


@pytest.mark.parametrize(
    "query",
    [
        {"from": "0001-01-01"},
        {"to": "9999-12-31"},
        {"from": "2021-10-01", "to": "9999-12-31"},
        {"to": "2021-09-30", "from": "2021-10-01"},
        {"cursor": str(2**64)},
        {"cursor": "²"},
        {"limit": str(2**64)},
        {"status": NUL},
        {"payout_point": NUL},
        {"commune": NUL},
    ],
    ids=lambda q: ",".join(f"{k}={v!r}"[:30] for k, v in q.items()),
)
@pytest.mark.parametrize("accept", ["application/json", "text/csv"])
def test_payout_log_refuses_before_the_first_byte(caller, query, accept):
    """The auditor's CSV export answers 400 with the JSON error, never a 200 cut short."""
    response = caller.request(
        "api.list_payouts",
        "GET",
        "/api/v1/payouts",
        role="auditor",  # exports are the auditors'
        query_string=query,
        headers={"Accept": accept},
    )
    if accept == "text/csv" and "cursor" in query:
        # The export is the whole log: it reads no cursor.
        assert response.status_code == 200 and response.mimetype == "text/csv"
        return
    _assert_refused(response, "/api/v1/payouts", (400,))
    assert response.mimetype == "application/json"


def test_csv_export_with_dates_at_the_edges_of_the_range(app, caller):
    response = caller.request(
        "api.list_payouts",
        "GET",
        "/api/v1/payouts",
        role="auditor",
        query_string={"from": FIRST_DAY.isoformat(), "to": LAST_DAY.isoformat()},
        headers={"Accept": "text/csv"},
    )
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.get_data(as_text=True).lstrip("\ufeff").startswith("receipt_no,")


@pytest.mark.parametrize("bad", ["/\r\nSet-Cookie: x=1", "/counter/\n", "/\x85home", "/a\u2028b"])
def test_line_breaks_in_next_are_dropped_not_500(app, world, bad):
    client = app.test_client()
    page = client.get("/login", query_string={"next": bad})
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_from(html),
            "username": "clerk1",
            "password": "correct-horse-42",
            "next": bad,
        },
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    assert "Set-Cookie: x" not in str(response.headers)


@pytest.mark.parametrize("number", ["²", "٣", str(2**64), "9" * 30])
def test_odd_numbers_in_counter_forms_are_4xx(as_role, world, session, number):
    """Superscript and other Unicode digits, and huge ids, in the counter's form fields."""
    person = make_beneficiary(session, commune=world.point_a.communes[0], proxy={})
    clerk = as_role("clerk")
    token = csrf_from(clerk.get(f"/counter/b/{person.code}").get_data(as_text=True))
    verify_url = f"/counter/b/{person.code}/verify"
    response = clerk.post(
        verify_url,
        data={"csrf_token": token, "collector": f"proxy:{number}", "identity": "046195867017"},
    )
    assert 400 <= response.status_code < 500, response.status_code
    verified = clerk.post(
        verify_url,
        data={"csrf_token": token, "collector": "beneficiary", "identity": "046153060816"},
    )
    assert verified.status_code == 303
    pay = clerk.post(
        verified.headers["Location"] + "/pay",
        data={
            "csrf_token": token,
            "entitlements": [number],
            "channel": "cash",
            "form_key": "hostile-form-key-0123456789",
        },
    )
    assert 400 <= pay.status_code < 500, pay.status_code
