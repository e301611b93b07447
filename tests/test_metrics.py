"""``GET /metrics``: traffic driven with the official SDKs, counted exactly, with bounded labels."""

from __future__ import annotations

import asyncio
import random
import string

import aiohttp
import anthropic
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from feedgate.appkeys import STORE
from scraping import scrape
from test_routing_headers import closed_port_url

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello to the metrics"}]


def client(gateway: Gateway, **headers: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk-test", max_retries=0, default_headers=headers)


async def test_plain_streamed_failing_and_embedding_calls_are_counted_exactly(gateway: Gateway) -> None:
    ids = []
    async with client(gateway) as api:
        for _ in range(2):
            raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
            ids.append(raw.headers["helicone-id"])
        stream = await api.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True)
        async for _ in stream:
            pass
        ids.append(stream.response.headers["helicone-id"])
        with pytest.raises(openai.InternalServerError) as failed:
            await api.chat.completions.create(
                model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Fake-Behavior": "status:500"}
            )
        ids.append(failed.value.response.headers["helicone-id"])
        embedded = await api.embeddings.with_raw_response.create(model="text-embedding-3-small", input="one two")
        ids.append(embedded.headers["helicone-id"])
    rows = [await gateway.row(request_id) for request_id in ids]
    m = await scrape(gateway)

    chat = {"provider": "openai", "route": "chat"}
    assert m.value("feedgate_requests_total", model="gpt-4o-mini", stream="false", status_class="2xx", **chat) == 2
    assert m.value("feedgate_requests_total", model="gpt-4o", stream="true", status_class="2xx", **chat) == 1
    assert m.value("feedgate_requests_total", model="gpt-4o-mini", status_class="5xx", **chat) == 1
    assert m.value("feedgate_requests_total", route="embeddings", model="text-embedding-3-small") == 1
    assert m.value("feedgate_requests_total") == 5
    # Tokens and cost are the log rows' own figures, summed.
    for direction, column in (("input", "input_tokens"), ("output", "output_tokens")):
        expected = sum(row[column] or 0 for row in rows)
        assert expected > 0 and m.value("feedgate_tokens_total", direction=direction) == expected
    assert m.value("feedgate_tokens_total", direction="cache_read") == 0
    total_cost = sum(row["cost_usd"] or 0.0 for row in rows)
    assert total_cost > 0 and m.value("feedgate_cost_usd_total") == pytest.approx(total_cost, rel=1e-12)
    mini_cost = sum(row["cost_usd"] or 0.0 for row in rows if row["model"] == "gpt-4o-mini")
    assert m.value("feedgate_cost_usd_total", provider="openai", model="gpt-4o-mini") == pytest.approx(mini_cost)
    # Latency: every call has a duration, only the stream a time to first token, every answered call an overhead.
    assert m.value("feedgate_request_duration_seconds_count") == 5
    # The rows keep durations rounded to the microsecond.
    assert m.value("feedgate_request_duration_seconds_sum") == pytest.approx(
        sum(row["duration_ms"] for row in rows) / 1000, abs=3e-6
    )
    assert m.value("feedgate_time_to_first_token_seconds_count", model="gpt-4o") == 1
    assert m.value("feedgate_time_to_first_token_seconds_sum") == pytest.approx(rows[2]["ttft_ms"] / 1000, abs=1e-6)
    assert m.value("feedgate_overhead_seconds_count") == 5
    overhead = m.value("feedgate_overhead_seconds_sum")
    assert 0 < overhead < m.value("feedgate_request_duration_seconds_sum")
    assert m.value("feedgate_upstream_errors_total") == 0
    assert m.value("feedgate_unpriced_requests_total") == 0
    assert m.value("feedgate_inflight_requests") == 0
    assert m.types["feedgate_request_duration_seconds"] == "histogram"
    assert m.value("feedgate_request_duration_seconds_bucket", le="600.0") == 5
    assert m.value("feedgate_request_duration_seconds_bucket", le="+Inf") == 5
    # Prometheus buckets are cumulative: each holds every call at or under its bound.
    bounds = {labels["le"] for labels in m.series("feedgate_overhead_seconds_bucket")}
    overhead_buckets = sorted((float(le), m.value("feedgate_overhead_seconds_bucket", le=le)) for le in bounds)
    counts = [count for _, count in overhead_buckets]
    assert counts == sorted(counts) and counts[-1] == 5 and overhead_buckets[-1][0] == float("inf")


async def test_upstream_failures_count_by_kind(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(openai={"base_url": closed_port_url()})
    async with client(gateway) as api:
        for _ in range(2):
            with pytest.raises(openai.InternalServerError):
                await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await gateway.settled()
    m = await scrape(gateway)
    assert m.value("feedgate_upstream_errors_total", provider="openai", kind="upstream_unreachable") == 2
    assert m.value("feedgate_requests_total", model="gpt-4o-mini", status_class="5xx") == 2
    # No answer from a provider: no overhead to tell apart from its time.
    assert m.value("feedgate_overhead_seconds_count") == 0


async def test_anthropic_messages_count_cache_tokens_apart(make_combined: GatewayFactory) -> None:
    gateway = await make_combined()
    async with anthropic.AsyncAnthropic(
        base_url=f"{gateway.url}/anthropic",
        api_key="sk-ant",
        max_retries=0,
        default_headers={"X-Fake-Behavior": "cache-tokens:40:7"},
    ) as claude:
        raw = await claude.messages.with_raw_response.create(
            model="claude-3-5-sonnet-20241022", max_tokens=50, messages=[{"role": "user", "content": "two words"}]
        )
    row = await gateway.row(raw.headers["helicone-id"])
    m = await scrape(gateway)
    labels = {"provider": "anthropic", "model": "claude-3-5-sonnet"}
    assert m.value("feedgate_requests_total", route="messages", status_class="2xx", **labels) == 1
    assert m.value("feedgate_tokens_total", direction="input", **labels) == row["input_tokens"] == 2
    assert m.value("feedgate_tokens_total", direction="output", **labels) == row["output_tokens"]
    assert m.value("feedgate_tokens_total", direction="cache_read", **labels) == 40
    assert m.value("feedgate_tokens_total", direction="cache_write", **labels) == 7
    assert m.value("feedgate_cost_usd_total", **labels) == pytest.approx(row["cost_usd"])


async def test_cache_hit_and_miss_are_counted_and_a_hit_adds_no_tokens(gateway: Gateway) -> None:
    async with client(gateway, **{"Helicone-Cache-Enabled": "true"}) as api:
        first = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
        await gateway.settled()  # the entry is stored through the writer
        second = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert (first.headers["helicone-cache"], second.headers["helicone-cache"]) == ("MISS", "HIT")
    row = await gateway.row(first.headers["helicone-id"])
    m = await scrape(gateway)
    assert m.value("feedgate_cache_requests_total", result="miss") == 1
    assert m.value("feedgate_cache_requests_total", result="hit") == 1
    assert m.value("feedgate_requests_total", model="gpt-4o-mini", status_class="2xx") == 2
    assert m.value("feedgate_tokens_total", direction="output") == row["output_tokens"]
    assert m.value("feedgate_cost_usd_total") == pytest.approx(row["cost_usd"])


async def test_rate_limited_calls_are_counted(gateway: Gateway) -> None:
    async with client(gateway, **{"Helicone-RateLimit-Policy": "1;w=60"}) as api:
        await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        with pytest.raises(openai.RateLimitError):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await gateway.settled()
    m = await scrape(gateway)
    assert m.value("feedgate_ratelimit_rejections_total") == 1
    assert m.value("feedgate_requests_total", status_class="4xx", model="gpt-4o-mini") == 1
    assert m.value("feedgate_requests_total", status_class="2xx") == 1


async def test_responses_route_and_unknown_models(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(metrics={"models": ["my-finetune"]})
    async with client(gateway) as api:
        await api.responses.create(model="gpt-4o", input="hi")
        await api.chat.completions.create(model="gpt-4o-2024-11-20", messages=MESSAGES)
        await api.chat.completions.create(model="my-finetune", messages=MESSAGES)
        await api.chat.completions.create(model="openai/gpt-4.1", messages=MESSAGES)
    await gateway.settled()
    m = await scrape(gateway)
    assert m.value("feedgate_requests_total", route="responses", status_class="2xx", model="gpt-4o") == 1
    # A dated snapshot and a provider prefix count under their price-table name; metrics.models by its own.
    assert m.value("feedgate_requests_total", route="chat", model="gpt-4o") == 1
    assert m.value("feedgate_requests_total", route="chat", model="gpt-4.1") == 1
    assert m.value("feedgate_requests_total", model="my-finetune") == 1
    # my-finetune has usage but no price: unpriced, under its own label.
    assert m.value("feedgate_unpriced_requests_total", provider="openai", model="my-finetune") == 1
    assert m.value("feedgate_unpriced_requests_total") == 1


async def test_a_flood_of_made_up_model_names_keeps_the_series_bounded(gateway: Gateway) -> None:
    rng = random.Random(18)
    names = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(150)]
    async with client(gateway) as api:
        for start in range(0, len(names), 25):
            await asyncio.gather(
                *(api.chat.completions.create(model=name, messages=MESSAGES) for name in names[start : start + 25])
            )
    await gateway.settled()
    m = await scrape(gateway)
    assert m.value("feedgate_requests_total", model="other") == 150
    for name in ("feedgate_requests_total", "feedgate_tokens_total", "feedgate_request_duration_seconds_count"):
        models = {labels["model"] for labels in m.series(name)}
        assert models == {"other"}, name
    assert len(m.series("feedgate_requests_total")) == 1
    # No label anywhere carries a made-up name, an ID or a key.
    every_value = {value for key in m.samples for _, value in key[1]}
    assert not every_value & set(names)


async def test_inflight_gauge_counts_an_open_stream(gateway: Gateway) -> None:
    async with client(gateway, **{"X-Fake-Behavior": "slow:150"}) as api:
        stream = await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        first = await stream.__anext__()
        assert first.choices
        during = await scrape(gateway)
        async for _ in stream:
            pass
    await gateway.settled()
    after = await scrape(gateway)
    assert during.value("feedgate_inflight_requests") == 1
    assert after.value("feedgate_inflight_requests") == 0


async def test_log_counters_are_the_numbers_readyz_shows(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    """With a one-record queue and a writer that gathers for a second, the third quick call is dropped."""
    gateway = await make_gateway(database={"queue_size": 1, "batch_wait_ms": 1000})
    # The run notes itself in the store at start (store/runs.py); a write someone waits for ends the writer's
    # gathering, so let that one land before the three calls.
    while not await gateway.app[STORE].query("SELECT run_id FROM feedgate_runs"):
        await asyncio.sleep(0.01)
    async with client(gateway) as api:
        for _ in range(3):
            await api.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    await gateway.settled()
    async with http.get(f"{gateway.url}/readyz") as r:
        ready = await r.json()
    m = await scrape(gateway)
    assert ready["log"]["dropped_queue_full"] == 1 and ready["log"]["written"] == 2
    assert m.value("feedgate_log_rows_dropped_total", reason="queue_full") == 1
    assert m.value("feedgate_log_rows_written_total") == 2
    assert m.value("feedgate_log_queue_capacity") == 1 and m.value("feedgate_log_queue_depth") == 0
    # The dropped call still counts as traffic; its body was never parsed, so its model is other.
    assert m.value("feedgate_requests_total") == 3
    assert m.value("feedgate_requests_total", model="other") == 1
    assert m.value("feedgate_log_batch_seconds_count") >= 2


async def test_process_metrics_and_build_info_are_served(gateway: Gateway) -> None:
    m = await scrape(gateway)
    assert m.value("process_resident_memory_bytes") > 0
    assert m.value("process_cpu_seconds_total") > 0
    assert len(m.series("python_gc_collections_total")) == 3
    assert [labels["version"] for labels in m.series("feedgate_build_info")] != []


async def test_metrics_need_a_key_when_keys_are_set(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_gateway(auth={"keys": ["fg-key"]})
    async with http.get(f"{gateway.url}/metrics") as r:
        assert r.status == 401
        assert await r.json() == {"data": None, "error": "missing feedgate key: send Authorization: Bearer <key>"}
    async with http.get(f"{gateway.url}/metrics", headers={"Authorization": "Bearer wrong"}) as r:
        assert r.status == 401
    m = await scrape(gateway, {"Authorization": "Bearer fg-key"})
    assert m.value("feedgate_log_queue_capacity") == 50_000


async def test_public_metrics_need_no_key(make_gateway: GatewayFactory, http: aiohttp.ClientSession) -> None:
    gateway = await make_gateway(auth={"keys": ["fg-key"]}, metrics={"public": True})
    m = await scrape(gateway)
    assert m.value("feedgate_inflight_requests") == 0
    async with http.get(f"{gateway.url}/v1/feedback/stats") as r:  # only /metrics is opened
        assert r.status == 401


async def test_metrics_disabled_removes_the_route_and_logging_goes_on(
    make_gateway: GatewayFactory, http: aiohttp.ClientSession
) -> None:
    gateway = await make_gateway(metrics={"enabled": False})
    async with http.get(f"{gateway.url}/metrics") as r:
        assert r.status == 404
        assert (await r.json())["error"] == "no route for GET /metrics"
    async with client(gateway) as api:
        raw = await api.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=MESSAGES)
    assert (await gateway.row(raw.headers["helicone-id"]))["status"] == 200
