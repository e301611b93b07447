"""Cost per logged request (known, dated, unknown, overridden) and the headers that shape the log row."""

from __future__ import annotations

from typing import Any

import aiohttp
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from feedgate.logrows.pricing import PriceTable

MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "echo: four words right here"}]


async def logged(gateway: Gateway, model: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=model,
            messages=MESSAGES,
            extra_headers=headers or {},
        )
    return await gateway.row(raw.headers["helicone-id"])


def expected(model: str, row: dict[str, Any]) -> float:
    price = PriceTable.load().lookup(model)
    assert price is not None
    return (int(row["input_tokens"]) * price[1].input + int(row["output_tokens"]) * price[1].output) / 1e6


@pytest.mark.parametrize(("model", "priced_as"), [("gpt-4o-mini", "gpt-4o-mini"), ("gpt-4o-2024-11-20", "gpt-4o")])
async def test_known_and_dated_models_are_priced(gateway: Gateway, model: str, priced_as: str) -> None:
    row = await logged(gateway, model)
    assert row["model"] == model
    assert row["cost_usd"] == pytest.approx(expected(priced_as, row))
    assert "feedgate-cost" not in orjson.loads(str(row["properties_json"]))


async def test_unknown_model_has_null_cost_and_a_flag(gateway: Gateway) -> None:
    row = await logged(gateway, "gpt-4o-mini-turbo-ultra")  # a loose prefix is not a price
    assert row["cost_usd"] is None and row["input_tokens"] is not None
    assert orjson.loads(str(row["properties_json"]))["feedgate-cost"] == "unknown_model"


async def test_model_override_decides_the_price(gateway: Gateway) -> None:
    row = await logged(gateway, "my-finetune", {"Helicone-Model-Override": "gpt-4o"})
    assert row["model"] == "my-finetune" and row["cost_usd"] == pytest.approx(expected("gpt-4o", row))


async def test_config_prices_extend_and_override(make_gateway: GatewayFactory) -> None:
    gateway = await make_gateway(
        prices={"my-finetune": {"input": 1.0, "output": 2.0}, "gpt-4o-mini": {"input": 100.0, "output": 200.0}}
    )
    row = await logged(gateway, "my-finetune")
    assert row["cost_usd"] == pytest.approx((int(row["input_tokens"]) + 2 * int(row["output_tokens"])) / 1e6)
    row = await logged(gateway, "gpt-4o-mini")
    assert row["cost_usd"] == pytest.approx((100 * int(row["input_tokens"]) + 200 * int(row["output_tokens"])) / 1e6)


async def test_omit_request_and_response_keep_usage_and_cost(gateway: Gateway) -> None:
    row = await logged(gateway, "gpt-4o-mini", {"Helicone-Omit-Request": "true"})
    assert row["request_body"] is None and row["response_body"] is not None
    assert row["input_tokens"] is not None and row["cost_usd"] is not None and row["model"] == "gpt-4o-mini"

    row = await logged(gateway, "gpt-4o-mini", {"Helicone-Omit-Response": "true"})
    assert row["response_body"] is None and row["response_text"] is None and row["request_body"] is not None
    assert row["output_tokens"] is not None and row["cost_usd"] is not None


async def test_omit_response_on_a_stream(gateway: Gateway) -> None:
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="sk", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            stream=True,
            extra_headers={"Helicone-Omit-Response": "true", "Helicone-Omit-Request": "true"},
        )
        _ = [chunk async for chunk in stream]
    row = await gateway.row(stream.response.headers["helicone-id"])
    assert row["response_body"] is None and row["response_json"] is None and row["request_body"] is None
    assert row["output_tokens"] is not None and row["cost_usd"] is not None


async def test_stream_usage_header_shows_the_usage_chunk(gateway: Gateway, http: aiohttp.ClientSession) -> None:
    body = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": "Bearer sk", "Helicone-Stream-Usage": "true"}
    async with http.post(f"{gateway.v1}/chat/completions", json=body, headers=headers) as r:
        raw = await r.read()
        request_id = r.headers["Helicone-Id"]
    events = [orjson.loads(line[6:]) for line in raw.split(b"\n\n") if line.startswith(b"data: {")]
    assert events[-1]["choices"] == [] and events[-1]["usage"]["total_tokens"] > 0
    row = await gateway.row(request_id)
    assert row["total_tokens"] == events[-1]["usage"]["total_tokens"]
