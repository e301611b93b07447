"""Scores go in within what a double keeps exactly, every read survives what older versions stored, and scores
can be removed."""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from conftest import Gateway
from feedgate.appkeys import WRITER
from feedgate.store.ops import PutScores

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello"}]}


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else orjson.dumps(body)
    async with http.request(method, url, data=data) as r:
        return r.status, await r.json()


async def logged(gateway: Gateway, http: aiohttp.ClientSession, request_id: str) -> str:
    async with http.post(f"{gateway.v1}/chat/completions", json=CHAT, headers={"Helicone-Request-Id": request_id}) as r:
        assert r.status == 200
    await gateway.settled()
    return request_id


async def export_lines(http: aiohttp.ClientSession, gateway: Gateway) -> list[dict[str, Any]]:
    """The whole jsonl export, each line parsed: a stream broken off mid-way fails here."""
    async with http.get(f"{gateway.v1}/export", params={"format": "jsonl"}) as r:
        assert r.status == 200
        body = await r.read()
        assert int(r.headers["Feedgate-Export-Rows"]) == len(body.splitlines())
    return [orjson.loads(line) for line in body.splitlines()]


async def reads_answer(http: aiohttp.ClientSession, gateway: Gateway, request_id: str) -> dict[str, Any]:
    """Every read that shows a request's scores answers 200; returns the scores ``GET /v1/request/{id}`` shows."""
    status, row = await call(http, "GET", f"{gateway.v1}/request/{request_id}")
    assert status == 200, row
    for method, path, body in [
        ("GET", f"/request/{request_id}/feedback", None),
        ("POST", "/request/query", {"filter": "all"}),
        ("POST", "/request/query", {"filter": {"scores": {"big": {"gte": 1}}}}),
        ("GET", "/feedback/stats", None),
        ("GET", "/feedback/insights", None),
        ("GET", "/feedback/regressions?notify=false", None),
    ]:
        got, answer = await call(http, method, gateway.v1 + path, body)
        assert got == 200, (path, answer)
    assert any(line["request_id"] == request_id for line in await export_lines(http, gateway))
    scores: dict[str, Any] = row["data"]["scores"]
    return scores


@pytest.mark.parametrize(
    "value",
    [2**64 - 1, 2**63, 2**53 + 1, -(2**53) - 1, 1e308, -1.5e300, 9007199254740994.0],
    ids=["u64-max", "2**63", "2**53+1", "-2**53-1", "1e308", "-1.5e300", "float-2**53+2"],
)
async def test_a_64_bit_score_is_refused_and_reads_still_answer(
    either_gateway: Gateway, http: aiohttp.ClientSession, value: int | float
) -> None:
    request_id = await logged(either_gateway, http, "big-score")
    url = f"{either_gateway.v1}/request/{request_id}/score"
    status, answer = await call(http, "POST", url, {"scores": {"stars": 4, "big": value}})
    assert status == 422 and answer["data"] is None
    assert answer["error"].startswith("scores.big: must be between -9007199254740992 and 9007199254740992")
    assert await reads_answer(http, either_gateway, request_id) == {}  # nothing of the refused body was stored


async def test_scores_at_the_bounds_are_kept_exactly(either_gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await logged(either_gateway, http, "edge-score")
    edges = {"top": 2**53, "bottom": -(2**53), "tiny": 5e-324, "half": 0.5, "yes": True}
    assert (await call(http, "POST", f"{either_gateway.v1}/request/{request_id}/score", {"scores": edges}))[0] == 201
    scores = await reads_answer(http, either_gateway, request_id)
    assert scores == edges and isinstance(scores["top"], int) and isinstance(scores["yes"], bool)


async def test_an_out_of_range_score_stored_by_an_older_version_reads_back_as_a_float(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    """Older versions took any integer (stored as a double) and any float; reads give them back as floats."""
    request_id = await logged(either_gateway, http, "old-score")
    other_id = await logged(either_gateway, http, "old-score-2")
    old = PutScores(request_id, {"big": (float(2**64 - 1), "int"), "huge": (1.7e308, "float"), "ok": (3.0, "int")})
    await either_gateway.app[WRITER].submit([old, PutScores(other_id, {"huge": (1.7e308, "float")})])
    scores = await reads_answer(http, either_gateway, request_id)
    assert scores == {"big": 1.8446744073709552e19, "huge": 1.7e308, "ok": 3}
    assert isinstance(scores["big"], float) and isinstance(scores["ok"], int)
    # Stats sum scores within +-2**53, so two near the double's maximum do not overflow PostgreSQL's SUM.
    status, stats = await call(http, "GET", f"{either_gateway.v1}/feedback/stats")
    assert status == 200 and stats["data"]["overall"]["scores"]["huge"] == 2**53


async def test_scores_are_removed_by_name_or_all_and_an_unknown_name_is_no_error(
    either_gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    request_id = await logged(either_gateway, http, "removed-scores")
    url = f"{either_gateway.v1}/request/{request_id}/score"
    scores = {"stars": 4, "accuracy": 0.9, "helpful": True, "tone": 2, "length": 1}
    assert (await call(http, "POST", url, {"scores": scores}))[0] == 201
    assert await call(http, "DELETE", url, {"names": ["stars", "never-scored"]}) == (200, {"data": None, "error": None})
    assert (await call(http, "DELETE", f"{url}?name=accuracy&name=also-unknown"))[0] == 200
    assert await reads_answer(http, either_gateway, request_id) == {"helpful": True, "tone": 2, "length": 1}
    assert (await call(http, "DELETE", f"{url}?name=tone", {"names": ["helpful"]}))[0] == 200
    assert await reads_answer(http, either_gateway, request_id) == {"length": 1}
    assert (await call(http, "DELETE", url))[0] == 200  # no names: every score of the request
    assert await reads_answer(http, either_gateway, request_id) == {}
    assert (await call(http, "DELETE", url))[0] == 200  # nothing left to remove is no error either
    # A score given again after its removal is stored as new.
    assert (await call(http, "POST", url, {"scores": {"stars": 5}}))[0] == 201
    assert await reads_answer(http, either_gateway, request_id) == {"stars": 5}


async def test_removing_scores_leaves_other_requests_and_the_rating_alone(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    first, second = await logged(gateway, http, "keep-1"), await logged(gateway, http, "keep-2")
    for request_id in (first, second):
        assert (await call(http, "POST", f"{gateway.v1}/request/{request_id}/score", {"scores": {"stars": 3}}))[
            0
        ] == 201
        assert (await call(http, "POST", f"{gateway.v1}/request/{request_id}/feedback", {"rating": True}))[0] == 201
    assert (await call(http, "DELETE", f"{gateway.v1}/request/{first}/score"))[0] == 200
    first_state = (await call(http, "GET", f"{gateway.v1}/request/{first}/feedback"))[1]["data"]
    second_state = (await call(http, "GET", f"{gateway.v1}/request/{second}/feedback"))[1]["data"]
    assert first_state["scores"] == {} and first_state["rating"] is True
    assert second_state["scores"] == {"stars": 3} and second_state["rating"] is True


@pytest.mark.parametrize(
    ("suffix", "body", "status", "fragment"),
    [
        ("", {"names": []}, 422, "names"),
        ("", {"names": ["bad/name"]}, 422, "names.0"),
        ("", {"name": ["stars"]}, 422, "unknown field 'name'"),
        ("", ["stars"], 422, "JSON object"),
        ("?name=bad%2Fname", None, 422, "names.0"),
        ("?names=stars", None, 400, "unknown parameter 'names'"),
    ],
)
async def test_a_bad_score_removal_is_refused_and_removes_nothing(
    gateway: Gateway, http: aiohttp.ClientSession, suffix: str, body: Any, status: int, fragment: str
) -> None:
    request_id = await logged(gateway, http, "bad-removal")
    url = f"{gateway.v1}/request/{request_id}/score"
    assert (await call(http, "POST", url, {"scores": {"stars": 3}}))[0] == 201
    got, answer = await call(http, "DELETE", url + suffix, body)
    assert got == status and answer["data"] is None and fragment in answer["error"]
    assert (await call(http, "GET", f"{gateway.v1}/request/{request_id}/feedback"))[1]["data"]["scores"] == {"stars": 3}
