"""OpenTelemetry traces, received by a real OTLP/HTTP receiver: spans, parents, GenAI attributes, trace IDs."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream
from otlp_receiver import CLIENT, INTERNAL, SERVER, STATUS_ERROR, Receiver, Span, otlp_receiver

PROMPT = "a secret prompt about tracing"
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": PROMPT}]
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with otlp_receiver() as found:
        yield found


@pytest.fixture
async def make_traced(receiver: Receiver, make_gateway: GatewayFactory) -> GatewayFactory:
    """Gateways exporting to ``receiver``, which outlives them, so their last spans at shutdown arrive."""

    async def make(**sections: Any) -> Gateway:
        tracing = {"enabled": True, "endpoint": receiver.url, "export_delay_ms": 20, "service_name": "fg-test"}
        return await make_gateway(tracing=tracing, **sections)

    return make


def client(gateway: Gateway, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0, default_headers=headers)


def one(spans: list[Span], kind: int) -> Span:
    found = [span for span in spans if span.kind == kind]
    assert len(found) == 1, [(span.name, span.kind) for span in spans]
    return found[0]


async def test_a_call_is_a_server_span_with_a_genai_client_span(
    make_traced: GatewayFactory, receiver: Receiver, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    gateway = await make_traced()
    async with client(gateway, traceparent=TRACEPARENT) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = raw.headers["helicone-id"]
    completion = raw.parse()
    row = await gateway.row(request_id)
    spans = await receiver.wait_for(lambda _: len(receiver.named(request_id)) == 2)
    server, call = one(receiver.named(request_id), SERVER), one(receiver.named(request_id), CLIENT)

    # The caller's trace continues: its span is the server span's parent, the server span the call's.
    assert server.trace_id == call.trace_id == CALLER_TRACE
    assert server.parent_span_id == CALLER_SPAN and call.parent_span_id == server.span_id
    assert server.name == "POST /v1/{tail}" and server.attributes["http.response.status_code"] == 200
    assert call.name == "chat gpt-4o-mini"
    assert call.start_ns >= server.start_ns and call.end_ns <= server.end_ns
    assert call.attributes == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini",
        "gen_ai.response.id": completion.id,
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": row["input_tokens"],
        "gen_ai.usage.output_tokens": row["output_tokens"],
        "feedgate.request_id": request_id,
        "feedgate.provider": "openai",
        "http.request.method": "POST",
        "http.response.status_code": 200,
        "server.address": "127.0.0.1",
        "server.port": int(str(gateway.settings.openai.base_url).rsplit(":", 1)[1]),
    }
    assert spans[0].resource["service.name"] == "fg-test"
    # No prompt or answer text on any span.
    assert not any(PROMPT in str(span.attributes) or "Hello" in str(span.attributes) for span in spans)
    # The trace leads to the logged call, and the caller's traceparent never reached the provider.
    assert (row["trace_id"], row["span_id"]) == (CALLER_TRACE, call.span_id)
    async with http.get(f"{gateway.url}/v1/request/{request_id}") as r:
        assert (await r.json())["data"]["trace_id"] == CALLER_TRACE
    assert fake.last.header("traceparent") is None and fake.last.header("tracestate") is None


async def test_a_stream_reports_its_first_chunk(make_traced: GatewayFactory, receiver: Receiver) -> None:
    gateway = await make_traced()
    async with client(gateway, **{"X-Fake-Behavior": "slow:30"}) as api:
        stream = await api.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
    request_id = stream.response.headers["helicone-id"]
    row = await gateway.row(request_id)
    await receiver.wait_for(lambda _: len(receiver.named(request_id)) == 2)
    call = one(receiver.named(request_id), CLIENT)
    first_chunk = call.attributes["gen_ai.response.time_to_first_chunk"]
    assert 0 < first_chunk <= row["ttft_ms"] / 1000
    assert call.attributes["gen_ai.usage.output_tokens"] == row["output_tokens"] > 0
    # A new trace starts when the caller sends none.
    assert row["trace_id"] == call.trace_id and len(call.trace_id) == 32


async def test_each_retry_is_its_own_client_span(make_traced: GatewayFactory, receiver: Receiver) -> None:
    gateway = await make_traced()
    retry = {
        "Helicone-Retry-Enabled": "true",
        "Helicone-Retry-Num": "2",
        "Helicone-Retry-Factor": "1",
        "Helicone-Retry-Min-Timeout": "10",
        "Helicone-Retry-Max-Timeout": "10",
        "X-Fake-Behavior": "fail-times:1:503",
        "X-Fake-Key": "retry-span",
    }
    async with client(gateway, **retry) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = raw.headers["helicone-id"]
    await receiver.wait_for(lambda _: len(receiver.named(request_id)) == 3)
    server = one(receiver.named(request_id), SERVER)
    failed, answered = sorted(
        (span for span in receiver.named(request_id) if span.kind == CLIENT), key=lambda span: span.start_ns
    )
    assert failed.parent_span_id == answered.parent_span_id == server.span_id
    assert failed.attributes["error.type"] == "503" and failed.status_code == STATUS_ERROR
    assert failed.attributes["gen_ai.request.model"] == "gpt-4o-mini" and failed.name == "chat gpt-4o-mini"
    assert "error.type" not in answered.attributes and answered.attributes["gen_ai.response.finish_reasons"] == ["stop"]
    assert failed.end_ns <= answered.start_ns


async def test_unreachable_provider_span_says_why(make_traced: GatewayFactory, receiver: Receiver) -> None:
    gateway = await make_traced(openai={"base_url": "http://127.0.0.1:9"})
    async with client(gateway) as api:
        with pytest.raises(openai.InternalServerError) as caught:
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = caught.value.response.headers["helicone-id"]
    await receiver.wait_for(lambda _: len(receiver.named(request_id)) == 2)
    call, server = one(receiver.named(request_id), CLIENT), one(receiver.named(request_id), SERVER)
    assert call.attributes["error.type"] == "upstream_unreachable" and call.status_code == STATUS_ERROR
    assert server.attributes["error.type"] == "502" and server.status_code == STATUS_ERROR


async def test_propagate_trace_sends_feedgates_span_to_the_provider(
    make_traced: GatewayFactory, receiver: Receiver, fake: FakeUpstream
) -> None:
    gateway = await make_traced(providers=[{"name": "openai", "propagate_trace": True}])
    async with client(gateway, traceparent=TRACEPARENT) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = raw.headers["helicone-id"]
    await receiver.wait_for(lambda _: len(receiver.named(request_id)) == 2)
    call = one(receiver.named(request_id), CLIENT)
    assert fake.last.header("traceparent") == f"00-{CALLER_TRACE}-{call.span_id}-01"


async def test_feedback_is_an_evaluation_event_in_the_calls_trace(
    make_traced: GatewayFactory, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    gateway = await make_traced()
    async with client(gateway, traceparent=TRACEPARENT) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    request_id = raw.headers["helicone-id"]
    await gateway.settled()
    feedback_parent = "0af7651916cd43dd8448eb211c80319c"
    headers = {"traceparent": f"00-{feedback_parent}-b7ad6b7169203331-01"}
    async with http.post(
        f"{gateway.url}/v1/request/{request_id}/feedback", json={"rating": False, "comment": "wrong"}, headers=headers
    ) as r:
        assert r.status == 201
    async with http.post(f"{gateway.url}/v1/request/unknown-id/score", json={"scores": {"stars": 2}}) as r:
        assert r.status == 202

    def evaluated(spans: list[Span]) -> bool:
        return any(span.kind == INTERNAL for span in spans) and any(
            event[0] == "gen_ai.evaluation.result" for span in spans if span.kind == SERVER for event in span.events
        )

    spans = await receiver.wait_for(evaluated)
    call = one(receiver.named(request_id), CLIENT)
    evaluation = one(spans, INTERNAL)
    feedback_server = next(span for span in spans if span.trace_id == feedback_parent and span.kind == SERVER)
    assert evaluation.trace_id == CALLER_TRACE and evaluation.parent_span_id == call.span_id
    assert evaluation.links == [(feedback_parent, feedback_server.span_id)]
    assert evaluation.events == [
        (
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "rating",
                "gen_ai.evaluation.score.label": "down",
                "gen_ai.evaluation.score.value": 0.0,
                "feedgate.feedback.kind": "rating",
                "feedgate.request_id": request_id,
            },
        )
    ]
    # Feedback for a call that was never logged stays on the feedback request's own span.
    score_server = next(span for span in spans if span.kind == SERVER and span.events)
    assert score_server.events[0][1]["gen_ai.evaluation.name"] == "stars"
    assert score_server.events[0][1]["feedgate.request_id"] == "unknown-id"


async def test_health_and_metrics_are_not_traced(
    make_traced: GatewayFactory, receiver: Receiver, http: aiohttp.ClientSession
) -> None:
    gateway = await make_traced()
    for path in ("/healthz", "/readyz", "/metrics"):
        async with http.get(f"{gateway.url}{path}") as r:
            assert r.status == 200
    async with http.get(f"{gateway.url}/v1/feedback/stats") as r:
        assert r.status == 200
    spans = await receiver.wait_for(lambda found: len(found) >= 1)
    assert [span.name for span in spans] == ["GET /v1/feedback/stats"]


async def test_without_tracing_no_traceparent_passes_and_opentelemetry_is_not_imported(
    gateway: Gateway, fake: FakeUpstream
) -> None:
    async with client(gateway, traceparent=TRACEPARENT, tracestate="k=v") as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert fake.last.header("traceparent") is None and fake.last.header("tracestate") is None
    row = await gateway.row(raw.headers["helicone-id"])
    assert row["trace_id"] is None and row["span_id"] is None
    script = (
        "import sys\n"
        "from feedgate.app import create_app\n"
        "from feedgate.config import load_settings\n"
        "create_app(load_settings(environ={}))\n"
        "tracing = ('opentelemetry.sdk.trace', 'opentelemetry.exporter', 'feedgate.ops.tracing')\n"
        "loaded = sorted(name for name in sys.modules if name.startswith(tracing))\n"
        "print(loaded)\n"
    )
    env = {name: value for name, value in os.environ.items() if not name.startswith(("OTEL_", "FEEDGATE_"))}
    # (redis-py imports OpenTelemetry's metrics API itself when it is installed; feedgate imports no tracing.)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.strip() == "[]"
