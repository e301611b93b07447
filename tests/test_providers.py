"""Every provider kind through its official SDK, streaming and not: routing, keys and what is logged."""

from __future__ import annotations

import aiohttp
import anthropic
import openai
import orjson
import pytest
from anthropic.types import MessageParam, ToolParam
from openai.types.chat import ChatCompletionMessageParam

from conftest import Gateway, GatewayFactory
from fakes import FakeUpstream
from feedgate.config import load_settings, masked
from feedgate.errors import ConfigError
from feedgate.proxy.providers import Providers

CHAT: list[ChatCompletionMessageParam] = [{"role": "user", "content": "echo: hello there"}]
# The same turn, typed for the Anthropic SDK.
CLAUDE_CHAT: list[MessageParam] = [{"role": "user", "content": "echo: hello there"}]
TOOLS: list[ToolParam] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def anthropic_client(gateway: Gateway, api_key: str = "sk-ant-client") -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=f"{gateway.url}/anthropic", api_key=api_key, max_retries=0)


async def test_anthropic_messages_json(make_combined: GatewayFactory, fake: FakeUpstream) -> None:
    gateway = await make_combined()
    async with anthropic_client(gateway) as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-sonnet-4-20250514",
            max_tokens=100,
            messages=CLAUDE_CHAT,
            extra_headers={"Helicone-User-Id": "u1", "X-Fake-Behavior": "cache-tokens:40:7"},
        )
        message = await raw.parse()
    assert message.content[0].text == "hello there"  # type: ignore[union-attr]
    sent = fake.last
    assert sent.path == "/v1/messages"
    # This SDK sends its key as a bearer token (older ones as x-api-key; see the test below).
    assert sent.header("Authorization") == "Bearer sk-ant-client" and sent.header("anthropic-version")
    assert not any(name.lower().startswith("helicone-") for name in sent.headers)

    row = await gateway.row(raw.headers["helicone-id"])
    assert row["provider"] == "anthropic" and row["path"] == "/v1/messages" and row["status"] == 200
    assert row["model"] == "claude-sonnet-4-20250514" and row["finish_reason"] == "end_turn"
    assert row["response_text"] == "hello there" and row["user_id"] == "u1"
    usage = message.usage
    assert (row["input_tokens"], row["output_tokens"]) == (usage.input_tokens, usage.output_tokens)
    assert (row["cache_read_tokens"], row["cache_write_tokens"]) == (40, 7)
    # Anthropic's input_tokens are the uncached ones; reads and writes are priced apart (3 / 15 / 0.3 / 3.75).
    expected = (usage.input_tokens * 3 + usage.output_tokens * 15 + 40 * 0.3 + 7 * 3.75) / 1e6
    assert row["cost_usd"] == pytest.approx(expected)


async def test_anthropic_native_headers_pass_through(
    make_combined: GatewayFactory, fake: FakeUpstream, http: aiohttp.ClientSession
) -> None:
    gateway = await make_combined()
    headers = {"x-api-key": "sk-ant-raw", "anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04"}
    body = {"model": "claude-3-5-haiku", "max_tokens": 10, "messages": CHAT}
    async with http.post(f"{gateway.url}/anthropic/v1/messages", json=body, headers=headers) as r:
        assert r.status == 200 and (await r.json())["type"] == "message"
    sent = fake.last
    assert sent.header("x-api-key") == "sk-ant-raw" and sent.header("anthropic-version") == "2023-06-01"
    assert sent.header("anthropic-beta") == "tools-2024-04-04"


async def test_anthropic_stream_passes_every_event_and_logs_the_message(
    make_combined: GatewayFactory, fake: FakeUpstream
) -> None:
    gateway = await make_combined()
    async with (
        anthropic_client(gateway) as client,
        client.messages.stream(
            model="claude-3-5-haiku-20241022",
            max_tokens=100,
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=TOOLS,
            extra_headers={"X-Fake-Behavior": "cache-tokens:5:3"},
        ) as stream,
    ):
        request_id = stream.response.headers["helicone-id"]
        kinds = [event.type async for event in stream]
        final = await stream.get_final_message()
    for kind in ("message_start", "content_block_start", "content_block_delta", "content_block_stop"):
        assert kind in kinds
    assert "message_delta" in kinds and "message_stop" in kinds
    block = final.content[0]
    assert block.type == "tool_use" and block.name == "get_weather"

    row = await gateway.row(request_id)
    assert row["is_stream"] == 1 and row["finish_reason"] == "tool_use" and row["ttft_ms"] is not None
    message = orjson.loads(row["response_json"])
    assert message["content"][0] == {"type": "tool_use", "id": block.id, "name": "get_weather", "input": block.input}
    assert message["stop_reason"] == "tool_use"
    assert (row["output_tokens"], row["cache_read_tokens"], row["cache_write_tokens"]) == (
        final.usage.output_tokens,
        5,
        3,
    )
    assert b"event: ping" in row["response_body"]  # the raw events, every type, as sent
    assert row["cost_usd"] is not None and row["cost_usd"] > 0


async def test_anthropic_stream_text(make_combined: GatewayFactory) -> None:
    gateway = await make_combined()
    async with (
        anthropic_client(gateway) as client,
        client.messages.stream(model="claude-sonnet-4", max_tokens=50, messages=CLAUDE_CHAT) as stream,
    ):
        text = "".join([piece async for piece in stream.text_stream])
        request_id = stream.response.headers["helicone-id"]
    assert text == "hello there"
    row = await gateway.row(request_id)
    assert row["response_text"] == text and row["finish_reason"] == "end_turn"


async def test_anthropic_errors_pass_through(make_combined: GatewayFactory) -> None:
    gateway = await make_combined()
    async with anthropic_client(gateway) as client:
        with pytest.raises(anthropic.RateLimitError) as caught:
            await client.messages.create(
                model="claude-sonnet-4",
                max_tokens=10,
                messages=CLAUDE_CHAT,
                extra_headers={"X-Fake-Behavior": "status:429"},
            )
    row = await gateway.row(caught.value.response.headers["helicone-id"])
    assert row["status"] == 429 and row["cost_usd"] is None


AZURE = {"name": "azure", "kind": "azure"}


@pytest.mark.parametrize("stream", [False, True])
async def test_azure_deployment_route(
    make_combined: GatewayFactory, combined_url: str, fake: FakeUpstream, stream: bool
) -> None:
    gateway = await make_combined(providers=[{**AZURE, "base_url": combined_url}])
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=f"{gateway.url}/azure", api_key="azure-key", api_version="2024-10-21", max_retries=0
    ) as client:
        if stream:
            chunks = await client.chat.completions.create(model="prod-gpt4o", messages=CHAT, stream=True)
            request_id = chunks.response.headers["helicone-id"]
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            raw = await client.chat.completions.with_raw_response.create(model="prod-gpt4o", messages=CHAT)
            request_id = raw.headers["helicone-id"]
            text = raw.parse().choices[0].message.content or ""
    assert text == "hello there"
    sent = fake.last
    assert sent.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert sent.query["api-version"] == "2024-10-21" and sent.header("api-key") == "azure-key"
    row = await gateway.row(request_id)
    assert row["provider"] == "azure" and row["query"] == "api-version=2024-10-21"
    assert row["input_tokens"] is not None and row["output_tokens"] is not None  # usage even when streamed
    assert orjson.loads(row["request_headers_json"])["api-key"] == "[redacted]"


async def test_azure_injected_key(make_combined: GatewayFactory, combined_url: str, fake: FakeUpstream) -> None:
    gateway = await make_combined(
        providers=[{**AZURE, "base_url": combined_url, "api_key": "azure-secret"}], auth={"keys": ["fg-key"]}
    )
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=f"{gateway.url}/azure", api_key="fg-key", api_version="2024-10-21", max_retries=0
    ) as client:
        await client.embeddings.create(model="embed-deploy", input="hi")
    assert fake.last.header("api-key") == "azure-secret"
    assert "fg-key" not in str(fake.last.headers)


@pytest.mark.parametrize("stream", [False, True])
async def test_openai_compatible_provider_with_injected_key(
    make_combined: GatewayFactory,
    other_url: str,
    other: FakeUpstream,
    fake: FakeUpstream,
    monkeypatch: pytest.MonkeyPatch,
    stream: bool,
) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-secret")
    provider = {
        "name": "groq",
        "kind": "openai-compatible",
        "base_url": other_url,
        "api_key": "os.environ/GROQ_API_KEY",
        "headers": {"X-Title": "feedgate"},
    }
    gateway = await make_combined(providers=[provider], auth={"keys": ["fg-key"]})
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/groq/v1", api_key="fg-key", max_retries=0) as client:
        if stream:
            chunks = await client.chat.completions.create(model="llama-3.1-8b-instant", messages=CHAT, stream=True)
            request_id = chunks.response.headers["helicone-id"]
            text = "".join([c.choices[0].delta.content or "" async for c in chunks if c.choices])
        else:
            raw = await client.chat.completions.with_raw_response.create(model="llama-3.1-8b-instant", messages=CHAT)
            request_id = raw.headers["helicone-id"]
            text = raw.parse().choices[0].message.content or ""
    assert text == "hello there"
    assert not fake.received  # the default upstream saw nothing
    sent = other.last
    assert sent.path == "/v1/chat/completions"
    assert sent.header("Authorization") == "Bearer gsk-secret" and sent.header("X-Title") == "feedgate"
    row = await gateway.row(request_id)
    assert row["provider"] == "groq" and row["model"] == "llama-3.1-8b-instant"
    # An unpriced model: no guessed cost, and the row says why.
    assert row["cost_usd"] is None and orjson.loads(row["properties_json"])["feedgate-cost"] == "unknown_model"

    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/groq/v1", api_key="wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError):
            await wrong.models.list()


async def test_anthropic_injected_key_takes_feedgate_key_from_the_sdk(
    make_combined: GatewayFactory, fake: FakeUpstream
) -> None:
    gateway = await make_combined(providers=[{"name": "anthropic", "api_key": "sk-ant-real"}], auth={"keys": ["fg"]})
    async with anthropic_client(gateway, api_key="fg") as client:
        await client.messages.create(model="claude-sonnet-4", max_tokens=5, messages=CLAUDE_CHAT)
    assert fake.last.header("x-api-key") == "sk-ant-real"
    assert "fg" not in {fake.last.header("Authorization"), fake.last.header("x-api-key")}


async def test_default_provider_takes_v1(
    make_combined: GatewayFactory,
    other_url: str,
    other: FakeUpstream,
    fake: FakeUpstream,
) -> None:
    gateway = await make_combined(
        providers=[{"name": "local", "kind": "openai-compatible", "base_url": other_url}], default_provider="local"
    )
    async with openai.AsyncOpenAI(base_url=gateway.v1, api_key="x", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(model="qwen2.5", messages=CHAT)
    assert other.last.path == "/v1/chat/completions" and not fake.received
    assert (await gateway.row(raw.headers["helicone-id"]))["provider"] == "local"
    # /openai/... still reaches the built-in openai provider.
    async with openai.AsyncOpenAI(base_url=f"{gateway.url}/openai/v1", api_key="x", max_retries=0) as builtin:
        await builtin.models.list()
    assert fake.last.path == "/v1/models"


def test_base_url_environment_variables() -> None:
    settings = load_settings(
        environ={
            "FEEDGATE_OPENAI_BASE_URL": "http://openai.internal:9000/",
            "FEEDGATE_ANTHROPIC_BASE_URL": "http://anthropic.internal:9001",
            "FEEDGATE_DEFAULT_PROVIDER": "anthropic",
            "FEEDGATE_PROXY_ALLOWED_TARGET_ORIGINS": "https://api.groq.com, http://LOCALHOST:11434/",
        }
    )
    providers = Providers.from_settings(settings)
    assert providers.get("openai").base_url == "http://openai.internal:9000"  # type: ignore[union-attr]
    assert providers.get("anthropic").base_url == "http://anthropic.internal:9001"  # type: ignore[union-attr]
    assert providers.default.name == "anthropic"
    assert providers.allowed_origins == {"https://api.groq.com", "http://localhost:11434"}


def test_builtin_entry_keeps_the_environment_base_url() -> None:
    settings = load_settings(
        environ={"FEEDGATE_OPENAI_BASE_URL": "http://vllm:8000"},
        overrides={"providers": [{"name": "openai", "api_key": "sk", "headers": {"OpenAI-Organization": "org-1"}}]},
    )
    provider = Providers.from_settings(settings).get("openai")
    assert provider is not None and provider.base_url == "http://vllm:8000" and provider.kind == "openai"
    assert provider.api_key == "sk" and provider.headers == {"OpenAI-Organization": "org-1"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"providers": [{"name": "v1", "kind": "openai", "base_url": "http://x"}]}, "reserved"),
        ({"providers": [{"name": "Groq!", "kind": "openai", "base_url": "http://x"}]}, "a-z 0-9"),
        ({"providers": [{"name": "groq", "kind": "openai-compatible"}]}, "needs a base_url"),
        ({"providers": [{"name": "groq", "base_url": "http://x"}]}, "kind"),
        ({"providers": [{"name": "g", "kind": "cohere", "base_url": "http://x"}]}, "kind"),
        ({"providers": [{"name": "g", "kind": "openai", "base_url": "ftp://x"}]}, "http"),
        ({"providers": [{"name": "g", "kind": "openai", "base_url": "http://x"}] * 2}, "declared twice"),
        ({"default_provider": "nope"}, "not a provider"),
        ({"proxy": {"allowed_target_origins": ["api.groq.com"]}}, "is not an http"),
        (
            {"providers": [{"name": "g", "kind": "openai", "base_url": "http://x", "api_key": "os.environ/NOPE_KEY"}]},
            "NOPE_KEY",
        ),
    ],
)
def test_provider_config_errors(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(environ={}, overrides=overrides)


async def test_azure_sdk_at_the_gateway_root(
    make_combined: GatewayFactory, combined_url: str, other_url: str, fake: FakeUpstream, other: FakeUpstream
) -> None:
    """Helicone's Azure setup: the SDK's endpoint is the gateway root, so paths arrive as /openai/deployments/..."""
    gateway = await make_combined(
        providers=[{**AZURE, "base_url": combined_url}], proxy={"allowed_target_origins": [other_url]}
    )
    async with openai.AsyncAzureOpenAI(
        azure_endpoint=gateway.url, api_key="k", api_version="2024-10-21", max_retries=0
    ) as client:
        await client.chat.completions.create(model="dep-1", messages=CHAT)
        assert fake.last.path == "/openai/deployments/dep-1/chat/completions" and fake.last.header("api-key") == "k"
        # With Helicone-OpenAI-Api-Base the same call goes to that (allow-listed) resource instead.
        await client.chat.completions.create(
            model="dep-2",
            messages=CHAT,
            extra_headers={"Helicone-OpenAI-Api-Base": other_url},
        )
    assert other.last.path == "/openai/deployments/dep-2/chat/completions" and len(fake.received) == 1


def test_check_config_masks_provider_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GROQ_API_KEY", "gsk-very-secret")
    settings = load_settings(
        environ={},
        overrides={
            "providers": [
                {
                    "name": "groq",
                    "kind": "openai-compatible",
                    "base_url": "https://api.groq.com/openai",
                    "api_key": "os.environ/GROQ_API_KEY",
                },
                {"name": "ollama", "kind": "openai-compatible", "base_url": "http://localhost:11434"},
            ]
        },
    )
    shown = masked(settings)
    assert [p["api_key"] for p in shown["providers"]] == ["***", None]
    assert "gsk-very-secret" not in str(shown)
