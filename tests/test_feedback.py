"""The feedback API: Helicone's wire format, and never losing a rating whatever the timing."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


async def chat(gateway: Gateway, **headers: str) -> str:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0) as api:
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={k.replace("_", "-"): v for k, v in headers.items()},
        )
    return raw.headers["helicone-id"]


async def call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, json=body, **kw) as r:
        return r.status, await r.json()


async def test_rating_last_write_wins_with_history_and_clear(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await chat(gateway)
    url = f"{gateway.v1}/request/{request_id}/feedback"
    assert await call(http, "POST", url, {"rating": True}) == (201, {"data": None, "error": None})
    assert (await call(http, "POST", url, {"rating": False, "comment": "wrong answer", "user_id": "u1"}))[0] == 201
    status, body = await call(http, "GET", url)
    data = body["data"]
    assert status == 200 and data["rating"] is False and data["comment"] == "wrong answer"
    assert [h["rating"] for h in data["history"]] == [True, False] and data["user_id"] == "u1"
    status, body = await call(http, "GET", f"{gateway.v1}/request/{request_id}")
    assert body["data"]["feedback_rating"] is False
    assert (await call(http, "DELETE", url))[0] == 200
    data = (await call(http, "GET", url))[1]["data"]
    assert data["rating"] is None and [h["rating"] for h in data["history"]] == [True, False, None]
    assert (await call(http, "GET", f"{gateway.v1}/request/{request_id}"))[1]["data"]["feedback_rating"] is None


async def test_implicit_signal_never_changes_the_rating(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await chat(gateway)
    url = f"{gateway.v1}/request/{request_id}/feedback"
    await call(http, "POST", url, {"rating": True})
    status, _ = await call(http, "POST", url, {"rating": False, "kind": "implicit", "signal": "code_rejected"})
    assert status == 201
    await call(http, "POST", url, {"rating": True, "signal": "copied", "metadata": {"chars": 120}})
    data = (await call(http, "GET", url))[1]["data"]
    assert data["rating"] is True and len(data["history"]) == 1
    assert [(s["signal"], s["rating"]) for s in data["signals"]] == [("code_rejected", False), ("copied", True)]
    assert data["signals"][1]["metadata"] == {"chars": 120} and data["signals"][0]["source"] == "api"


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"rating": True, "ratting": 1}, 422, "unknown field 'ratting'"),
        ({}, 422, "'rating' is required"),
        ({"rating": 5}, 422, "rating"),
        ({"rating": True, "comment": "x" * 4001}, 422, "comment"),
        ({"rating": True, "kind": "implicit"}, 422, "needs a signal"),
        ({"rating": True, "kind": "sometimes"}, 422, "kind"),
        ([True], 422, "JSON object"),
    ],
)
async def test_bad_feedback_is_refused_and_changes_nothing(
    gateway: Gateway, http: aiohttp.ClientSession, body: Any, status: int, fragment: str
) -> None:
    request_id = await chat(gateway)
    url = f"{gateway.v1}/request/{request_id}/feedback"
    await call(http, "POST", url, {"rating": True})
    got, answer = await call(http, "POST", url, body)
    assert got == status and answer["data"] is None and fragment in answer["error"]
    data = (await call(http, "GET", url))[1]["data"]
    assert data["rating"] is True and len(data["history"]) == 1


async def test_malformed_json_and_bad_ids_are_400(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{gateway.v1}/request/abc/feedback", data=b"{rating: yes") as r:
        assert r.status == 400 and "not valid JSON" in (await r.json())["error"]
    async with http.post(f"{gateway.v1}/request/a%20b/feedback", json={"rating": True}) as r:
        assert r.status == 400 and (await r.json())["data"] is None
    async with http.get(f"{gateway.url}/v2/nothing") as r:
        assert r.status == 404 and (await r.json())["data"] is None


async def test_scores_keep_their_type_and_latest_wins(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await chat(gateway)
    url = f"{gateway.v1}/request/{request_id}/score"
    assert await call(http, "POST", url, {"scores": {"stars": 4, "accuracy": 0.92, "helpful": True}}) == (
        201,
        {"data": None, "error": None},
    )
    await call(http, "POST", url, {"scores": {"stars": 5}})
    status, body = await call(http, "POST", url, {"scores": {"stars": "five"}})
    assert status == 422 and "stars" in body["error"]
    scores = (await call(http, "GET", f"{gateway.v1}/request/{request_id}"))[1]["data"]["scores"]
    assert scores == {"stars": 5, "accuracy": 0.92, "helpful": True}
    assert isinstance(scores["stars"], int) and isinstance(scores["helpful"], bool)


async def test_property_after_the_fact(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await chat(gateway, Helicone_Property_Feature="chat")
    url = f"{gateway.v1}/request/{request_id}/property"
    assert (await call(http, "PUT", url, {"key": "Outcome", "value": "resolved"}))[0] == 201
    assert (await call(http, "PUT", url, {"key": "feature", "value": "search"}))[0] == 201
    assert (await call(http, "PUT", url, {"key": "n", "value": 3}))[0] == 422
    row = (await call(http, "GET", f"{gateway.v1}/request/{request_id}"))[1]["data"]
    assert row["request_properties"] == {"feature": "search", "outcome": "resolved"}


async def test_feedback_before_the_request_is_pending_then_linked(
    gateway: Gateway, http: aiohttp.ClientSession
) -> None:
    url = f"{gateway.v1}/request/ticket-77/feedback"
    assert await call(http, "POST", url, {"rating": False}) == (202, {"data": {"status": "pending"}, "error": None})
    await call(http, "POST", f"{gateway.v1}/request/ticket-77/score", {"scores": {"stars": 2}})
    assert (await call(http, "GET", url))[1]["data"]["request_known"] is False
    await chat(gateway, Helicone_Request_Id="ticket-77")
    await gateway.settled()
    row = (await call(http, "GET", f"{gateway.v1}/request/ticket-77"))[1]["data"]
    assert row["feedback_rating"] is False and row["scores"] == {"stars": 2}
    assert (await call(http, "POST", url, {"rating": True}))[0] == 201


async def test_feedback_while_streaming_is_stored_and_linked(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"X-Fake-Behavior": "slow:60", "Authorization": "Bearer k"}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as stream:
        request_id = stream.headers["Helicone-Id"]
        await stream.content.readany()
        # The user rates the answer before it has finished arriving.
        assert (await call(http, "POST", f"{gateway.v1}/request/{request_id}/feedback", {"rating": True}))[0] == 201
        await stream.read()
    await gateway.settled()
    assert (await call(http, "GET", f"{gateway.v1}/request/{request_id}"))[1]["data"]["feedback_rating"] is True


async def test_session_feedback_answers_at_once(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    for _ in range(2):
        await chat(gateway, Helicone_Session_Id="ticket-9", Helicone_Session_Name="support")
    await gateway.settled()
    url = f"{gateway.v1}/session/ticket-9/feedback"
    assert await call(http, "POST", url, {"rating": True}) == (201, {"data": None, "error": None})
    data = (await call(http, "GET", url))[1]["data"]
    assert data["rating"] is True and data["requests"] == 2
    assert (await call(http, "POST", f"{gateway.v1}/session/never-seen/feedback", {"rating": False}))[0] == 201
    assert (await call(http, "POST", url, {"rating": "maybe"}))[0] == 422


async def test_legacy_feedback_route(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    request_id = await chat(gateway)
    status, body = await call(http, "POST", f"{gateway.v1}/feedback", {"helicone-id": request_id, "rating": True})
    assert status == 200 and body == {"message": "Feedback added successfully.", "helicone_id": request_id}
    data = (await call(http, "GET", f"{gateway.v1}/request/{request_id}/feedback"))[1]["data"]
    assert data["rating"] is True and data["history"][0]["source"] == "legacy"


async def test_batch_with_mixed_items(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    known = await chat(gateway)
    items = [
        {"requestId": known, "rating": True, "scores": {"stars": 5}, "comment": "great"},
        {"requestId": "later-1", "rating": False, "signal": "regenerated"},
        {"requestId": known, "rating": "sideways"},
        {"requestId": "bad id!", "rating": True},
        {"requestId": "x"},
        {"rating": True},
    ]
    status, body = await call(http, "POST", f"{gateway.v1}/feedback/batch", {"items": items})
    assert status == 200
    results = body["data"]["results"]
    assert [r["status"] for r in results] == ["stored", "pending", "invalid", "invalid", "invalid", "invalid"]
    assert "rating" in results[2]["error"] and "requestId" in results[5]["error"]
    data = (await call(http, "GET", f"{gateway.v1}/request/{known}/feedback"))[1]["data"]
    assert data["rating"] is True and data["comment"] == "great" and data["scores"] == {"stars": 5}
    pending = (await call(http, "GET", f"{gateway.v1}/request/later-1/feedback"))[1]["data"]
    assert pending["signals"][0]["signal"] == "regenerated"
    too_many = {"items": [{"requestId": "a", "rating": True}] * 1001}
    assert (await call(http, "POST", f"{gateway.v1}/feedback/batch", too_many))[0] == 422


async def test_400_concurrent_ratings_are_all_stored(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    ids = [await chat(gateway) for _ in range(4)]
    posts = [
        call(http, "POST", f"{gateway.v1}/request/{ids[n % 4]}/feedback", {"rating": n % 3 == 0, "comment": f"c{n}"})
        for n in range(400)
    ]
    assert {status for status, _ in await asyncio.gather(*posts)} == {201}
    total = 0
    for request_id in ids:
        total += len((await call(http, "GET", f"{gateway.v1}/request/{request_id}/feedback"))[1]["data"]["history"])
    assert total == 400


async def test_derived_abandoned_and_regenerated(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    first = await chat(gateway, Helicone_User_Id="u7")
    second = await chat(gateway, Helicone_User_Id="u7")  # the same conversation again: a regeneration
    retry = await chat(gateway, Helicone_User_Id="u8", Helicone_Request_Id="same-id")
    await chat(gateway, Helicone_User_Id="u8", Helicone_Request_Id="same-id")  # an SDK retry is not one
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    r = await http.post(
        f"{gateway.v1}/chat/completions", json=body, headers={"X-Fake-Behavior": "slow:100", "Authorization": "k"}
    )
    abandoned = r.headers["Helicone-Id"]
    await r.content.readany()
    r.close()
    await asyncio.sleep(0.4)
    await gateway.settled()

    async def signals(request_id: str) -> list[tuple[str, bool, str]]:
        data = (await call(http, "GET", f"{gateway.v1}/request/{request_id}/feedback"))[1]["data"]
        return [(s["signal"], s["rating"], s["source"]) for s in data["signals"]]

    assert await signals(first) == [("regenerated", False, "feedgate")]
    assert await signals(second) == []
    assert await signals(retry) == []
    assert await signals(abandoned) == [("abandoned", False, "feedgate")]


async def test_auth_required_when_keys_configured(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gw = await make_gateway(auth={"keys": ["fg-key-1", "fg-key-2"], "cors_origins": ["https://app.example"]})
    async with openai.AsyncOpenAI(base_url=gw.v1, api_key="sk-provider", max_retries=0) as api:
        with pytest.raises(openai.AuthenticationError):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        raw = await api.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            extra_headers={"Helicone-Auth": "Bearer fg-key-2"},
        )
    url = f"{gw.v1}/request/{raw.headers['helicone-id']}/feedback"
    status, body = await call(http, "POST", url, {"rating": True})
    assert status == 401 and body["data"] is None and "key" in body["error"]
    assert (await call(http, "POST", url, {"rating": True}, headers={"Authorization": "Bearer nope"}))[0] == 401
    assert (await call(http, "POST", url, {"rating": True}, headers={"Authorization": "Bearer fg-key-1"}))[0] == 201
    async with http.get(f"{gw.url}/healthz") as r:
        assert r.status == 200
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
    async with http.options(url, headers=preflight) as r:
        assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "https://app.example"
    async with http.options(url, headers={**preflight, "Origin": "https://evil.example"}) as r:
        assert "Access-Control-Allow-Origin" not in r.headers
