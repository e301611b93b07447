"""Shared fixtures: fake providers and real gateways, all on loopback, all state under tmp_path."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import aiohttp
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionMessageParam

from fakes import FakeUpstream, anthropic_app, combined_app, openai_app, serve_app
from feedgate.app import create_app
from feedgate.app import settled as app_settled
from feedgate.appkeys import STORE
from feedgate.config import Settings, load_settings

if TYPE_CHECKING:
    from pgschema import Schemas  # a plugin (below): importing it here first would stop pytest rewriting it

# ``store``: each store test once on SQLite and once on PostgreSQL (tests/pgschema.py); ``open_page`` and
# ``page_host``: a real Chromium and pages on another origin (tests/browser.py).
pytest_plugins = ("pgschema", "browser")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """No FEEDGATE_* variable from the developer's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("FEEDGATE_") and name != "FEEDGATE_TEST_POSTGRES_URL":
            monkeypatch.delenv(name)


@dataclass
class Gateway:
    url: str
    app: web.Application
    settings: Settings

    @property
    def v1(self) -> str:
        return f"{self.url}/v1"

    async def settled(self, timeout: float = 10.0) -> None:
        """Wait until every answered request's log row is committed."""
        try:
            await app_settled(self.app, timeout)
        except TimeoutError:
            raise AssertionError("log writer did not settle") from None

    async def rows(self, request_id: str) -> list[dict[str, Any]]:
        await self.settled()
        return await self.app[STORE].request_attempts(request_id)

    async def row(self, request_id: str) -> dict[str, Any]:
        rows = await self.rows(request_id)
        assert rows, f"no log row for {request_id}"
        return rows[-1]


class Chat(TypedDict):
    """A chat call's body, typed so the OpenAI SDK takes it as ``create(**CHAT)``; also sent as plain JSON."""

    model: str
    messages: list[ChatCompletionMessageParam]


def gateway_settings(tmp_path: Path, upstream: str, anthropic: str | None = None, **sections: Any) -> Settings:
    overrides: dict[str, Any] = {
        "database": {"url": f"sqlite:///{tmp_path / 'feedgate.db'}"},
        "openai": {"base_url": upstream},
        "anthropic": {"base_url": anthropic or upstream},
    }
    for section, values in sections.items():
        if isinstance(values, dict):
            overrides.setdefault(section, {}).update(values)
        else:  # a list (providers) or a plain value (default_provider)
            overrides[section] = values
    return load_settings(environ={}, overrides=overrides)


async def start_gateway(stack: AsyncExitStack, settings: Settings) -> Gateway:
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=5)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port: int = runner.addresses[0][1]
    return Gateway(f"http://127.0.0.1:{port}", app, settings)


@pytest.fixture
def fake() -> FakeUpstream:
    return FakeUpstream()


@pytest.fixture
async def upstream_url(fake: FakeUpstream) -> AsyncIterator[str]:
    async with serve_app(openai_app(fake)) as url:
        yield url


@pytest.fixture
async def anthropic_url(fake: FakeUpstream) -> AsyncIterator[str]:
    async with serve_app(anthropic_app(fake)) as url:
        yield url


GatewayFactory = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def make_gateway(tmp_path: Path, upstream_url: str) -> AsyncIterator[GatewayFactory]:
    async with AsyncExitStack() as stack:

        async def make(**sections: Any) -> Gateway:
            return await start_gateway(stack, gateway_settings(tmp_path, upstream_url, **sections))

        yield make


@pytest.fixture
async def gateway(make_gateway: GatewayFactory) -> Gateway:
    return await make_gateway()


@pytest.fixture(params=["sqlite", "postgres"])
async def either_gateway(request: pytest.FixtureRequest, make_gateway: GatewayFactory) -> Gateway:
    """A gateway on SQLite, then one on a fresh PostgreSQL schema (that half skips without PostgreSQL)."""
    if request.param == "sqlite":
        return await make_gateway()
    schemas: Schemas = request.getfixturevalue("pg_schemas")
    return await make_gateway(database={"url": schemas.new_url()})


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def threaded_gateway(tmp_path: Path) -> Iterator[tuple[Gateway, FakeUpstream, asyncio.AbstractEventLoop]]:
    """A fake upstream and a gateway on their own loop in a thread, for the blocking (sync) SDK clients."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway", daemon=True)
    thread.start()
    stack = AsyncExitStack()
    fake_upstream = FakeUpstream()

    async def setup() -> Gateway:
        url = await stack.enter_async_context(serve_app(openai_app(fake_upstream)))
        return await start_gateway(stack, gateway_settings(tmp_path, url))

    gw = asyncio.run_coroutine_threadsafe(setup(), loop).result(10)
    try:
        yield gw, fake_upstream, loop
    finally:
        asyncio.run_coroutine_threadsafe(stack.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


# ---- one fake upstream for every provider kind, and a second separate upstream (targets, fallbacks)


@pytest.fixture
async def combined_url(fake: FakeUpstream) -> AsyncIterator[str]:
    async with serve_app(combined_app(fake)) as url:
        yield url


@pytest.fixture
async def make_combined(tmp_path: Path, combined_url: str) -> AsyncIterator[GatewayFactory]:
    """Like ``make_gateway``, with openai and anthropic both pointing at the combined fake."""
    async with AsyncExitStack() as stack:

        async def make(**sections: Any) -> Gateway:
            return await start_gateway(stack, gateway_settings(tmp_path, combined_url, **sections))

        yield make


@pytest.fixture
def other() -> FakeUpstream:
    """A second, separate fake OpenAI upstream (a target, a fallback, another provider)."""
    return FakeUpstream()


@pytest.fixture
async def other_url(other: FakeUpstream) -> AsyncIterator[str]:
    async with serve_app(openai_app(other)) as url:
        yield url
