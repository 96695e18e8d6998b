"""The JSON API of API.md (``/api/v1``): bearer tokens, pydantic-checked bodies, OpenAPI.

Every endpoint is declared with ``endpoint(...)``, which registers the Flask route
and records its request and response models; ``/api/v1/openapi.json`` is built
from those same models, so the published spec cannot drift from what is checked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, current_app, g, jsonify, request
from pydantic import BaseModel, ValidationError

from terminal.authz import PUBLIC, allow, permission_of, public
from terminal.db import get_session
from terminal.policy import Permission
from terminal.services.auth import user_for_token
from terminal.services.delivery import device_for_token
from terminal.services.errors import InvalidInput

bp = Blueprint("api", __name__, url_prefix="/api/v1")

M = TypeVar("M", bound=BaseModel)
F = TypeVar("F", bound=Callable[..., Any])


# A response's content: a model (JSON), a media type (its body a string), None (no
# body), or a tuple of these when one status comes in several forms (JSON, CSV, XLSX).
Content = type[BaseModel] | str | None | tuple[type[BaseModel] | str, ...]


@dataclass
class EndpointSpec:
    """What the OpenAPI document says of one endpoint."""

    rule: str
    method: str
    summary: str
    permission: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    responses: dict[int, Content] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)


SPECS: list[EndpointSpec] = []


def endpoint(
    rule: str,
    method: str,
    *,
    summary: str,
    permission: str,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    responses: dict[int, Content] | None = None,
    headers: dict[str, str] | None = None,
) -> Callable[[F], F]:
    """Declare an API endpoint: its route, guard, and the models of its spec."""

    def register(view: F) -> F:
        guarded = public(view) if permission == PUBLIC else allow(permission)(view)
        bp.add_url_rule(rule, view_func=guarded, methods=[method])
        SPECS.append(
            EndpointSpec(
                rule=rule,
                method=method.lower(),
                summary=summary,
                permission=permission,
                body=body,
                query=query,
                responses=responses or {},
                headers=headers or {},
            )
        )
        return guarded

    return register


class _NotJson(ValueError):
    """NaN, Infinity or -Infinity: accepted by Python's and pydantic's parsers, not JSON."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def parse_body(model: type[M]) -> M:
    """Validate the JSON body against a model; a bad body is a 400 naming the fields."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise InvalidInput("the request body must be a JSON object", code="invalid_request")
    try:
        json.loads(raw, parse_constant=_refuse_constant)
    except _NotJson:
        raise InvalidInput("NaN and Infinity are not JSON", code="invalid_request") from None
    except (ValueError, RecursionError):
        pass  # malformed otherwise: the model's parser says where
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(
            "the request body is not valid", code="invalid_request", fields=_field_errors(exc)
        ) from None


def parse_query(model: type[M]) -> M:
    """Validate the query string against a model; a bad one is a 400 naming the fields."""
    try:
        return model.model_validate(request.args.to_dict())
    except ValidationError as exc:
        raise InvalidInput(
            "the query is not valid", code="invalid_request", fields=_field_errors(exc)
        ) from None


def _field_errors(exc: ValidationError) -> list[dict[str, str]]:
    """Describe validation errors by field, never echoing the value sent."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        location = ".".join(str(part) for part in error["loc"]) or "body"
        problems.append({"field": location, "problem": error["msg"]})
    return problems[:20]


def reply(model: BaseModel, status: int = 200) -> Any:
    """Return a model as JSON with a status."""
    response = jsonify(model.model_dump(mode="json"))
    response.status_code = status
    return response


def authenticate_bearer() -> Any:
    """Return the user of the request's bearer token, or None."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    found = user_for_token(get_session(), token.strip())
    if found is not None:
        user, row = found
        g.api_token = row
        return user
    # A tablet's device token opens the tablet's endpoints only (least privilege: a
    # lost tablet's token cannot search the roster or pay at a counter).
    if permission_of(current_app, request.endpoint or "") != Permission.DELIVER:
        return None
    device = device_for_token(get_session(), token.strip())
    if device is None:
        return None
    g.device = device
    g.api_token = None
    return device.user


# The endpoint modules register themselves on import.
from terminal.api import (  # noqa: E402, F401
    audit,
    counter,
    day,
    daybook,
    delivery,
    failures,
    meta,
    payout_log,
    receipts,
    reports,
    samples,
    tokens,
    withdrawals,
)
