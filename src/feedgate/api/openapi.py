"""An OpenAPI 3.1 description of feedgate's own routes, built from the pydantic models, served at ``/openapi.json``.

Built once, when the app is created (``build_openapi``), from ``OPERATIONS``: each operation's path
parameters (IDs with the pattern the handlers check), query parameters, request body and answers, every
schema from ``model_json_schema`` (through ``TypeAdapter``, for answers such as ``list[Dataset]``), shared
models under ``components/schemas``. Answers are wrapped in Helicone's ``{"data", "error"}`` envelope
where the route uses it, and every operation lists the error answers it can give, in the same envelope.

Open without a feedgate key, like ``/healthz``: the document describes the API (the README says as much)
and holds no data, no setting and no provider of this deployment, and API tools (client generators,
Swagger UI) fetch it before they are given a key. The proxied provider routes are not in it: they are the
providers' own APIs.
"""

from __future__ import annotations

import re
from importlib import metadata
from typing import Any

import orjson
from aiohttp import web
from pydantic import TypeAdapter

from feedgate.api.answers import Pending
from feedgate.api.openapi_examples import PATH_EXAMPLES
from feedgate.api.openapi_operation import Operation
from feedgate.api.openapi_operations import OPERATIONS
from feedgate.api.query_params import SELECTION_PATTERNS
from feedgate.appkeys import OPENAPI
from feedgate.request_ids import ID_PATTERN

REF = "#/components/schemas/{model}"
_PATH_PARAMETER = re.compile(r"\{([a-z_]+)\}")
# Error answers, each in Helicone's envelope: (name under components/responses, what it means).
_ERRORS = {
    400: ("BadRequest", "Malformed JSON, a bad ID, parameter or filter"),
    401: ("Unauthorized", "Missing or wrong feedgate key (when auth.keys is set), or a feedback token refused"),
    403: ("Forbidden", "A feedback token for another ID, or that does not allow this"),
    404: ("NotFound", "Unknown request, session, dataset or route"),
    413: ("PayloadTooLarge", "Body over server.max_body_bytes"),
    422: ("Unprocessable", "Well-formed but invalid field values, or unknown fields"),
    503: ("StoreUnavailable", "The store did not confirm the write in time (or, for /readyz, cannot be used)"),
}
ERROR_ENVELOPE = {
    "type": "object",
    "properties": {"data": {"type": "null"}, "error": {"type": "string"}},
    "required": ["data", "error"],
}
FILTERS_EXAMPLE = {"property.feature": "support", "min_score.stars": "1"}


class _Schemas:
    """Schemas of Python types, their shared models collected as components (one name, one schema)."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any, mode: str) -> dict[str, Any]:
        schema: dict[str, Any] = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)  # type: ignore[arg-type]
        for name, definition in schema.pop("$defs", {}).items():
            if self.components.setdefault(name, definition) != definition:
                raise ValueError(f"two different schemas are named {name} in the OpenAPI document")
        title = schema.get("title")
        if isinstance(kind, type) and title == kind.__name__ and "properties" in schema:
            if self.components.setdefault(title, schema) != schema:
                raise ValueError(f"two different schemas are named {title} in the OpenAPI document")
            return {"$ref": REF.format(model=title)}
        return schema


def _parameters(op: Operation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name in _PATH_PARAMETER.findall(op.path):
        what = name.replace("_", " ").replace(" id", " ID")
        out.append(
            {
                "name": name,
                "in": "path",
                "required": True,
                "description": f"the {what}: a UUID or 1 to 128 of A-Z a-z 0-9 . _ : -",
                "schema": {"type": "string", "pattern": ID_PATTERN},
                "example": PATH_EXAMPLES[name],
            }
        )
    if op.query is not None:
        model = op.query.model_json_schema(ref_template=REF)
        required = set(model.get("required", ()))
        for name, schema in model["properties"].items():
            schema = _query_schema(schema)
            examples = schema.pop("examples", None)
            parameter = {"name": name, "in": "query", "required": name in required, "schema": schema}
            if "description" in schema:
                parameter["description"] = schema.pop("description")
            if examples:
                parameter["example"] = examples[0]
            out.append(parameter)
    if op.filters:
        out.append(
            {
                "name": "filters",
                "in": "query",
                "description": "property.NAME=VALUE and min_score.NAME=NUMBER, each as its own parameter (repeatable)",
                "style": "form",
                "explode": True,
                "schema": {"type": "object", "patternProperties": SELECTION_PATTERNS, "additionalProperties": False},
                "example": FILTERS_EXAMPLE,
            }
        )
    return out


def _query_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """A field's schema as a query parameter's: absent is how a query string says null, so no null branch."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    branches = [branch for branch in schema.pop("anyOf", []) if branch != {"type": "null"}]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches
    if schema.get("default", 0) is None:
        del schema["default"]
    return schema


def _answers(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    data = {"type": "null"} if op.answer is None else schemas.of(op.answer, "serialization")
    if op.media != "application/json":
        content = {op.media: {"schema": {"type": "string"}, "example": op.answer_example}}
    elif op.enveloped:
        envelope = {
            "type": "object",
            "properties": {"data": data, "error": {"type": "null"}},
            "required": ["data", "error"],
        }
        content = {"application/json": {"schema": envelope, "example": {"data": op.answer_example, "error": None}}}
    else:
        content = {"application/json": {"schema": data, "example": op.answer_example}}
    answers: dict[str, Any] = {str(op.status): {"description": op.summary, "content": content}}
    if op.pending:
        pending = schemas.of(Pending, "serialization")
        envelope = {"type": "object", "properties": {"data": pending, "error": {"type": "null"}}}
        answers["202"] = {
            "description": "Committed; waits for a request with this ID to be logged",
            "content": {
                "application/json": {"schema": envelope, "example": {"data": {"status": "pending"}, "error": None}}
            },
        }
    for status in _error_statuses(op):
        answers[str(status)] = {"$ref": f"#/components/responses/{_ERRORS[status][0]}"}
    return answers


def _error_answers() -> dict[str, Any]:
    return {
        name: {
            "description": meaning,
            "content": {
                "application/json": {
                    "schema": {"$ref": REF.format(model="Error")},
                    "example": {"data": None, "error": meaning},
                }
            },
        }
        for name, meaning in _ERRORS.values()
    }


def _error_statuses(op: Operation) -> list[int]:
    if op.public:
        return [503] if op.path == "/readyz" else []
    statuses = [400, 401, 403, 404] if op.token else [400, 401, 404]
    if op.body is not None:
        statuses += [413, 422]
    if op.method in ("POST", "PUT", "DELETE"):
        statuses.append(503)
    return statuses


def _operation(op: Operation, schemas: _Schemas) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": _operation_id(op),
        "tags": [op.tag],
        "summary": op.summary,
        "parameters": _parameters(op),
        "responses": _answers(op, schemas),
    }
    if op.body is not None:
        out["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schemas.of(op.body, "validation"), "example": op.body_example}},
        }
    if op.public:
        out["security"] = []
    elif op.token:
        out["security"] = [{"feedgateKey": []}, {"feedbackToken": []}]
    return out


def _operation_id(op: Operation) -> str:
    words = re.sub(r"[{}]", "", op.path).replace("-", "_").strip("/").replace("/", "_").replace(".", "_")
    return f"{op.method.lower()}_{words}"


def build_openapi() -> dict[str, Any]:
    """The whole document, as a JSON-able dict."""
    try:
        version = metadata.version("feedgate")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        version = "0.0.0"
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method.lower()] = _operation(op, schemas)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "feedgate",
            "version": version,
            "description": "feedgate's own routes: Helicone-compatible feedback, scores, sessions, request "
            "queries, datasets and manual logs, and feedgate's stats, insights, regressions and exports. "
            'Answers are Helicone\'s {"data", "error"} envelope unless an operation says otherwise.',
        },
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": dict(sorted({**schemas.components, "Error": ERROR_ENVELOPE}.items())),
            "responses": _error_answers(),
            "securitySchemes": {
                "feedgateKey": {"type": "http", "scheme": "bearer", "description": "a key of auth.keys"},
                "feedbackToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "a feedback token (fgt1....) for the ID in the path: docs/feedback-tokens.md",
                },
            },
        },
        "security": [{"feedgateKey": []}],
    }


def openapi_bytes() -> bytes:
    return orjson.dumps(build_openapi())


async def get_openapi(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")
