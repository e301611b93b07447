"""Filters and query strings the stores cannot compare are a clear 400, on both stores; valid extremes answer."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import aiohttp
import orjson
import pytest

from conftest import Gateway

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}
# Every route that takes the simple filters in its query string.
SELECTING = ["/feedback/stats?", "/feedback/insights?", "/feedback/regressions?notify=false&", "/export?format=jsonl&"]


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    async with http.request(method, url, data=data) as r:
        raw = await r.read()
        return r.status, orjson.loads(raw) if r.content_type == "application/json" else raw


async def logged(gateway: Gateway, http: aiohttp.ClientSession, request_id: str) -> None:
    async with http.post(f"{gateway.v1}/chat/completions", json=CHAT, headers={"Helicone-Request-Id": request_id}) as r:
        assert r.status == 200
    await gateway.settled()


def created_at(op: str, value: str) -> dict[str, Any]:
    return {"filter": {"request": {"created_at": {op: value}}}}


async def test_filter_dates_beyond_year_9999_or_before_year_1_are_a_clear_400(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await logged(either_gateway, http, "dated")
    v1 = either_gateway.v1
    for value in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00"):
        for path in ("/request/query", "/request/count/query"):
            status, answer = await call(http, "POST", v1 + path, created_at("gte", value))
            assert status == 400 and answer["error"] == (
                f"request.created_at: {value!r} is outside the years 1 to 9999 (UTC) that the stores keep"
            )
        status, answer = await call(
            http, "POST", f"{v1}/request/query", {"filter": {"feedback": {"created_at": {"lt": value}}}}
        )
        assert status == 400 and "feedback.created_at" in answer["error"]
        for path in SELECTING:
            status, answer = await call(http, "GET", f"{v1}{path}until={quote(value)}")
            assert status == 400 and answer["error"].startswith(f"until: {value!r} is outside the years 1 to 9999")
    # The extremes themselves are dates like any other; a date in the year 5 sorts before this year.
    for op, value, found in [("lt", "9999-12-31T23:59:59", 1), ("gte", "0001-01-01", 1), ("lt", "0005-01-01", 0)]:
        status, answer = await call(http, "POST", f"{v1}/request/count/query", created_at(op, value))
        assert (status, answer["data"]) == (200, found)
    for path in SELECTING:
        status, answer = await call(http, "GET", f"{v1}{path}since=0005-01-01&until=9999-12-31")
        assert status == 200, answer


@pytest.mark.parametrize("span", ["3000000d", "800000w", "99999999999h", "9" * 400 + "m"])
async def test_a_relative_span_reaching_before_year_1_is_a_clear_400(
    either_gateway: Gateway, http: aiohttp.ClientSession, span: str
) -> None:
    v1 = either_gateway.v1
    message = f"since: {span[:32]!r} reaches back before the year 1; use a shorter span or a date"
    for path in SELECTING:
        assert await call(http, "GET", f"{v1}{path}since={span}") == (400, {"data": None, "error": message})
    assert await call(http, "POST", f"{v1}/datasets", {"name": "old", "since": span}) == (
        400,
        {"data": None, "error": message},
    )
    status, created = await call(http, "POST", f"{v1}/datasets", {"name": "all"})
    assert status == 201
    status, answer = await call(http, "GET", f"{v1}/datasets/{created['data']['datasetId']}/export?since={span}")
    assert (status, answer) == (400, {"data": None, "error": message})
    # 700,000 days back is the year 109: a date far back, written with its four digits, so it still sorts.
    assert (await call(http, "GET", f"{v1}/feedback/stats?since=700000d"))[0] == 200


async def test_a_filter_integer_beyond_64_bits_is_a_clear_400(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await logged(either_gateway, http, "counted")
    v1 = either_gateway.v1
    for value in (2**63, 2**64 - 1):
        for leaf in (
            {"response": {"prompt_tokens": {"gte": value}}},
            {"response": {"status": {"equals": value}}},
            {"scores": {"stars": {"lt": value}}},
        ):
            status, answer = await call(http, "POST", f"{v1}/request/query", {"filter": leaf})
            assert (
                status == 400 and f"{value} is outside the 64-bit integer range the stores compare" in answer["error"]
            )
    # The 64-bit extremes and numbers beyond them written as floats compare like any number.
    for bound in (2**63 - 1, -(2**63), 1.8e19, -1e300):
        status, answer = await call(
            http, "POST", f"{v1}/request/count/query", {"filter": {"response": {"status": {"lt": bound}}}}
        )
        assert (status, answer["data"]) == (200, 1 if bound > 0 else 0)


async def test_a_nul_in_a_filter_or_query_string_is_a_clear_400(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    await logged(either_gateway, http, "nul-filter")
    v1 = either_gateway.v1
    message = "must not contain the NUL character (\\u0000)"
    for leaf, where in [
        ({"request": {"model": {"equals": "a\x00"}}}, "request.model"),
        ({"request": {"user_id": {"contains": "\x00"}}}, "request.user_id"),
        ({"feedback": {"comment": {"ilike": "%\x00%"}}}, "feedback.comment"),
        ({"properties": {"feature": {"equals": "\x00"}}}, "properties.feature"),
    ]:
        status, answer = await call(http, "POST", f"{v1}/request/query", {"filter": leaf})
        assert (status, answer["error"]) == (400, f"{where}: {message}")
    for path in SELECTING:
        status, answer = await call(http, "GET", f"{v1}{path}model=a%00b")
        assert (status, answer["error"]) == (400, f"request.model: {message}")
    status, answer = await call(http, "GET", f"{v1}/feedback/regressions?signal=a%00")
    assert (status, answer["error"]) == (400, f"signal: {message}")
    assert (await call(http, "POST", f"{v1}/datasets", {"name": "n", "user": "\x00"}))[1]["error"] == (
        f"request.user_id: {message}"
    )
    for path in ("/datasets/a%00b", "/datasets/a%00b/export", "/helicone-dataset/a%00b/count"):
        method = "POST" if "helicone" in path else "GET"
        status, answer = await call(http, method, v1 + path)
        assert status == 400 and answer["error"].startswith("invalid dataset ID 'a\\x00b'")
    status, answer = await call(http, "POST", f"{v1}/helicone-dataset/query", {"datasetIds": ["\x00"]})
    assert status == 400 and answer["error"].startswith("invalid dataset ID")


async def test_a_property_name_no_filter_can_take_does_not_turn_insights_into_an_error(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    v1 = either_gateway.v1
    async with http.post(f"{v1}/chat/completions", json=CHAT, headers={"Helicone-Property-Odd!Name": "x"}) as r:
        assert r.status == 200
    await either_gateway.settled()
    assert (await call(http, "PUT", f"{v1}/request/odd/property", {"key": "with space", "value": "y"}))[0] == 202
    for path in ("/feedback/insights", "/feedback/regressions?notify=false"):
        status, answer = await call(http, "GET", v1 + path)
        assert status == 200, answer
        assert not any(" " in name or "!" in name for name in answer["data"]["dimensions"])
