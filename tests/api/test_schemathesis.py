"""Every API operation fuzzed from its own OpenAPI document, with real tokens (RELIABILITY S11).

The spec is loaded from the app's ``/api/v1/openapi.json`` through WSGI, on the suite's
database (SQLite, or PostgreSQL with TERMINAL_TEST_DATABASE_URL) holding the standard
world, beneficiaries with due entitlements, a tablet and a route. Each operation gets
schema-valid (positive) and schema-breaking (negative) requests from schemathesis, each
sent with the bearer token of a role drawn from those the policy admits and one it
does not (a tablet's device token for the delivery endpoints). Every answer must:

- never be a 5xx;
- carry a status, content type and body the spec declares for the operation;
- refuse invalid input (negative cases) with a 4xx, and a malformed request (400, 413,
  415) must write nothing: no payout, no failure, no audit event;
- give every amount as a JSON integer, never a float.

A second test sends hostile bodies (NaN, 1e309, 2**64, raw bytes, lone surrogates,
every plane of Unicode, unknown fields, deep nesting) to every operation with a body.
More examples with TERMINAL_SOAK=1.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import func, select

from terminal.api import SPECS
from terminal.api.meta import _path
from terminal.authz import PUBLIC
from terminal.db import new_session
from terminal.models import AuditEvent, Failure, Payout
from terminal.policy import POLICY, Permission
from tests.conftest import api_token, bearer
from tests.factories import ROLES, make_beneficiary

pytestmark = pytest.mark.slow

SOAK = os.environ.get("TERMINAL_SOAK") == "1"
EXAMPLES = 60 if SOAK else 5
# Revoking the token or tablet in use would leave the rest of the run unauthorised:
# these go last.
LAST = {("/api/v1/tokens/current", "DELETE"), ("/api/v1/devices/current", "DELETE")}
MALFORMED = {400, 413, 415}
# Keys of response bodies that hold money (đồng): always JSON integers.
MONEY = re.compile(
    r"(amount|advance|paid_cash|remaining|paid|arrears|cash_paid|account_paid|returned|"
    r"difference|reported|total|due_amount|monthly_amount|amount_due|amount_paid)$"
)


def _checks_of(mode: GenerationMode) -> list[Any]:
    checks = [status_code_conformance, content_type_conformance, response_schema_conformance]
    return [*checks, negative_data_rejection] if mode == GenerationMode.NEGATIVE else checks


def money_values(body: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    """Yield every (key, value) of a JSON body whose key names an amount of money."""
    if isinstance(body, dict):
        for name, value in body.items():
            yield from money_values(value, name)
    elif isinstance(body, list):
        for item in body:
            yield from money_values(item, key)
    elif key and MONEY.search(key) and not key.endswith("_pct") and body is not None:
        yield key, body


def written(app) -> tuple[int, int, int]:
    """Count what a request could have written: payouts, failures, audit events."""
    with closing(new_session(app)) as session:
        return (
            session.scalar(select(func.count(Payout.id))) or 0,
            session.scalar(select(func.count(Failure.id))) or 0,
            session.scalar(select(func.count(AuditEvent.seq))) or 0,
        )


@pytest.fixture
def fuzz_world(app, world, session, client):
    """Beneficiaries with due entitlements, a tablet with its route, and a token per role."""
    commune = world.point_a.communes[0]
    for n in range(3):
        make_beneficiary(
            session,
            f"TTH{n:07d}",
            commune=commune,
            id_number=f"04615306{n:04d}",
            proxy={"id_number": f"04619586{n:04d}"} if n == 0 else None,
        )
    tokens = {role: api_token(client, world.users[role].username) for role in ROLES}
    supervisor = bearer(tokens["supervisor"])
    device = client.post(
        "/api/v1/devices",
        json={"name": "Máy tính bảng 1", "username": "delivery1"},
        headers=supervisor,
    )
    assert device.status_code == 201, device.get_json()
    tokens["device"] = device.get_json()["token"]
    route = client.post(
        "/api/v1/routes",
        json={"username": "delivery1", "period": "2021-10", "beneficiary_codes": ["TTH0000001"]},
        headers=supervisor,
    )
    assert route.status_code == 201, route.get_json()
    return tokens


def roles_for(permission: str) -> list[str | None]:
    """Return the roles to send an operation with: those admitted (weighted) and one not."""
    if permission == PUBLIC:
        return [None, None, "clerk"]
    if permission == Permission.DELIVER:
        return ["device", "device", "device", "supervisor"]
    admitted = [role for role in ROLES if role in {r.value for r in POLICY[Permission(permission)]}]
    refused = [role for role in ROLES if role not in admitted]
    return admitted * 3 + refused[:1]


def permissions() -> dict[tuple[str, str], str]:
    """Return each operation's permission, keyed by its OpenAPI path and method."""
    return {(_path(spec.rule), spec.method.upper()): spec.permission for spec in SPECS}


def run_operation(
    app, operation, tokens, mode: GenerationMode, examples: int, seen: Counter
) -> None:
    """Fuzz one operation; count the statuses; raise on the first answer breaking a rule."""
    roles = roles_for(permissions()[(operation.path, operation.method.upper())])

    # The token is fixed per role, so a negative case never "breaks" the Authorization
    # header that is then replaced by a valid one.
    strategies = {
        role: operation.as_strategy(
            generation_mode=mode, headers=bearer(tokens[role]) if role else None
        )
        for role in set(roles)
    }
    drawn = st.sampled_from(roles).flatmap(lambda role: strategies[role].map(lambda c: (c, role)))

    @given(drawn=drawn)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
    )
    def fuzz(drawn) -> None:
        case, role = drawn
        headers = bearer(tokens[role]) if role else {}
        before = written(app)
        response = case.call(headers=headers)
        seen[(operation.label, mode, response.status_code // 100)] += 1
        assert response.status_code < 500, (response.status_code, response.text[:500])
        case.validate_response(response, checks=_checks_of(mode), headers=headers)
        if response.status_code in MALFORMED:
            assert written(app) == before, "a refused request wrote something"
        if "json" in response.headers.get("content-type", [""])[0]:  # lower-case names
            for key, value in money_values(response.json()):
                assert isinstance(value, int) and not isinstance(value, bool), (key, value)
                seen["amounts"] += 1

    fuzz()


def test_every_operation_against_its_spec(app, fuzz_world):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    # Every operation but the document itself (schemathesis leaves out its own source).
    assert len(operations) == len(SPECS) - 1
    operations.sort(key=lambda op: (op.path, op.method.upper()) in LAST)
    problems = []
    seen: Counter = Counter()
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                run_operation(app, operation, fuzz_world, mode, EXAMPLES, seen)
            except Unsatisfiable:
                assert mode == GenerationMode.NEGATIVE  # nothing in it can be made invalid
            except (Exception, BaseExceptionGroup) as exc:  # every problem, not the first
                problems.append(f"{operation.method.upper()} {operation.path} [{mode}]: {exc}")
    assert not problems, "\n\n".join(problems)
    # The fuzz reached the handlers: schema-valid requests were served by most operations,
    # and schema-breaking ones refused.
    assert seen.pop("amounts") > 0  # amounts were read, and every one was an integer
    served = {label for label, mode, family in seen if family == 2}
    assert len(served) >= 15, sorted(served)
    # Negative cases ran for every operation with something to break (a parameter or
    # a body: the token is never broken), and were refused (negative_data_rejection).
    negated = {label for label, mode, family in seen if mode == GenerationMode.NEGATIVE}
    assert len(negated) >= 20, sorted(negated)


# Bodies that are not a JSON object at all: 400 from every operation.
NOT_OBJECTS: list[bytes] = [
    b"",
    b"null",
    b"[]",
    b'"text"',
    b"NaN",
    b'{"x": NaN}',
    b'{"x": -Infinity}',
    b"\xff\xfe\xfd\x00\x80garbage",
    b'{"reason": "\xc3\x28 invalid utf-8"}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
]
# Values put in each field of a plausible body in turn (as raw JSON text).
HOSTILE_VALUES: list[str] = [
    "NaN",
    "Infinity",
    "1e309",
    "-1e309",
    "18446744073709551617",
    "-18446744073709551617",
    "1" + "0" * 5000,
    "1.5",
    "1e2",
    "true",
    '"\\ud800 lone surrogate"',
    '"\\u0000"',
    json.dumps("".join(chr(c) for c in (0x1F600, 0x202E, 0x200B, 0x10FFFF, 0xFFFD, 0x0301))),
    json.dumps("x" * 100_000),
    '{"nested": [1, {"deeper": null}]}',
    "[1, 2, 3]",
]
NOT_INTEGERS = {"NaN", "Infinity", "1e309", "-1e309", "1.5", "1e2", "true"}
PLAUSIBLE = {"integer": "1", "string": '"TTH0000001"', "boolean": "true", "array": "[1]"}


def skeleton(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, str]:
    """Return a plausible raw JSON value for every property of a request body's schema."""
    values = {}
    for name, prop in schema.get("properties", {}).items():
        if "$ref" in prop:
            prop = components[prop["$ref"].rsplit("/", 1)[1]]
        kinds = [prop.get("type")] + [alt.get("type") for alt in prop.get("anyOf", [])]
        kind = next((k for k in kinds if k in PLAUSIBLE), "string")
        values[name] = PLAUSIBLE[kind]
    return values


def is_integer_field(prop: dict[str, Any]) -> bool:
    """Tell whether a property accepts integers only (or null)."""
    kinds = {prop.get("type")} | {alt.get("type") for alt in prop.get("anyOf", [])}
    return "integer" in kinds and not kinds - {"integer", "null", None}


def test_hostile_bodies_are_refused_cleanly(app, fuzz_world):
    """Every operation with a body: not-objects are 400, hostile values never a 5xx.

    An integer field (every amount among them) refuses NaN, Infinity, 1e309, 1.5,
    1e2 and true with a 400; a malformed request writes nothing.
    """
    client = app.test_client()
    document = client.get("/api/v1/openapi.json").get_json()
    components = document["components"]["schemas"]
    body_specs = [spec for spec in SPECS if spec.body is not None]
    assert len(body_specs) >= 10
    for spec in body_specs:
        role = roles_for(spec.permission)[0]
        headers = bearer(fuzz_world[role]) if role else {}
        path = "/api/v1" + re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", "1", spec.rule)
        schema = components[spec.body.__name__]
        base = skeleton(schema, components)
        bodies = [(body, None) for body in NOT_OBJECTS] + [
            ("{" + ", ".join(f'"{k}": {v}' for k, v in {**base, field: value}.items()) + "}", field)
            for field in base
            for value in HOSTILE_VALUES
        ]
        for n, (body, field) in enumerate(bodies):
            raw = body if isinstance(body, bytes) else body.encode()
            before = written(app)
            response = client.open(
                path,
                method=spec.method.upper(),
                data=raw,
                content_type="application/json",
                headers={**headers, "Idempotency-Key": f"hostile-{n}"},
            )
            where = (spec.method, spec.rule, raw[:80], response.get_data()[:300])
            assert response.status_code < 500, where
            assert response.is_json, where
            not_an_integer = (
                field is not None
                and is_integer_field(schema["properties"][field])
                and any(f'"{field}": {bad}' in body for bad in NOT_INTEGERS)
            )
            if field is None or not_an_integer:
                assert response.status_code == 400, where
            if response.status_code >= 400:
                assert response.get_json()["error"], where
            if response.status_code in MALFORMED:
                assert written(app) == before, where
