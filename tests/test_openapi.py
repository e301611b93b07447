"""``/openapi.json``: every route of the app is in it, every example validates, and the examples work."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, get_args

import aiohttp
import jsonschema
import orjson
import pytest

from conftest import Gateway, GatewayFactory
from feedgate.analysis.export_run import FORMATS
from feedgate.analysis.selection import RATINGS
from feedgate.api.openapi import build_openapi
from feedgate.api.openapi_examples import PATH_EXAMPLES, REQUEST_ID
from feedgate.api.openapi_operations import OPERATIONS
from feedgate.api.query_params import Format, Rating
from feedgate.middleware import PROXY_ROUTES

DOCUMENT = build_openapi()
TOKEN_SECRET = "an example secret of at least 32 characters"  # the one the document's example tokens are signed with
METHODS = ("get", "post", "put", "delete", "patch")


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """A validator for one schema of the document, its ``#/components/...`` references resolved in it."""
    return jsonschema.Draft202012Validator({**schema, "components": DOCUMENT["components"]})


def resolved(item: dict[str, Any]) -> dict[str, Any]:
    ref = item.get("$ref")
    if ref is None:
        return item
    found: Any = DOCUMENT
    for part in ref.removeprefix("#/").split("/"):
        found = found[part]
    return resolved(found)


def examples() -> Iterator[tuple[str, Any, dict[str, Any]]]:
    """Every example in the document: (where, example, the schema it must satisfy)."""
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            for parameter in operation["parameters"]:
                yield f"{where} parameter {parameter['name']}", parameter["example"], parameter["schema"]
            for media in operation.get("requestBody", {}).get("content", {}).values():
                yield f"{where} body", media["example"], media["schema"]
            for status, answer in operation["responses"].items():
                for media in resolved(answer)["content"].values():
                    yield f"{where} answer {status}", media["example"], media["schema"]


def test_every_route_of_the_app_is_in_the_document_and_nothing_else(gateway: Gateway) -> None:
    # The console's pages (/console/...) are HTML for a browser, not part of the API the document describes.
    routes = {
        (route.method.lower(), route.resource.canonical)
        for route in gateway.app.router.routes()
        if route.method != "HEAD"
        and route.resource is not None
        and route.name not in PROXY_ROUTES
        and not route.resource.canonical.startswith("/console/")
    }
    documented = {(method, path) for path, item in DOCUMENT["paths"].items() for method in item if method in METHODS}
    assert routes == documented
    assert len(documented) == len(OPERATIONS) > 30


def test_every_example_validates_against_its_schema() -> None:
    count = 0
    for where, example, schema in examples():
        jsonschema.Draft202012Validator.check_schema(schema)
        errors = [error.message for error in validator(schema).iter_errors(example)]
        assert not errors, f"{where}: {errors}"
        count += 1
    operations = [op for item in DOCUMENT["paths"].values() for op in item.values()]
    assert count > 3 * len(operations)
    for operation in operations:  # at least one example of a body or a success answer per operation
        success = [resolved(a) for status, a in operation["responses"].items() if status.startswith("2")]
        assert all("example" in media for answer in success for media in answer["content"].values())


@pytest.mark.parametrize(
    ("path", "refused"),
    [
        ("/v1/request/{request_id}/feedback", {"rating": "no"}),
        ("/v1/request/{request_id}/feedback", {"rating": True, "comment": "a\x00b"}),
        ("/v1/request/{request_id}/score", {"scores": {"big": 2**64 - 1}}),
        ("/v1/feedback/batch", {"items": [{"requestId": "r", "rating": 1}]}),
    ],
)
def test_the_body_schemas_refuse_what_the_routes_refuse(path: str, refused: dict[str, Any]) -> None:
    schema = DOCUMENT["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert not validator(schema).is_valid(refused)


def test_the_document_lists_the_formats_and_ratings_the_routes_take() -> None:
    assert set(get_args(Format)) == set(FORMATS) and set(get_args(Rating)) == set(RATINGS)


async def test_the_document_is_served_without_a_key_while_the_routes_need_one(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(auth={"keys": ["fg-secret"]})
    async with http.get(f"{gateway.url}/openapi.json") as r:
        assert r.status == 200 and r.content_type == "application/json"
        assert orjson.loads(await r.read()) == DOCUMENT
    async with http.get(f"{gateway.v1}/datasets") as r:
        assert r.status == 401


def _query(operation: dict[str, Any]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for parameter in operation["parameters"]:
        if parameter["in"] != "query":
            continue
        example = parameter["example"]
        if isinstance(example, dict):  # form, exploded: each key is its own parameter
            pairs += [(key, str(value)) for key, value in example.items()]
        elif isinstance(example, list):
            pairs += [(parameter["name"], str(value)) for value in example]
        else:
            pairs.append((parameter["name"], str(example)))
    return pairs


async def test_every_example_sent_to_a_gateway_gets_the_documented_answer(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    """Each operation's example parameters and body, sent as they are: the documented status and shape."""
    gateway = await make_gateway(feedback={"token_secrets": [TOKEN_SECRET]})  # POST /v1/feedback-tokens needs one
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Where is my parcel?"}]}
    headers = {"Helicone-Request-Id": REQUEST_ID, "Helicone-Property-Feature": "support"}
    async with http.post(f"{gateway.v1}/chat/completions", json=chat, headers=headers) as r:
        assert r.status == 200
    await gateway.settled()
    async with http.post(f"{gateway.v1}/request/{REQUEST_ID}/score", json={"scores": {"stars": 2}}) as r:
        assert r.status == 201
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            ids = dict(PATH_EXAMPLES)
            if "{dataset_id}" in path:  # each its own dataset, so deleting one leaves the others
                body = {"datasetName": "examples", "requestIds": [REQUEST_ID]}
                async with http.post(f"{gateway.v1}/helicone-dataset", json=body) as r:
                    ids["dataset_id"] = (await r.json())["data"]["datasetId"]
            url = gateway.url + path.format(**ids)
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("example")
            data = None if body is None else orjson.dumps(body)
            async with http.request(method, url, params=_query(operation), data=data) as r:
                raw = await r.read()
                documented = operation["responses"]
                assert str(r.status) in documented and r.status < 400, (method, path, r.status, raw[:300])
                media = resolved(documented[str(r.status)])["content"]
                answer = orjson.loads(raw) if r.content_type == "application/json" else raw.decode()
                errors = [e.message for e in validator(media[r.content_type]["schema"]).iter_errors(answer)]
                assert not errors, (method, path, errors)
