"""A manual log the row cannot hold is a 400 naming the field; every accepted one becomes a row, on both stores."""

from __future__ import annotations

import copy
from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Gateway
from test_feedback_input_checks import nested
from test_manual_log import log_body, send

INT32_MAX = 2**31 - 1


def timed(start: dict[str, Any], end: dict[str, Any] | None = None) -> dict[str, Any]:
    return log_body(timing={"startTime": start, "endTime": end or start})


def with_usage(**usage: Any) -> dict[str, Any]:
    body = log_body()
    body["providerResponse"] = copy.deepcopy(body["providerResponse"])
    body["providerResponse"]["json"]["usage"] = usage
    return body


async def row_of(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    await gateway.settled()
    async with http.get(f"{gateway.v1}/request/{request_id}") as r:
        assert r.status == 200, f"accepted log {request_id} has no row"
        data: dict[str, Any] = (await r.json())["data"]
        return data


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (timed({"seconds": 1e20}), "timing.startTime.seconds: must be at most 253402300799 (9999-12-31T23:59:59Z)"),
        (timed({"seconds": 253402300800}), "timing.startTime.seconds: must be at most 253402300799"),
        (timed({"seconds": -1}), "timing.startTime.seconds: Input should be greater than or equal to 0"),
        (timed({"seconds": 1}, {"seconds": 1e20}), "timing.endTime.seconds: must be at most 253402300799"),
        (timed({"seconds": 253402300799, "milliseconds": 1000}), "timing.startTime: seconds plus milliseconds"),
        (timed({"seconds": 0, "milliseconds": 1e20}), "timing.startTime: seconds plus milliseconds is after"),
        (timed({"seconds": 10}, {"seconds": 5}), "timing: startTime must not be after endTime"),
        (timed({"seconds": "10"}), "timing.startTime.seconds: Input should be a valid number"),
    ],
)
async def test_a_manual_log_with_an_impossible_time_is_a_400_naming_the_field(
    gateway: Gateway, http: aiohttp.ClientSession, body: dict[str, Any], where: str
) -> None:
    status, _request_id, answer = await send(http, gateway, "/oai/v1/log", body)
    assert status == 400 and answer["error"].startswith(f"invalid log body: {where}"), answer


@pytest.mark.parametrize(
    ("body", "where"),
    [
        (with_usage(prompt_tokens=2**31, completion_tokens=1), "providerResponse.json.usage.prompt_tokens"),
        (with_usage(prompt_tokens=1, completion_tokens=1e20), "providerResponse.json.usage.completion_tokens"),
        (with_usage(prompt_tokens=-5, completion_tokens=1), "providerResponse.json.usage.prompt_tokens"),
        (with_usage(input_tokens=1, prompt_tokens_details={"cached_tokens": 2**40}), "usage.prompt_tokens_details"),
        (with_usage(prompt_tokens=INT32_MAX, completion_tokens=1), "providerResponse.json.usage: token counts add"),
    ],
)
async def test_token_counts_a_row_cannot_hold_are_a_400_naming_the_field(
    gateway: Gateway, http: aiohttp.ClientSession, body: dict[str, Any], where: str
) -> None:
    status, _request_id, answer = await send(http, gateway, "/oai/v1/log", body)
    assert status == 400 and where in answer["error"], answer


async def test_deep_or_nul_holding_log_bodies_are_a_400_naming_the_field(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    deep = b"[" * 300 + b"]" * 300
    raw = orjson.dumps(log_body()).replace(
        b'"json":{"model":"gpt-4o-mini"', b'"json":{"deep":' + deep + b',"model":"x"'
    )
    async with http.post(f"{gateway.url}/oai/v1/log", data=raw) as r:
        assert r.status == 400
        assert (await r.json())[
            "error"
        ] == "invalid log body: providerRequest.json: is nested more than 128 levels deep"
    cases = [
        (log_body(providerRequest={"url": "https://x/v1", "json": {"model": "a\x00"}, "meta": {}}), "json.model"),
        (log_body(providerRequest={"url": "https://x/v1\x00", "json": {}, "meta": {}}), "providerRequest.url"),
        (log_body(providerRequest={"url": "https://x/v1", "json": {}, "meta": {"Helicone-User-Id": "\x00"}}), "meta"),
        (
            log_body(providerResponse={"json": {"choices": [{"text": "\x00"}]}, "status": 200, "headers": {}}),
            "providerResponse.json.choices.0.text",
        ),
        (log_body(providerResponse={"json": {}, "textBody": "\x00", "status": 200, "headers": {}}), "textBody"),
    ]
    for body, where in cases:
        status, _request_id, answer = await send(http, gateway, "/oai/v1/log", body)
        assert status == 400 and where in answer["error"] and "NUL" in answer["error"], answer


async def test_every_accepted_manual_log_produces_a_row(either_gateway: Gateway, http: aiohttp.ClientSession) -> None:
    """The edges of what is accepted: the row keeps each value as sent, on both stores."""
    last = {"seconds": 253402300799, "milliseconds": 500}
    edges = [
        (timed({"seconds": 0}), {"request_created_at": "1970-01-01T00:00:00.000000Z"}),
        (timed(last), {"request_created_at": "9999-12-31T23:59:59.500000Z"}),
        (with_usage(prompt_tokens=INT32_MAX - 1, completion_tokens=1, total_tokens=INT32_MAX), {}),
        (
            log_body(providerRequest={"url": "x", "json": {"a": nested(100)}, "meta": {"Helicone-Property-Tab": "\t"}}),
            {},
        ),
    ]
    for body, expected in edges:
        status, request_id, answer = await send(http, either_gateway, "/oai/v1/log", body)
        assert status == 200 and request_id, answer
        row = await row_of(http, either_gateway, request_id)
        assert {key: row[key] for key in expected} == expected
    status, request_id, _answer = await send(http, either_gateway, "/oai/v1/log", edges[2][0])
    assert request_id
    row = await row_of(http, either_gateway, request_id)
    assert (row["prompt_tokens"], row["completion_tokens"], row["total_tokens"]) == (INT32_MAX - 1, 1, INT32_MAX)
