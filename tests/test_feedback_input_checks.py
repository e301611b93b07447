"""Feedback bodies the stores cannot keep are refused naming the field, on both stores; nothing stored is lost."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest
from yarl import URL

from conftest import Gateway
from fakes import FakeUpstream


def nested(depth: int) -> Any:
    """A value ``depth`` lists deep (``[[...]]``), made without recursion."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def deep_json(depth: int) -> bytes:
    """``nested(depth)`` as JSON text: the encoder itself stops at 254 levels."""
    return b"[" * depth + b"]" * depth


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = body if isinstance(body, bytes) else None if body is None else orjson.dumps(body)
    async with http.request(method, url, data=data) as r:
        return r.status, await r.json()


async def state(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    status, body = await call(http, "GET", f"{gateway.v1}/request/{request_id}/feedback")
    assert status == 200, body
    data: dict[str, Any] = body["data"]
    return data


@pytest.mark.parametrize("rating", ["no", "yes", 1, 0, "true", [True]])
async def test_a_rating_that_is_not_a_json_boolean_is_refused_on_every_route(
    gateway: Gateway, http: aiohttp.ClientSession, rating: Any
) -> None:
    v1 = gateway.v1
    assert (await call(http, "POST", f"{v1}/request/r-1/feedback", {"rating": True}))[0] == 202
    for url, body in [
        (f"{v1}/request/r-1/feedback", {"rating": rating}),
        (f"{v1}/request/r-1/feedback", {"rating": rating, "signal": "copied"}),
        (f"{v1}/session/s-1/feedback", {"rating": rating}),
        (f"{v1}/feedback", {"helicone-id": "r-1", "rating": rating}),
    ]:
        status, answer = await call(http, "POST", url, body)
        assert status == 422 and answer["error"].startswith("rating: "), (url, answer)
    status, answer = await call(
        http, "POST", f"{v1}/feedback/batch", {"items": [{"requestId": "r-1", "rating": rating}]}
    )
    [result] = answer["data"]["results"]
    assert status == 200 and result["status"] == "invalid" and result["error"].startswith("rating: ")
    after = await state(http, gateway, "r-1")
    assert after["rating"] is True and len(after["history"]) == 1 and after["signals"] == []
    assert (await call(http, "GET", f"{v1}/session/s-1/feedback"))[1]["data"]["rating"] is None


async def test_metadata_nested_too_deep_is_refused_naming_the_field(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    v1 = either_gateway.v1
    for depth in (33, 300):
        body = b'{"rating": true, "metadata": {"ui": ' + deep_json(depth - 1) + b"}}"
        status, answer = await call(http, "POST", f"{v1}/request/deep/feedback", body)
        assert (status, answer["error"]) == (422, "metadata: is nested more than 32 levels deep")
        body = b'{"datasetName": "deep", "meta": {"a": ' + deep_json(depth - 1) + b"}}"
        status, answer = await call(http, "POST", f"{v1}/helicone-dataset", body)
        assert (status, answer["error"]) == (400, "meta: is nested more than 32 levels deep")
        body = b'{"items": [{"requestId": "deep", "rating": true, "metadata": {"a": ' + deep_json(depth) + b"}}]}"
        status, answer = await call(http, "POST", f"{v1}/feedback/batch", body)
        assert status == 200 and answer["data"]["results"][0]["error"] == "metadata: is nested more than 32 levels deep"
    assert (await state(http, either_gateway, "deep"))["history"] == []
    # 32 levels (the object and 31 lists inside it) is kept and read back as sent.
    assert (await call(http, "POST", f"{v1}/request/deep/feedback", {"rating": True, "metadata": {"ui": nested(31)}}))[
        0
    ] == 202
    assert (await state(http, either_gateway, "deep"))["metadata"] == {"ui": nested(31)}
    status, answer = await call(
        http, "POST", f"{v1}/helicone-dataset", {"datasetName": "ok", "meta": {"a": nested(31)}}
    )
    assert status == 200
    datasets = (await call(http, "POST", f"{v1}/helicone-dataset/query"))[1]["data"]
    assert [d["meta"] for d in datasets] == [{"a": nested(31)}]


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ({"rating": True, "kind": "implicit"}, "implicit feedback needs a signal, e.g. 'code_accepted'"),
        ({"rating": True, "kind": "explicit", "signal": "copied"}, "signal goes with kind 'implicit'"),
        ({"rating": False, "signal": "copied", "metadata": {"x": "y" * 9000}}, "at most 8192 bytes"),
        ({"rating": True, "metadata": {"ui": nested(40)}}, "metadata: is nested more than 32 levels deep"),
        ({"rating": True, "comment": "a\x00b"}, "comment: must not contain the NUL character"),
        ({"scores": {"big": 2**63}}, "scores.big: must be between"),
        ({"rating": "yes"}, "rating: "),
    ],
)
async def test_one_invalid_batch_item_is_that_items_result_and_the_valid_ones_are_stored(
    either_gateway: Gateway, http: aiohttp.ClientSession, bad: dict[str, Any], error: str
) -> None:
    items = [
        {"requestId": "b-1", "rating": True},
        {"requestId": "b-2", **bad},
        {"requestId": "b-3", "scores": {"stars": 2}, "rating": False, "signal": "regenerated"},
    ]
    status, answer = await call(http, "POST", f"{either_gateway.v1}/feedback/batch", {"items": items})
    assert status == 200, answer
    first, invalid, third = answer["data"]["results"]
    assert first == {"requestId": "b-1", "status": "pending"} and third == {"requestId": "b-3", "status": "pending"}
    assert invalid["requestId"] == "b-2" and invalid["status"] == "invalid" and error in invalid["error"]
    assert (await state(http, either_gateway, "b-1"))["rating"] is True
    stored = await state(http, either_gateway, "b-3")
    assert stored["scores"] == {"stars": 2} and [s["signal"] for s in stored["signals"]] == ["regenerated"]
    empty = await state(http, either_gateway, "b-2")
    assert (empty["history"], empty["signals"], empty["scores"]) == ([], [], {})


async def test_a_nul_character_is_refused_naming_the_field_on_both_stores(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    v1 = either_gateway.v1
    assert (await call(http, "POST", f"{v1}/request/nul/feedback", {"rating": True, "comment": "fine"}))[0] == 202
    for method, path, body, field in [
        ("POST", "/request/nul/feedback", {"rating": False, "comment": "a\x00b"}, "comment"),
        ("POST", "/request/nul/feedback", {"rating": False, "user_id": "\x00"}, "user_id"),
        ("PUT", "/request/nul/property", {"key": "k", "value": "v\x00"}, "value"),
        ("POST", "/session/nul/feedback", {"rating": False, "comment": "\x00"}, "comment"),
        ("POST", "/session/nul/feedback", {"rating": False, "user_id": "u\x00"}, "user_id"),
    ]:
        status, answer = await call(http, method, v1 + path, body)
        assert status == 422 and answer["error"] == f"{field}: must not contain the NUL character (\\u0000)", answer
    for body, field in [({"datasetName": "a\x00"}, "datasetName"), ({"name": "\x00", "model": "m"}, "name")]:
        path = "/helicone-dataset" if "datasetName" in body else "/datasets"
        status, answer = await call(http, "POST", v1 + path, body)
        assert status == 400 and answer["error"] == f"{field}: must not contain the NUL character (\\u0000)"
    after = await state(http, either_gateway, "nul")
    assert after["rating"] is True and after["comment"] == "fine" and len(after["history"]) == 1
    # Inside metadata a NUL is JSON text (written \u0000), which both stores keep and give back as sent.
    body = {"rating": True, "signal": "copied", "metadata": {"raw": "a\x00b"}}
    assert (await call(http, "POST", f"{v1}/request/nul/feedback", body))[0] == 202
    assert (await state(http, either_gateway, "nul"))["signals"][0]["metadata"] == {"raw": "a\x00b"}


@pytest.mark.parametrize("raw_id", ["%7B", "a%7D", "a%2Fb", "%7Bx%7D"])
async def test_a_malformed_id_in_a_feedback_or_dataset_path_is_a_400_and_never_reaches_the_provider(
    gateway: Gateway, fake: FakeUpstream, http: aiohttp.ClientSession, raw_id: str
) -> None:
    """aiohttp's default route pattern stops at { and }: such an ID fell through to the proxy's catch-all."""
    for method, path in [
        ("POST", f"/v1/request/{raw_id}/feedback"),
        ("GET", f"/v1/request/{raw_id}"),
        ("DELETE", f"/v1/request/{raw_id}/score"),
        ("POST", f"/v1/session/{raw_id}/feedback"),
        ("GET", f"/v1/datasets/{raw_id}/export"),
        ("POST", f"/v1/helicone-dataset/{raw_id}/count"),
    ]:
        async with http.request(method, URL(gateway.url + path, encoded=True), json={"rating": True}) as r:
            answer = await r.json()
            assert r.status == 400 and answer["data"] is None and "invalid" in answer["error"], (path, answer)
    assert fake.received == []
