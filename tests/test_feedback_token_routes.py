"""Feedback tokens on the gateway: a browser rates one answer (or one session) with a token, and nothing else.

The header on proxied answers through the OpenAI SDK, the routes a token opens and the ones it does not
(with and without ``auth.keys``), what it allows, the mint route, and a page on another origin (CORS).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream
from feedgate.feedback_tokens import PURPOSES, FeedbackTokens, Grant, Scope
from test_feedback_tokens import OLD_SECRET, SECRET, UUID_ID

KEY = "fg-key-1"
AUTH = {"Authorization": f"Bearer {KEY}"}
ORIGIN = "https://shop.example"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(
    http: aiohttp.ClientSession, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    async with http.request(method, url, json=body, headers=headers) as r:
        return r.status, await r.json()


async def token_gateway(make_gateway: GatewayFactory, *, keys: bool = True, **feedback: Any) -> Gateway:
    return await make_gateway(
        auth={"keys": [KEY] if keys else [], "cors_origins": [ORIGIN]},
        feedback={"token_secrets": [SECRET], **feedback},
    )


def sdk(gateway: Gateway) -> openai.AsyncOpenAI:
    headers = {"Helicone-Auth": f"Bearer {KEY}"} if gateway.settings.auth.keys else {}
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-provider", max_retries=0, default_headers=headers)


async def proxied_id(gateway: Gateway) -> tuple[str, str]:
    """A logged call's request ID and the token its answer carried."""
    async with sdk(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    return raw.headers["helicone-id"], raw.headers["feedgate-feedback-token"]


async def minted(
    http: aiohttp.ClientSession, gateway: Gateway, *, headers: dict[str, str] | None = None, **body: Any
) -> dict[str, Any]:
    status, answer = await call(
        http, "POST", f"{gateway.v1}/feedback-tokens", body, AUTH if headers is None else headers
    )
    assert status == 200, answer
    assert answer["error"] is None
    data: dict[str, Any] = answer["data"]
    return data


async def read_feedback(http: aiohttp.ClientSession, gateway: Gateway, kind: str, target_id: str) -> dict[str, Any]:
    status, answer = await call(http, "GET", f"{gateway.v1}/{kind}/{target_id}/feedback", headers=AUTH)
    assert status == 200, answer
    data: dict[str, Any] = answer["data"]
    return data


def refused(status: int, answer: Any, expected_status: int, words: str, token: str) -> None:
    """A refusal in Helicone's shape, saying which case it is, never echoing the token."""
    assert status == expected_status, answer
    assert answer["data"] is None and words in answer["error"], answer
    assert token not in answer["error"]


# ---------------------------------------------------------------------------------------- the header


async def test_every_proxied_answer_carries_a_token_that_rates_it(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await token_gateway(make_gateway)
    checker = FeedbackTokens([SECRET], 3600)
    async with sdk(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(openai.InternalServerError) as upstream_error:
            await api.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Fake-Behavior": "status:500"}
            )
    answers = {"json": raw.headers, "stream": stream.response.headers, "error": upstream_error.value.response.headers}
    ids = {}
    for kind, headers in answers.items():
        request_id, token = headers["helicone-id"], headers["feedgate-feedback-token"]
        grant = checker.check(token)
        assert (grant.scope, grant.target_id, grant.purposes) == ("request", request_id, frozenset(PURPOSES)), kind
        assert abs(grant.expires_at - (time.time() + 7 * 24 * 3600)) < 60
        ids[kind] = (request_id, token)

    # The page rates with the token alone, exactly as the widget sends it; the app reads it back with its key.
    json_id, json_token = ids["json"]
    url = f"{gateway.v1}/request/{json_id}/feedback"
    page = {**bearer(json_token), "Content-Type": "application/json", "Origin": ORIGIN}
    async with http.post(url, data=b'{"rating": false, "comment": "wrong parcel"}', headers=page) as r:
        assert r.status == 201 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
    stream_id, stream_token = ids["stream"]
    signal = {"rating": True, "kind": "implicit", "signal": "copied"}
    status, _ = await call(http, "POST", f"{gateway.v1}/request/{stream_id}/feedback", signal, bearer(stream_token))
    assert status == 201
    error_id, error_token = ids["error"]
    status, _ = await call(
        http, "POST", f"{gateway.v1}/request/{error_id}/score", {"scores": {"stars": 1}}, bearer(error_token)
    )
    assert status == 201

    rated = await read_feedback(http, gateway, "request", json_id)
    assert (rated["rating"], rated["comment"]) == (False, "wrong parcel")
    assert [s["signal"] for s in (await read_feedback(http, gateway, "request", stream_id))["signals"]] == ["copied"]
    assert (await read_feedback(http, gateway, "request", error_id))["scores"] == {"stars": 1}


async def test_a_cached_answer_carries_a_token_for_its_own_request_id(make_gateway: GatewayFactory) -> None:
    gateway = await token_gateway(make_gateway)
    answers = []
    async with sdk(gateway) as api:
        for _ in range(2):
            raw = await api.chat.completions.with_raw_response.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"Helicone-Cache-Enabled": "true"}
            )
            answers.append(raw.headers)
            await gateway.settled()
    first, hit = answers
    assert hit["helicone-cache"] == "HIT" and hit["helicone-id"] != first["helicone-id"]
    checker = FeedbackTokens([SECRET], 3600)
    assert checker.check(hit["feedgate-feedback-token"]).target_id == hit["helicone-id"]  # not the cached one's
    assert checker.check(first["feedgate-feedback-token"]).target_id == first["helicone-id"]


async def test_the_token_header_is_exposed_to_pages_and_absent_from_refusals(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession, fake: FakeUpstream
) -> None:
    gateway = await token_gateway(make_gateway)
    chat = {"model": "gpt-4o-mini", "messages": MESSAGES}
    headers = {"Helicone-Auth": f"Bearer {KEY}", "Authorization": "Bearer sk-provider", "Origin": ORIGIN}
    async with http.post(f"{gateway.v1}/chat/completions", json=chat, headers=headers) as r:
        assert r.status == 200 and "Feedgate-Feedback-Token" in r.headers
        exposed = {name.strip() for name in r.headers["Access-Control-Expose-Headers"].split(",")}
        assert exposed == {"Helicone-Id", "Feedgate-Feedback-Token"}
    # Refused before the call (no feedgate key): a request ID, but no call to rate, so no token.
    async with http.post(f"{gateway.v1}/chat/completions", json=chat, headers={"Origin": ORIGIN}) as r:
        assert r.status == 401 and "Helicone-Id" in r.headers and "Feedgate-Feedback-Token" not in r.headers
    # Feedgate's own routes never carry one.
    async with http.get(f"{gateway.v1}/datasets", headers=AUTH) as r:
        assert r.status == 200 and "Feedgate-Feedback-Token" not in r.headers


async def test_without_secrets_there_are_no_tokens(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_gateway(auth={"keys": [KEY]})
    async with sdk(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        stream = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
    assert "helicone-id" in raw.headers and "feedgate-feedback-token" not in raw.headers
    assert "feedgate-feedback-token" not in stream.response.headers
    token = FeedbackTokens([SECRET], 3600).for_request(raw.headers["helicone-id"])
    url = f"{gateway.v1}/request/{raw.headers['helicone-id']}/feedback"
    status, answer = await call(http, "POST", url, {"rating": True}, bearer(token))
    refused(status, answer, 401, "feedback tokens are not enabled on this gateway", token)
    status, answer = await call(http, "POST", f"{gateway.v1}/feedback-tokens", {"request_ids": ["msg-1"]}, AUTH)
    assert status == 400 and answer["data"] is None
    assert "feedback tokens are not enabled" in answer["error"] and "feedback.token_secrets" in answer["error"]


# ---------------------------------------------------------------------------------------- what a token opens


@pytest.mark.parametrize("keys", [True, False], ids=["with-auth-keys", "without-auth-keys"])
async def test_a_token_rates_the_id_it_names_and_no_other(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession, keys: bool
) -> None:
    gateway = await token_gateway(make_gateway, keys=keys)
    request_a, token_a = await proxied_id(gateway)
    request_b, _ = await proxied_id(gateway)
    session_tokens = (await minted(http, gateway, session_ids=["ticket-1"]))["session_tokens"]
    session_token = session_tokens["ticket-1"]

    for path, body in (("feedback", {"rating": True}), ("score", {"scores": {"stars": 5}})):
        status, answer = await call(http, "POST", f"{gateway.v1}/request/{request_b}/{path}", body, bearer(token_a))
        refused(status, answer, 403, "this feedback token is for another request ID", token_a)
    status, answer = await call(
        http, "POST", f"{gateway.v1}/session/ticket-2/feedback", {"rating": True}, bearer(session_token)
    )
    refused(status, answer, 403, "this feedback token is for another session ID", session_token)
    # A request token is not a session token, even for an ID of the same spelling, and the other way round.
    status, answer = await call(
        http, "POST", f"{gateway.v1}/session/{request_a}/feedback", {"rating": True}, bearer(token_a)
    )
    refused(status, answer, 403, "this feedback token is for a request ID; this route takes a session ID", token_a)
    status, answer = await call(
        http, "POST", f"{gateway.v1}/request/ticket-1/feedback", {"rating": True}, bearer(session_token)
    )
    refused(status, answer, 403, "for a session ID; this route takes a request ID", session_token)

    assert (await call(http, "POST", f"{gateway.v1}/request/{request_a}/feedback", {"rating": True}, bearer(token_a)))[
        0
    ] == 201
    status, _ = await call(
        http,
        "POST",
        f"{gateway.v1}/session/ticket-1/feedback",
        {"rating": False, "comment": "slow"},
        bearer(session_token),
    )
    assert status == 201
    assert (await read_feedback(http, gateway, "request", request_a))["rating"] is True
    assert (await read_feedback(http, gateway, "request", request_b))["rating"] is None
    session = await read_feedback(http, gateway, "session", "ticket-1")
    assert (session["rating"], session["comment"]) == (False, "slow")
    assert (await read_feedback(http, gateway, "session", "ticket-2"))["rating"] is None


async def test_a_token_allows_only_its_purposes(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await token_gateway(make_gateway)
    ids = ["msg-rate", "msg-signal", "msg-score"]
    rate, signal, score = [
        (await minted(http, gateway, request_ids=[rid], allow=[allow]))["request_tokens"][rid]
        for rid, allow in zip(ids, ("feedback", "signal", "score"), strict=True)
    ]
    session = (await minted(http, gateway, session_ids=["ticket-9"], allow=["score", "signal"]))["session_tokens"]

    def url(request_id: str, path: str = "feedback") -> str:
        return f"{gateway.v1}/request/{request_id}/{path}"

    explicit, implicit = {"rating": True}, {"rating": True, "kind": "implicit", "signal": "copied"}
    cases = [
        (url("msg-rate", "score"), {"scores": {"stars": 3}}, rate, "does not allow score (it allows: feedback)"),
        (url("msg-rate"), implicit, rate, "does not allow signal (it allows: feedback)"),
        (url("msg-rate"), {"rating": False, "signal": "regenerated"}, rate, "does not allow signal"),
        (url("msg-signal"), explicit, signal, "does not allow feedback (it allows: signal)"),
        (url("msg-score"), explicit, score, "does not allow feedback (it allows: score)"),
        (f"{gateway.v1}/session/ticket-9/feedback", explicit, session["ticket-9"], "does not allow feedback"),
    ]
    for where, body, token, words in cases:
        status, answer = await call(http, "POST", where, body, bearer(token))
        refused(status, answer, 403, words, token)
    assert (await call(http, "POST", url("msg-rate"), {"rating": False, "comment": "no"}, bearer(rate)))[0] == 202
    assert (await call(http, "POST", url("msg-signal"), implicit, bearer(signal)))[0] == 202
    assert (await call(http, "POST", url("msg-score", "score"), {"scores": {"ok": True}}, bearer(score)))[0] == 202
    assert (await read_feedback(http, gateway, "request", "msg-rate"))["comment"] == "no"
    assert [s["signal"] for s in (await read_feedback(http, gateway, "request", "msg-signal"))["signals"]] == ["copied"]
    assert (await read_feedback(http, gateway, "request", "msg-score"))["scores"] == {"ok": True}


@pytest.mark.parametrize("keys", [True, False], ids=["with-auth-keys", "without-auth-keys"])
async def test_a_token_opens_no_other_route(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession, fake: FakeUpstream, keys: bool
) -> None:
    gateway = await token_gateway(make_gateway, keys=keys)
    request_id, token = await proxied_id(gateway)
    await gateway.settled()
    calls_upstream = len(fake.received)
    v1 = gateway.v1
    routes: list[tuple[str, str, Any]] = [
        ("GET", f"{v1}/request/{request_id}", None),
        ("GET", f"{v1}/request/{request_id}/feedback", None),
        ("DELETE", f"{v1}/request/{request_id}/feedback", None),
        ("DELETE", f"{v1}/request/{request_id}/score", None),
        ("PUT", f"{v1}/request/{request_id}/property", {"key": "k", "value": "v"}),
        ("GET", f"{v1}/session/s-1/feedback", None),
        ("POST", f"{v1}/feedback", {"helicone-id": request_id, "rating": True}),
        ("POST", f"{v1}/feedback/batch", {"items": [{"requestId": request_id, "rating": True}]}),
        ("POST", f"{v1}/request/query", {"filter": "all"}),
        ("POST", f"{v1}/request/count/query", {"filter": "all"}),
        ("GET", f"{v1}/feedback/stats", None),
        ("GET", f"{v1}/export", None),
        ("GET", f"{v1}/datasets", None),
        ("POST", f"{v1}/helicone-dataset", {"datasetName": "d", "requestIds": [request_id]}),
        ("POST", f"{v1}/feedback-tokens", {"request_ids": ["msg-other"]}),
        ("POST", f"{gateway.url}/custom/v1/log", {}),
        ("GET", f"{gateway.url}/healthz", None),
    ]
    for method, url, body in routes:
        status, answer = await call(http, method, url, body, bearer(token))
        refused(status, answer, 401, f"a feedback token cannot be used on {method} ", token)
        assert "a feedback token only rates" in answer["error"], (method, url)
    # Proxied routes: refused in the OpenAI shape, never forwarded to the provider, whichever header holds it.
    chat = {"model": "gpt-4o-mini", "messages": MESSAGES}
    for header in ("Authorization", "Helicone-Auth"):
        async with http.post(f"{v1}/chat/completions", json=chat, headers={header: f"Bearer {token}"}) as r:
            assert r.status == 401, header
            error = (await r.json())["error"]
            assert (
                "a feedback token cannot be used on proxied routes" in error["message"]
                and token not in error["message"]
            )
    async with http.post(f"{v1}/chat/completions", json=chat, headers={"x-api-key": token}) as r:
        assert r.status == 401 and "(x-api-key)" in (await r.json())["error"]["message"]
    async with openai.AsyncOpenAI(base_url=v1, api_key=token, max_retries=0) as api:
        with pytest.raises(openai.AuthenticationError, match="feedback token"):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert len(fake.received) == calls_upstream
    state = await read_feedback(http, gateway, "request", request_id)
    assert state["rating"] is None and state["history"] == []  # nothing the refused calls sent was stored


async def test_expired_altered_and_rotated_out_tokens_on_the_gateway(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    rotating = await make_gateway(auth={"keys": [KEY]}, feedback={"token_secrets": [SECRET, OLD_SECRET]})
    url = f"{rotating.v1}/request/msg-7/feedback"
    signed_before = FeedbackTokens([OLD_SECRET], 3600).for_request("msg-7")
    assert (await call(http, "POST", url, {"rating": True}, bearer(signed_before)))[0] == 202  # still in the list

    expired = FeedbackTokens([SECRET], 3600).mint("request", "msg-7", expires_at=int(time.time()) - 5)
    status, answer = await call(http, "POST", url, {"rating": False}, bearer(expired))
    refused(status, answer, 401, "expired feedback token: it expired at ", expired)
    good = FeedbackTokens([SECRET], 3600).for_request("msg-7")
    altered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    status, answer = await call(http, "POST", url, {"rating": False}, bearer(altered))
    refused(status, answer, 401, "invalid feedback token: its signature does not match", altered)
    status, answer = await call(http, "POST", url, {"rating": False}, bearer("fgt1.not-a-token"))
    refused(status, answer, 401, "malformed feedback token", "fgt1.not-a-token")

    rotated = await make_gateway(auth={"keys": [KEY]}, feedback={"token_secrets": [SECRET]})
    status, answer = await call(
        http, "POST", f"{rotated.v1}/request/msg-7/feedback", {"rating": False}, bearer(signed_before)
    )
    refused(status, answer, 401, "signed by a secret no longer in feedback.token_secrets", signed_before)
    assert (await read_feedback(http, rotating, "request", "msg-7"))["rating"] is True  # only the valid one counted


# ---------------------------------------------------------------------------------------- the mint route


async def test_the_mint_route_makes_tokens_for_the_ids_it_is_given(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await token_gateway(make_gateway, token_ttl_s=3600)
    before = time.time()
    data = await minted(http, gateway, request_ids=["msg-1", UUID_ID, "msg-1"], session_ids=["ticket:4711"])
    assert set(data) == {"request_tokens", "session_tokens", "allow", "expires_at"}
    assert set(data["request_tokens"]) == {"msg-1", UUID_ID} and set(data["session_tokens"]) == {"ticket:4711"}
    assert data["allow"] == ["feedback", "score", "signal"]
    expires_at = datetime.strptime(data["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()
    assert before + 3600 - 1 <= expires_at <= time.time() + 3600
    checker = FeedbackTokens([SECRET], 3600)
    scopes: tuple[tuple[Scope, str], ...] = (("request", "request_tokens"), ("session", "session_tokens"))
    for scope, key in scopes:
        for target_id, token in data[key].items():
            assert checker.check(token) == Grant(scope, target_id, frozenset(PURPOSES), int(expires_at))
    only = await minted(http, gateway, request_ids=["msg-2"], allow=["signal", "feedback", "signal"])
    assert only["allow"] == ["feedback", "signal"] and only["session_tokens"] == {}
    status, _ = await call(
        http, "POST", f"{gateway.v1}/request/msg-2/feedback", {"rating": True}, bearer(only["request_tokens"]["msg-2"])
    )
    assert status == 202


async def test_the_mint_route_needs_a_key_and_checks_what_it_is_sent(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await token_gateway(make_gateway)
    url = f"{gateway.v1}/feedback-tokens"
    status, answer = await call(http, "POST", url, {"request_ids": ["msg-1"]})
    assert status == 401 and "feedgate key" in answer["error"]
    status, answer = await call(http, "POST", url, {"request_ids": ["msg-1"]}, {"Authorization": "Bearer wrong"})
    assert status == 401
    bad: list[tuple[Any, int, str]] = [
        ({}, 422, "send at least one ID in request_ids or session_ids"),
        ({"request_ids": [], "session_ids": []}, 422, "at least one ID"),
        ({"request_ids": [f"m-{n}" for n in range(1001)]}, 422, "request_ids: List should have at most 1000 items"),
        ({"session_ids": [f"s-{n}" for n in range(1001)]}, 422, "session_ids: List should have at most 1000 items"),
        ({"request_ids": ["has space"]}, 400, "invalid request ID 'has space'"),
        ({"session_ids": ["x" * 129]}, 400, "invalid session ID"),
        ({"request_ids": [42]}, 422, "request_ids.0"),
        ({"request_ids": ["msg-1"], "allow": ["rate"]}, 422, "allow.0"),
        ({"request_ids": ["msg-1"], "allow": []}, 422, "allow"),
        ({"request_ids": ["msg-1"], "ttl_s": 5}, 422, "unknown field 'ttl_s'"),
        (["msg-1"], 422, "request body must be a JSON object"),
    ]
    for body, expected, words in bad:
        status, answer = await call(http, "POST", url, body, AUTH)
        assert status == expected and answer["data"] is None and words in answer["error"], (body, answer)
    thousand = await minted(http, gateway, request_ids=[f"m-{n}" for n in range(1000)])
    assert len(thousand["request_tokens"]) == 1000


# ---------------------------------------------------------------------------------------- browsers


async def test_a_page_on_an_allowed_origin_rates_with_a_token(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await token_gateway(make_gateway)
    request_id, token = await proxied_id(gateway)
    session_token = (await minted(http, gateway, session_ids=["ticket-1"]))["session_tokens"]["ticket-1"]
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    for path in (f"request/{request_id}/feedback", f"request/{request_id}/score", "session/ticket-1/feedback"):
        async with http.options(f"{gateway.v1}/{path}", headers=preflight) as r:
            assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == ORIGIN
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            allowed = {h.strip().lower() for h in r.headers["Access-Control-Allow-Headers"].split(",")}
            assert {"authorization", "content-type"} <= allowed
    posts = [
        (f"request/{request_id}/feedback", {"rating": True}, token, 201),
        (f"request/{request_id}/score", {"scores": {"stars": 4}}, token, 201),
        ("session/ticket-1/feedback", {"rating": True}, session_token, 201),
        ("session/ticket-2/feedback", {"rating": True}, session_token, 403),  # a refusal the page can read too
    ]
    for path, body, bearer_token, expected in posts:
        headers = {**bearer(bearer_token), "Origin": ORIGIN}
        async with http.post(f"{gateway.v1}/{path}", json=body, headers=headers) as r:
            assert r.status == expected and r.headers["Access-Control-Allow-Origin"] == ORIGIN, path
    async with http.post(
        f"{gateway.v1}/request/{request_id}/feedback",
        json={"rating": False},
        headers={**bearer(token), "Origin": "https://elsewhere.example"},
    ) as r:
        assert "Access-Control-Allow-Origin" not in r.headers  # the browser hides the answer from that page


async def test_a_page_on_an_allowed_origin_reads_a_streamed_answer_and_its_token(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    """A stream's head is written before the handler returns: its CORS headers must still be there, or a page
    on another origin could read neither the answer nor the token to rate it."""
    gateway = await token_gateway(make_gateway)
    headers = {"Helicone-Auth": f"Bearer {KEY}", "Authorization": "Bearer sk-provider", "Origin": ORIGIN}
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/event-stream")
        assert r.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {name.strip().lower() for name in r.headers["Access-Control-Expose-Headers"].split(",")}
        assert {"helicone-id", "feedgate-feedback-token"} <= exposed
        assert "Origin" in r.headers["Vary"]
        token = r.headers["Feedgate-Feedback-Token"]
        assert b"[DONE]" in await r.read()
    rate = {**bearer(token), "Origin": ORIGIN}
    async with http.post(
        f"{gateway.v1}/request/{r.headers['Helicone-Id']}/feedback", json={"rating": True}, headers=rate
    ) as rated:
        assert rated.status == 201 and rated.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_an_answer_that_varies_by_encoding_keeps_saying_so_to_other_origins(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await token_gateway(make_gateway)
    async with http.get(
        f"{gateway.url}/widget/feedback.js", headers={"Origin": ORIGIN, "Accept-Encoding": "gzip"}
    ) as r:
        assert r.status == 200
        vary = [part.strip().lower() for part in r.headers["Vary"].split(",")]
        assert "origin" in vary and "accept-encoding" in vary
