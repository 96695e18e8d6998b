"""``/api/v1/openapi.json``: the API's OpenAPI 3 document, built from the models."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify
from pydantic import BaseModel, ConfigDict

from terminal.api import SPECS, endpoint
from terminal.authz import PUBLIC


def _path(rule: str) -> str:
    """Turn a Flask rule (/x/<int:id>) into an OpenAPI path (/api/v1/x/{id})."""
    return "/api/v1" + re.sub(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", r"{\1}", rule)


def build_openapi() -> dict[str, Any]:
    """Build the OpenAPI 3.1 document of every declared endpoint."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, str]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, Any] = {}
    for spec in SPECS:
        operation: dict[str, Any] = {
            "summary": spec.summary,
            "operationId": f"{spec.method}_{spec.rule.strip('/').replace('/', '_')}",
            "responses": {},
        }
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in re.findall(r"<(?:[a-z]+:)?([a-zA-Z_]+)>", spec.rule)
        ]
        if spec.query is not None:
            for name, info in spec.query.model_json_schema().get("properties", {}).items():
                parameters.append({"name": name, "in": "query", "required": False, "schema": info})
        for name, description in spec.headers.items():
            parameters.append(
                {
                    "name": name,
                    "in": "header",
                    "required": True,
                    "description": description,
                    "schema": {"type": "string", "maxLength": 255},
                }
            )
        if parameters:
            operation["parameters"] = parameters
        if spec.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(spec.body)}},
            }
        for status, content in sorted(spec.responses.items()):
            answer: dict[str, Any] = {"description": str(status)}
            forms = content if isinstance(content, tuple) else (content,)
            for form in forms:
                if isinstance(form, type) and issubclass(form, BaseModel):
                    answer.setdefault("content", {})["application/json"] = {"schema": ref(form)}
                elif isinstance(form, str):
                    answer.setdefault("content", {})[form] = {"schema": {"type": "string"}}
            operation["responses"][str(status)] = answer
        if spec.permission != PUBLIC:
            operation["security"] = [{"bearer": []}]
        paths.setdefault(_path(spec.rule), {})[spec.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Payout-point terminal API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenApiDocument(BaseModel):
    """The OpenAPI 3.1 document of this API."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


@endpoint(
    "/openapi.json",
    "GET",
    summary="This document",
    permission=PUBLIC,
    responses={200: OpenApiDocument},
)
def openapi() -> Any:
    """Serve the OpenAPI document."""
    return jsonify(build_openapi())
