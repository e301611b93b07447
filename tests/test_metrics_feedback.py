"""Feedback in ``/metrics``: every kind counted once it is committed, and the pending gauge."""

from __future__ import annotations

import aiohttp
import openai
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway
from feedgate.store.ops import PutFeedback, PutProperty, PutScores
from feedgate.store.protocol import Store
from feedgate.store.reads.feedback import pending_count, trace_of
from scraping import scrape
from test_store_contract import row

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Rate me"}]


async def test_feedback_of_each_kind_is_counted(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    rid = raw.headers["helicone-id"]
    fg = gateway.url

    async def post(path: str, body: object, method: str = "POST") -> int:
        async with http.request(method, f"{fg}{path}", json=body) as r:
            return r.status

    assert await post(f"/v1/request/{rid}/feedback", {"rating": True}) == 201
    assert await post(f"/v1/request/{rid}/feedback", {"rating": False, "comment": "wrong"}) == 201
    async with http.delete(f"{fg}/v1/request/{rid}/feedback") as r:
        assert r.status == 200
    assert await post(f"/v1/request/{rid}/feedback", {"rating": True, "signal": "copied"}) == 201
    assert await post(f"/v1/request/{rid}/feedback", {"rating": False, "signal": "my_own_signal"}) == 201
    assert await post(f"/v1/request/{rid}/score", {"scores": {"stars": 4, "relevance": 0.5, "resolved": True}}) == 201
    assert await post("/v1/session/s-1/feedback", {"rating": True}) == 201
    assert await post("/v1/feedback", {"helicone-id": rid, "rating": True}) == 200
    batch = {
        "items": [
            {"requestId": rid, "rating": False},
            {"requestId": rid, "rating": True, "signal": "code_accepted"},
            {"requestId": rid, "scores": {"resolved": False}},
            {"requestId": "", "rating": True},  # invalid: not stored, not counted
        ]
    }
    assert await post("/v1/feedback/batch", batch) == 200
    # Refused feedback is not counted.
    assert await post(f"/v1/request/{rid}/feedback", {"rating": "maybe"}) == 422

    m = await scrape(gateway)
    expected = {
        ("rating", "up"): 2,
        ("rating", "down"): 2,
        ("rating", "cleared"): 1,
        ("signal", "copied"): 1,
        ("signal", "other"): 1,
        ("signal", "code_accepted"): 1,
        ("score", "number"): 2,
        ("score", "true"): 1,
        ("score", "false"): 1,
        ("session_rating", "up"): 1,
    }
    found = {
        (labels["kind"], labels["value"]): m.value("feedgate_feedback_total", **labels)
        for labels in m.series("feedgate_feedback_total")
    }
    assert found == expected
    assert m.value("feedgate_feedback_pending") == 0


async def test_pending_feedback_gauge(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    for request_id in ("not-yet-1", "not-yet-2"):
        async with http.post(f"{gateway.url}/v1/request/{request_id}/feedback", json={"rating": True}) as r:
            assert r.status == 202
    async with http.post(f"{gateway.url}/v1/request/not-yet-2/score", json={"scores": {"stars": 1}}) as r:
        assert r.status == 202
    m = await scrape(gateway)
    assert m.value("feedgate_feedback_pending") == 2
    assert m.value("feedgate_feedback_total", kind="rating", value="up") == 2


async def test_pending_count_and_trace_lookup_on_both_stores(store: Store) -> None:
    await store.apply(
        [
            row("logged", trace_id="4bf92f3577b34da6a3ce929d0e0e4736", span_id="00f067aa0ba902b7"),
            PutFeedback("request", "logged", "explicit", True),
            PutFeedback("request", "early", "explicit", False),
            PutScores("early", {"stars": (2.0, "int")}),
            PutProperty("later", "team", "a"),
            PutFeedback("session", "a-session", "explicit", True),
        ]
    )
    assert await pending_count(store) == 2  # early and later; a session is never pending
    assert await trace_of(store, "logged") == ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    assert await trace_of(store, "early") is None
