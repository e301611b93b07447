"""Helicone's request query API: filter trees, sorting, paging, and hostile input that must stay data."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from analysis_data import known_dataset
from conftest import Gateway
from feedgate.appkeys import WRITER
from feedgate.errors import FilterError
from feedgate.store.dialect import POSTGRES, SQLITE
from feedgate.store.filters import compile_filter


async def query(http: aiohttp.ClientSession, gateway: Gateway, body: Any, path: str = "query") -> tuple[int, Any]:
    url = f"{gateway.v1}/request/{path}" if path == "query" else f"{gateway.v1}/request/count/query"
    async with http.post(url, json=body) as r:
        return r.status, await r.json()


def both(left: Any, right: Any, op: str = "and") -> dict[str, Any]:
    return {"left": left, "operator": op, "right": right}


@pytest.fixture
async def loaded(gateway: Gateway) -> Gateway:
    await gateway.app[WRITER].submit(known_dataset())
    return gateway


async def test_filter_tree_sort_and_page(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    tree = both({"request": {"model": {"equals": "gpt-4o"}}}, {"feedback": {"rating": {"equals": True}}})
    status, body = await query(http, loaded, {"filter": tree, "limit": 3, "sort": {"latency": "asc"}})
    assert status == 200 and body["error"] is None
    rows = body["data"]
    assert [r["request_id"] for r in rows] == ["a1", "a2", "a3"]
    first = rows[0]
    assert first["feedback_rating"] is True and first["feedback_comment"] == "great"
    assert first["scores"] == {"helpfulness": 0.5} and first["properties"] == {"feature": "chat"}
    assert first["attempts"] == 2 and first["response_status"] == 200  # the retry, not the 429
    assert first["response_body"]["choices"][0]["message"]["content"] == "answer 1"
    status, body = await query(http, loaded, {"filter": tree, "offset": 5, "limit": 10, "sort": {"latency": "asc"}})
    assert [r["request_id"] for r in body["data"]] == ["a6"]
    status, body = await query(http, loaded, {"filter": tree}, "count")
    assert (status, body["data"]) == (200, 6)
    status, body = await query(http, loaded, {"filter": "all"}, "count")
    assert body["data"] == 15  # request IDs, not attempts


@pytest.mark.parametrize(
    ("tree", "expected"),
    [
        ({"request": {"user_id": {"equals": "u2"}}}, 5),
        ({"request": {"user_id": {"not-equals": "u2"}}}, 10),
        ({"response": {"latency": {"gte": 500}}}, 6),
        ({"response": {"latency": {"lt": 60}}}, 1),
        ({"response": {"status": {"equals": 200}}}, 15),
        ({"response": {"text": {"contains": "ANSWER 1"}}}, 2),  # case-insensitive: answer 1 and answer 10
        ({"response": {"text": {"not-contains": "answer"}}}, 5),
        ({"request": {"model": {"like": "gpt-%"}}}, 10),
        ({"request": {"model": {"like": "GPT-%"}}}, 0),  # like is case-sensitive in both stores
        ({"request": {"model": {"ilike": "GPT-%"}}}, 10),
        ({"properties": {"feature": {"equals": "chat"}}}, 7),
        ({"properties": {"feature": {"not-equals": "chat"}}}, 8),  # includes requests without the property
        ({"feedback": {"rating": {"equals": False}}}, 5),
        ({"feedback": {"rating": {"equals": None}}}, 3),
        ({"feedback": {"comment": {"contains": "too"}}}, 1),
        ({"feedback": {"signal": {"equals": "copied"}}}, 2),
        ({"scores": {"helpfulness": {"gt": 0.5}}}, 1),
        ({"request_response_rmt": {"model": {"equals": "claude-sonnet-4-5"}}}, 5),
        ({"request_response_rmt": {"properties": {"feature": {"equals": "code"}}}}, 5),
        (both({"request": {"user_id": {"equals": "u1"}}}, {"request": {"user_id": {"equals": "u2"}}}, "or"), 15),
        ({"request": {"created_at": {"gte": "2000-01-01"}}}, 15),
        ({"request": {"created_at": {"lt": "2000-01-01T00:00:00+02:00"}}}, 0),
        ({"request": {"model": {"equals": "x' OR '1'='1"}}}, 0),
        ({"request": {"model": {"equals": "gpt-4o'; DROP TABLE requests; --"}}}, 0),
        ({"request": {"model": {"like": "%' OR 1=1 --%"}}}, 0),
    ],
)
async def test_filters_count(loaded: Gateway, http: aiohttp.ClientSession, tree: Any, expected: int) -> None:
    status, body = await query(http, loaded, {"filter": tree}, "count")
    assert (status, body["data"]) == (200, expected), body
    status, body = await query(http, loaded, {"filter": tree, "limit": 100})
    assert status == 200 and len(body["data"]) == expected


def deep(levels: int) -> Any:
    tree: Any = {"request": {"model": {"equals": "gpt-4o"}}}
    for _ in range(levels):
        tree = both(tree, "all")
    return tree


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"filter": {"requests": {"model": {"equals": "x"}}}}, "unknown table 'requests'"),
        ({"filter": {"request": {"model; DROP TABLE requests": {"equals": "x"}}}}, "unknown column"),
        ({"filter": {"request": {"model": {"equals": "x"}, "user_id": {"equals": "y"}}}}, "exactly one column"),
        ({"filter": {"request": {"model": {"gte": "x"}}}}, "operator 'gte' is not allowed"),
        ({"filter": {"request": {"model": {"UNION SELECT": "x"}}}}, "is not allowed"),
        ({"filter": {"response": {"latency": {"gt": "fast"}}}}, "expected a number"),
        ({"filter": {"response": {"latency": {"gt": True}}}}, "expected a number"),
        ({"filter": {"request": {"created_at": {"gte": "last tuesday"}}}}, "ISO 8601"),
        ({"filter": {"request": {"created_at": {"gte": 1700000000}}}}, "ISO 8601"),
        ({"filter": {"feedback": {"rating": {"equals": "yes"}}}}, "expected a boolean"),
        ({"filter": {"properties": {'feature") OR 1=1 --': {"equals": "x"}}}}, "invalid property name"),
        ({"filter": {"properties": {"nothing": {"equals": "x"}}}}, "unknown property 'nothing'"),
        ({"filter": {"left": "all", "operator": "xor", "right": "all"}}, "'and' or 'or'"),
        ({"filter": {"left": "all", "operator": "and"}}, "left, operator and right"),
        ({"filter": ["all"]}, "a filter is"),
        ({"filter": 42}, "a filter is"),
        ({"filter": deep(40)}, "nested more than"),
        ({"filter": "all", "limit": 1_000_000}, "limit"),
        ({"filter": "all", "limit": 0}, "limit"),
        ({"filter": "all", "offset": -1}, "offset"),
        ({"filter": "all", "offset": "1; DROP TABLE requests"}, "offset"),
        ({"filter": "all", "sort": {"created_at; DROP TABLE requests": "asc"}}, "unknown sort key"),
        ({"filter": "all", "sort": {"created_at": "sideways"}}, "direction"),
        ({"filter": "all", "sort": {"properties": {"a b": "asc"}}}, "invalid property name"),
        ({"filter": "all", "colour": "blue"}, "colour"),
    ],
)
async def test_bad_queries_are_400(loaded: Gateway, http: aiohttp.ClientSession, body: Any, fragment: str) -> None:
    status, answer = await query(http, loaded, body)
    assert status == 400, answer
    assert answer["data"] is None and fragment in answer["error"]
    status, answer = await query(http, loaded, {"filter": "all"}, "count")
    assert answer["data"] == 15  # nothing was dropped or changed


async def test_too_many_conditions_and_bad_json(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    level: list[Any] = [{"request": {"user_id": {"equals": f"u{i}"}}} for i in range(70)]
    while len(level) > 1:  # a balanced tree: shallow, but too many leaves
        level = [
            both(level[i], level[i + 1], "or") if i + 1 < len(level) else level[i] for i in range(0, len(level), 2)
        ]
    tree = level[0]
    status, answer = await query(http, loaded, {"filter": tree})
    assert status == 400 and "more than 64 conditions" in answer["error"]
    async with http.post(f"{loaded.v1}/request/query", data=b"{not json") as r:
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]


async def test_huge_values_stay_bound(loaded: Gateway, http: aiohttp.ClientSession) -> None:
    value = "'" * 100_000
    status, body = await query(http, loaded, {"filter": {"request": {"user_id": {"contains": value}}}})
    assert (status, body["data"]) == (200, [])


def test_values_never_enter_the_sql_text() -> None:
    hostile = "x' OR 1=1; DROP TABLE requests; --"
    tree = both({"properties": {"feature": {"equals": hostile}}}, {"request": {"model": {"contains": hostile}}})
    for dialect in (SQLITE, POSTGRES):
        compiled = compile_filter(tree, dialect)
        assert hostile not in compiled.where.sql and compiled.where.params.count(hostile) == 2
        assert compiled.where.sql.count("?") == len(compiled.where.params)
        assert compiled.properties == {"feature"}
    assert (
        "->>" in compile_filter(tree, POSTGRES).where.sql and "json_extract" in compile_filter(tree, SQLITE).where.sql
    )
    with pytest.raises(FilterError):
        compile_filter({"properties": {'a"b': {"equals": "x"}}}, SQLITE)
